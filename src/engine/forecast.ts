// Decode speed from a bandwidth model: a decoded token reads every weight it touches once, so its time is those
// bytes over the rate memory gives the kernels, plus fixed costs per layer and per token, plus, when streaming,
// the routed experts the cache misses over the disk's rate. Every time is counted in bytes at the probed memory
// bandwidth: on a shared machine the probe and the engine lose the same share of the cores.
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
