// Decode speed from a bandwidth model: a decoded token reads every weight it touches once, so its time is those
// bytes over the rate memory gives the kernels, plus fixed costs per layer and per token, plus, when streaming,
// the routed experts the cache misses over the disk's rate. Every time is counted in bytes at the probed memory
// bandwidth: on a shared machine the probe and the engine lose the same share of the cores.
import { ggmlTypeByName, ggmlTypeName } from "../format/gguf/ggml-types.js";
import { expertKey } from "./compute-probe.js";
import type { ExpertIODecision } from "./expert-io.js";
import type { ModelShape } from "./model-shape.js";

/**
 * The factors, calibrated once on models that are not the ones the forecast is checked on (README "doctor").
 * memEfficiency: decode matvec GB/s over the memory probe's GB/s on memory-bound types (`bench kernels`, 2 threads:
 * Q4_K_R8 33-38 and Q8_0_R8 33-35 GB/s against 44-50 GB/s read: ~0.75). layerBytes / tokenBytes: the rest of a decode
 * step (norms, attention, routing, thread hand-offs, logits and sampling) as bytes read at the probed bandwidth: the
 * median residual of 8 paired runs each of tiny Q8_0 (4 layers, 59 MB) and olmoe-tiny Q4_K (3 layers, 47 MB), on the
 * shared 2-core VM at load average 15-21, so they carry that machine's contention (a quiet machine pays less).
 */
export const CALIBRATION = {
  memEfficiency: 0.75,
  layerBytes: 12e6,
  tokenBytes: 11e6,
  /**
   * Kernels slower than memory at 2 threads, as a share of the memory probe (1-thread GB/s of `bench kernels-ggml`
   * x 2 threads / 47 GB/s, the 2-thread read bandwidth of the same machine); other types run at memEfficiency.
   */
  computeBound: { Q2_K: 0.76, Q3_K: 0.67, IQ4_XS: 0.71, IQ2_XXS: 0.22, IQ3_XXS: 0.2, IQ2_XS: 0.22, IQ2_S: 0.22, IQ3_S: 0.2, IQ1_S: 0.22, IQ1_M: 0.22 } as Record<string, number>,
} as const;

/**
 * Hit rates of the default policy (markov:perLayer=1) replaying real routing traces at a cache of 1x, 2x and 4x a
 * token's experts per layer (docs/cache-policy.md): central Qwen3-30B-A3B, high gemma-4-26B-A4B's best of the two,
 * low gpt-oss-120b (the least local router measured). A generated model's routing knobs are not in its file, so this
 * is an assumption about the router, said so in the output.
 */
const HIT_TABLE = { at: [1, 2, 4], low: [20.9, 34.4, 48.5], mid: [37.5, 55.6, 73.2], high: [37.5, 56.7, 73.6] };

/** Hit rate (0..1) at `multiple` x a token's experts per layer, of `all` x (every expert cached: 1 once warm). */
export function hitRate(multiple: number, all: number, row: "low" | "mid" | "high"): number {
  const ys = HIT_TABLE[row].map((y) => y / 100);
  const xs = HIT_TABLE.at;
  if (multiple >= all) return 1;
  if (multiple <= xs[0]) return ys[0] * Math.max(0, multiple) / xs[0];
  for (let i = 1; i < xs.length; i++) {
    if (all <= xs[i]) return ys[i - 1] + ((1 - ys[i - 1]) * (multiple - xs[i - 1])) / (all - xs[i - 1]);
    if (multiple <= xs[i]) return ys[i - 1] + ((ys[i] - ys[i - 1]) * (multiple - xs[i - 1])) / (xs[i] - xs[i - 1]);
  }
  const last = xs.length - 1; // past the table: straight on to every expert cached
  return ys[last] + ((1 - ys[last]) * (multiple - xs[last])) / (all - xs[last]);
}

export interface Forecast {
  mode: "resident" | "stream";
  /** Weight bytes a decoded token reads from memory. */
  bytesPerToken: number;
  /** Cache slots per MoE layer as a multiple of a token's experts (stream only). */
  cacheMultiple?: number;
  /** Expected hit rate: low, mid, high (stream only; 1 when resident). */
  hitRate: { low: number; mid: number; high: number };
  /** Bytes read from disk per decoded token at the mid hit rate (0 when resident), and its range. */
  diskBytesPerToken: { low: number; mid: number; high: number };
  /** ms per token: memory-bound compute, fixed costs, disk at the mid hit rate. */
  ms: { compute: number; fixed: number; disk: number };
  /** Decode tokens/s: mid, and the range from the hit-rate range (resident: +-15%, the spread of our benches' runs). */
  decode: { low: number; mid: number; high: number };
  /** What dominates, and what would make it faster. */
  advice: string[];
}

export interface ForecastInputs {
  shape: ModelShape;
  decision: Pick<ExpertIODecision, "mode" | "cacheBytes">;
  memGBps: number;
  /** Disk probe at record size (needed when streaming). */
  diskGBps?: number;
  /** The experts come from a pack already (no advice to pack). */
  packed?: boolean;
}

export function forecastDecode({ shape, decision, memGBps, diskGBps, packed }: ForecastInputs): Forecast {
  const C = CALIBRATION;
  const mem = memGBps * 1e9;
  let computeBytes = 0; // bytes-equivalent at the probed rate
  let bytesPerToken = 0;
  for (const [type, bytes] of Object.entries(shape.tokenBytes)) {
    bytesPerToken += bytes;
    computeBytes += bytes / Math.min(C.memEfficiency, C.computeBound[type] ?? Infinity);
  }
  const compute = (computeBytes / mem) * 1000;
  const fixed = ((shape.info.nLayer * C.layerBytes + C.tokenBytes) / mem) * 1000;
  const k = shape.info.nExpertUsed;
  const moeLayers = shape.layers.length;
  const advice: string[] = [];
  if (decision.mode === "resident" || moeLayers === 0) {
    const tps = 1000 / (compute + fixed);
    advice.push(`memory-bound: ${(bytesPerToken / 2 ** 20).toFixed(1)} MiB of weights per token at ${memGBps.toFixed(1)} GB/s; a lower-bit quant reads fewer bytes per token`);
    return {
      mode: "resident", bytesPerToken, hitRate: { low: 1, mid: 1, high: 1 }, diskBytesPerToken: { low: 0, mid: 0, high: 0 },
      ms: { compute, fixed, disk: 0 }, decode: { low: tps * 0.85, mid: tps, high: tps * 1.15 }, advice,
    };
  }
  if (!diskGBps || diskGBps <= 0) throw new RangeError("a streamed forecast needs the disk probe's GB/s");
  const slots = Math.floor(decision.cacheBytes / shape.slotBytes);
  const multiple = slots / moeLayers / k;
  const all = shape.info.nExpert / k;
  const h = { low: hitRate(multiple, all, "low"), mid: hitRate(multiple, all, "mid"), high: hitRate(multiple, all, "high") };
  // Misses read whole records (4 KiB-padded): the mean record over the MoE layers, k per layer.
  const record = shape.layers.reduce((a, l) => a + l.recordBytes, 0) / moeLayers;
  const disk = (hit: number) => moeLayers * k * (1 - hit) * record;
  const d = { low: disk(h.high), mid: disk(h.mid), high: disk(h.low) };
  const tps = (bytes: number) => 1000 / (compute + fixed + (bytes / (diskGBps * 1e9)) * 1000);
  const diskMs = (d.mid / (diskGBps * 1e9)) * 1000;
  if (diskMs > compute + fixed) advice.push(`disk-bound: ${(d.mid / 2 ** 20).toFixed(0)} MiB read per token at ${diskGBps.toFixed(2)} GB/s; more memory (a larger expert cache), a faster SSD or a lower-bit quant (smaller records) would help`);
  else advice.push(`compute-bound while streaming: the cache already holds most of what a token needs`);
  advice.push(`with every expert resident (memory for all of them): ${(1000 / (compute + fixed)).toFixed(1)} tok/s`);
  if (!packed) advice.push("`moestream pack` the GGUF: packed records are read with O_DIRECT in one read each");
  return {
    mode: "stream", bytesPerToken, cacheMultiple: multiple, hitRate: h, diskBytesPerToken: d,
    ms: { compute, fixed, disk: diskMs }, decode: { low: tps(d.high), mid: tps(d.mid), high: tps(d.low) }, advice,
  };
}

export interface PrefillForecast {
  /** Prompt tokens the forecast is for, and the batch width the engine feeds them in. */
  promptTokens: number;
  batch: number;
  /** Experts a MoE layer's batch touches (mean over layers), and the tokens each gets: the width of its matmuls. */
  expertsTouched: number;
  expertBatch: number;
  /** ms per batch by part, at the mid figure. */
  ms: { dense: number; experts: number; attention: number; fixed: number; disk: number };
  /** Prompt tokens/s: mid = each matmul takes the longer of its compute and its weight read (they overlap); low = the sum. */
  tokPerSec: { low: number; mid: number };
}

export interface PrefillInputs extends ForecastInputs {
  /** GFLOP/s by type at the dense batch's width (probeMatmul); the experts' at their width, by layout key (expertKey: the fused FFN, probeExpertFfn) or by type. */
  denseGflops: Record<string, number>;
  expertGflops: Record<string, number>;
  promptTokens: number;
  /** The engine's batch (PREFILL_BATCH). */
  batch: number;
  /** ms of one layer's attention over a first batch of min(promptTokens, batch) tokens (probeAttention); else estimated at the F32 rate. */
  attentionMs?: number;
}

/** The batch widths the probe should run at: a prompt batch's, and what each touched expert gets of it. */
export function prefillWidths(shape: ModelShape, promptTokens: number, batch: number): { batch: number; touched: number; expertBatch: number } {
  const T = Math.min(promptTokens, batch);
  const k = shape.info.nExpertUsed;
  const E = shape.layers.length ? shape.layers.reduce((a, l) => a + l.experts, 0) / shape.layers.length : 0;
  const touched = E > 0 ? touchedExperts(E, k, T) : 0;
  return { batch: T, touched, expertBatch: touched > 0 ? (T * k) / touched : 0 };
}

/** Experts of E that T tokens picking k each touch, expected: each is left out by all of them with probability (1 - k/E)^T. */
const touchedExperts = (E: number, k: number, T: number) => E * (1 - (1 - k / E) ** T);

/**
 * Prefill, batch by batch: a matmul of W over t tokens is 2 x params x t flops at the probed GFLOP/s of its type and
 * width, and reads W once at the decode kernels' bandwidth; the dense matrices see the whole batch, each touched
 * expert its share. Attention grows with the context: the probed kernel's time for a first batch, scaled by each
 * batch's query-key pairs (without a probe, 4 x width flops per pair at the F32 rate);
 * the output head runs once per batch (memory-bound); the decode model's fixed costs once per batch; streamed, the
 * cache's misses over the disk (a batch touches most experts: the hit rate is the share of them the cache holds).
 */
export function forecastPrefill(p: PrefillInputs): PrefillForecast {
  const { shape, memGBps, promptTokens, batch } = p;
  const C = CALIBRATION;
  const mem = memGBps * 1e9 * C.memEfficiency;
  const params = (type: string, bytes: number) => {
    const info = ggmlTypeByName(type);
    return info ? (bytes / info.bytesPerBlock) * info.blockSize : bytes;
  };
  // [max, sum] of a matmul's compute and its weight read, in seconds.
  const matmul = (type: string, bytes: number, n: number, tokens: number, gflops: Record<string, number>): [number, number] => {
    const g = gflops[type] ?? gflops.F32;
    if (!g) throw new RangeError(`no probed GFLOP/s for ${type}`);
    const compute = (2 * n * tokens) / (g * 1e9);
    const read = bytes / mem;
    return [Math.max(compute, read), compute + read];
  };
  const k = shape.info.nExpertUsed;
  const slots = p.decision.mode === "resident" ? Infinity : Math.floor(p.decision.cacheBytes / shape.slotBytes);
  const allExperts = shape.layers.reduce((a, l) => a + l.experts, 0);
  const hit = Math.min(1, slots / Math.max(1, allExperts));
  const batches: { T: number; start: number }[] = [];
  for (let at = 0; at < promptTokens; at += batch) batches.push({ T: Math.min(batch, promptTokens - at), start: at });
  const ms = { dense: 0, experts: 0, attention: 0, fixed: 0, disk: 0 };
  let sumExtra = 0; // what the sum form adds over the max form
  let touchedAll = 0, widthAll = 0;
  for (const { T, start } of batches) {
    for (const [type, bytes] of Object.entries(shape.matmulBytes)) {
      const [mx, sm] = matmul(type, bytes, params(type, bytes), T, p.denseGflops);
      ms.dense += mx * 1000;
      sumExtra += (sm - mx) * 1000;
    }
    for (const l of shape.layers) {
      const touched = touchedExperts(l.experts, k, T);
      const width = (T * k) / touched;
      touchedAll += touched;
      widthAll += width;
      // Fused (the backend's moeFfn, probed as one): all parts at one rate; else each part's matmul at its type's.
      const key = expertKey(l.parts);
      const parts = p.expertGflops[key] ? [{ type: key, bytes: l.parts.reduce((a, q) => a + q.byteLength, 0), params: l.parts.reduce((a, q) => a + params(ggmlTypeName(q.type), q.byteLength), 0) }]
        : l.parts.map((q) => ({ type: ggmlTypeName(q.type), bytes: q.byteLength, params: params(ggmlTypeName(q.type), q.byteLength) }));
      for (const part of parts) {
        const [mx, sm] = matmul(part.type, part.bytes, part.params, width, p.expertGflops);
        ms.experts += touched * mx * 1000;
        sumExtra += touched * (sm - mx) * 1000;
      }
      if (hit < 1) {
        if (!p.diskGBps) throw new RangeError("a streamed forecast needs the disk probe's GB/s");
        ms.disk += ((touched * (1 - hit) * l.recordBytes) / (p.diskGBps * 1e9)) * 1000;
      }
    }
    // Query-key pairs of this batch: each row attends to every earlier position and itself.
    const pairs = T * start + (T * (T + 1)) / 2;
    const T0 = Math.min(promptTokens, batch);
    const f32 = p.denseGflops.F32;
    if (p.attentionMs !== undefined) ms.attention += shape.attention.layers * p.attentionMs * (pairs / ((T0 * (T0 + 1)) / 2));
    else if (f32) ms.attention += ((shape.attention.layers * 4 * shape.attention.width * pairs) / (f32 * 1e9)) * 1000;
    ms.fixed += ((shape.head.bytes / mem + (shape.info.nLayer * C.layerBytes + C.tokenBytes) / (memGBps * 1e9)) * 1000);
  }
  const total = ms.dense + ms.experts + ms.attention + ms.fixed + ms.disk;
  const n = batches.length * Math.max(1, shape.layers.length);
  return {
    promptTokens, batch: Math.min(batch, promptTokens), expertsTouched: touchedAll / n, expertBatch: widthAll / n, ms,
    tokPerSec: { low: (promptTokens * 1000) / (total + sumExtra), mid: (promptTokens * 1000) / total },
  };
}
