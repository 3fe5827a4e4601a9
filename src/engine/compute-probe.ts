// doctor's compute probe for the prefill forecast: the backend the engine would use (native, wasm, scalar) runs
// its own matmul on a weight of each type the model multiplies by, at a prompt batch's width, and the throughput
// is timed. A prompt is compute-bound where a decoded token is memory-bound: this is its bandwidth figure.
import type { Backend, Buf, ExpertRows, Weight } from "../backends/backend.js";
import { ggmlTypeByName, ggmlTypeName } from "../format/gguf/ggml-types.js";
import type { ExpertPart } from "../experts/pack-format.js";

export interface MatmulThroughput {
  /** GFLOP/s (2 x multiply-adds) by ggml type name, the median of 3 rounds. */
  gflops: Record<string, number>;
  /** Tokens per call (the batch width the kernels saw). */
  tokens: number;
  ms: number;
  how: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** Activations spread over [-1, 1], the same every run. */
const spread = (n: number) => Float32Array.from({ length: n }, (_, i) => ((i * 2654435761) % 2001) / 1000 - 1);

/** A weight of `type` and shape [k, n] filled with the probe's pattern; undefined where k does not fit the type's blocks. */
function patternWeight(be: Backend, name: string, type: string, k: number, n: number): Weight | undefined {
  const info = ggmlTypeByName(type);
  if (!info || k % info.blockSize !== 0) return undefined;
  const bytes = new Uint8Array((k / info.blockSize) * info.bytesPerBlock * n).fill(0x11);
  return be.upload({ name: `probe.${name}`, type: info.id, shape: [k, n], bytes, owned: true });
}

/**
 * GFLOP/s of `run` (`flops` each): a warm call, then rounds of `reps` calls and one read of `out` (a queueing
 * backend finishes there), less a read alone (copying the output out costs as much as a small matmul and is no
 * part of a prefill's time); the median of 3 rounds. A slow backend (scalar) gets one round of one call.
 */
async function timeGflops(be: Backend, out: Buf, flops: number, reps: number, run: () => void): Promise<number> {
  const warm = performance.now();
  run(); // first touch, any lazy setup
  await be.read(out);
  const slow = performance.now() - warm > 100;
  const calls = slow ? 1 : reps;
  const runs: number[] = [];
  for (let round = 0; round < (slow ? 1 : 3); round++) {
    const s = performance.now();
    for (let c = 0; c < calls; c++) run();
    await be.read(out);
    const all = performance.now() - s;
    const r = performance.now();
    await be.read(out);
    const ms = Math.max(1e-3, (all - (performance.now() - r)) / calls);
    runs.push(flops / (ms / 1000) / 1e9);
  }
  return median(runs);
}

/** The key a MoE layer's fused-FFN throughput is filed under: its parts' types ("Q4_K+Q4_K+Q6_K"). */
export const expertKey = (parts: readonly Pick<ExpertPart, "type">[]): string => parts.map((p) => ggmlTypeName(p.type)).join("+");

/**
 * A MoE layer's routed experts as the engine runs them in a prompt batch: the backend's fused moeFfn over `experts`
 * experts of `width` token rows each, with the layer's part types and shapes (gate, up [D, F], down [F, D]). GFLOP/s
 * of the three matmuls, gathers, SwiGLU and weighted scatter together; undefined where the engine would not fuse them
 * (no moeFfn, other parts, a type it leaves to matmul).
 */
export async function probeExpertFfn(be: Backend, parts: readonly ExpertPart[], experts: number, width: number, reps = 4): Promise<number | undefined> {
  const byName = new Map(parts.map((p) => [p.name, p]));
  const [g, u, d] = ["gate", "up", "down"].map((n) => byName.get(n));
  if (!be.moeFfn || parts.length !== 3 || !g || !u || !d || parts.some((p) => p.split || p.shape.length !== 2)) return undefined;
  if (!parts.every((p) => be.supports("moe_ffn", p.type))) return undefined;
  const [D, F] = g.shape;
  const rowsEach = Math.max(1, Math.round(width));
  const made: ExpertRows[] = [];
  for (let e = 0; e < experts; e++) {
    const w = [g, u, d].map((p) => patternWeight(be, `${p.name}${e}`, ggmlTypeName(p.type), p.shape[0], p.shape[1]));
    if (w.some((x) => !x)) return undefined;
    made.push({ gate: w[0]!, up: w[1]!, down: w[2]!, rows: Int32Array.from({ length: rowsEach }, (_, i) => e * rowsEach + i), scales: new Float32Array(rowsEach).fill(0.125) });
  }
  const T = experts * rowsEach;
  const x = be.alloc(T * D);
  const out = be.alloc(T * D);
  try {
    be.write(x, spread(T * D));
    return await timeGflops(be, out, 2 * 3 * D * F * T, reps, () => be.moeFfn!(out, x, made));
  } finally {
    be.free(x);
    be.free(out);
  }
}

/**
 * `types`: ggml type names; `k`: the row length (the model's width: K-quants need multiples of 256). The weight's
 * bytes are one repeated pattern (0x11: normal f16/bf16/f32 scales and values, valid i-quant grid indices), which
 * costs the kernels what real weights do and needs no quantiser; n = 512 rows (8-row groups for the repacked layouts).
 */
export async function probeMatmul(be: Backend, types: readonly string[], k: number, tokens = 32, reps = 4): Promise<MatmulThroughput> {
  const t0 = performance.now();
  const n = 512;
  const x = be.alloc(k * tokens);
  const out = be.alloc(n * tokens);
  be.write(x, spread(k * tokens));
  const gflops: Record<string, number> = {};
  try {
    for (const name of types) {
      const w = patternWeight(be, name, name, k, n);
      if (!w) continue;
      gflops[name] = await timeGflops(be, out, 2 * k * n * tokens, reps, () => be.matmul(out, w, x, tokens));
    }
  } finally {
    be.free(x);
    be.free(out);
  }
  return { gflops, tokens, ms: performance.now() - t0, how: `${be.name} matmul of ${k}x${n} by ${tokens} tokens per type, ${reps} calls a round, median of 3 rounds` };
}

/**
 * ms of the backend's attention over one layer's first batch: `tokens` query rows from position 0 at the model's
 * head layout (what the prefill forecast scales by each batch's positions); undefined without a head layout.
 */
export async function probeAttention(be: Backend, a: { nHead: number; nHeadKv: number; headDim: number }, tokens: number, reps = 2): Promise<number | undefined> {
  const { nHead, nHeadKv, headDim } = a;
  if (!(nHead > 0 && nHeadKv > 0 && headDim > 0 && nHead % nHeadKv === 0 && Number.isInteger(headDim))) return undefined;
  const q = be.alloc(tokens * nHead * headDim);
  const kc = be.alloc(tokens * nHeadKv * headDim);
  const vc = be.alloc(tokens * nHeadKv * headDim);
  const out = be.alloc(tokens * nHead * headDim);
  try {
    be.write(q, spread(tokens * nHead * headDim));
    be.write(kc, spread(tokens * nHeadKv * headDim));
    be.write(vc, spread(tokens * nHeadKv * headDim));
    // Work of a causal batch from position 0: T(T+1)/2 query-key pairs, 4 flops per head dimension.
    const flops = 4 * nHead * headDim * ((tokens * (tokens + 1)) / 2);
    const g = await timeGflops(be, out, flops, reps, () => be.attention(out, q, kc, vc, { nTokens: tokens, startPos: 0, nHead, nHeadKv, headDim, scale: 1 / Math.sqrt(headDim) }));
    return (flops / (g * 1e9)) * 1000;
  } finally {
    for (const b of [q, kc, vc, out]) be.free(b);
  }
}
