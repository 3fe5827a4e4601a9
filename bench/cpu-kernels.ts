// Native matmul kernels: decode-shaped matvec (T = 1) GB/s of weights per type at 1 and 2 threads, as a ratio
// of the machine's memory read bandwidth measured in the same run. Weights rotate over copies larger than the
// L3 cache, so the figures are DRAM-bound like a real decode step; a T = 64 column shows prefill compute.
import { availableParallelism } from "node:os";
import { loadNativeAddon, nativeAddonError, type NativeAddon } from "../src/backends/cpu/native-addon.js";
import { BF16, F16, F32, Q4_K, Q6_K, Q8_0, type QuantFormat } from "../src/quant/index.js";
import { Stream } from "../src/gen/random.js";

const POOL_BYTES = 512 * 2 ** 20; // per type: well past any L3
const SHAPES = [
  { k: 2048, n: 6144, label: "2048x6144" },
  { k: 2048, n: 768, label: "expert gate/up 2048x768" },
  { k: 768, n: 2048, label: "expert down 768x2048" },
];
// Best of several short windows: this machine may be shared, and the quietest window is the one to compare.
const WINDOWS = 8;
const WINDOW_MS = 60;

/** Seconds per call of fn in the fastest window, after `warm` warm-up calls; i keeps counting across windows. */
function timeIt(fn: (i: number) => void, warm: number): number {
  let i = 0;
  for (; i < warm; i++) fn(i);
  let best = Infinity;
  for (let w = 0; w < WINDOWS; w++) {
    let calls = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < WINDOW_MS) {
      fn(i++);
      calls++;
      t = performance.now();
    }
    best = Math.min(best, (t - t0) / 1000 / calls);
  }
  return best;
}

/** Best read bandwidth of a buffer 8x the L3 (GB/s); filled, since untouched pages all map to one zero page. */
function memBandwidth(a: NativeAddon, threads: number, buf: Uint8Array, reps: number): number {
  a.setThreads(threads);
  let best = 0;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    a.memRead(buf);
    best = Math.max(best, buf.length / ((performance.now() - t0) / 1000));
  }
  return best / 1e9;
}

/** Rows of f, quantised from random values once and tiled over `bytes`. */
function weightPool(f: QuantFormat, k: number, bytes: number): Uint8Array {
  const rowBytes = (k / f.blockSize) * f.bytesPerBlock;
  const seedRows = 64;
  const pool = new Uint8Array(Math.floor(bytes / rowBytes) * rowBytes);
  const row = new Float32Array(k);
  const s = new Stream(3, `bench-${f.name}-${k}`);
  for (let r = 0; r < seedRows; r++) {
    s.fillUniform(row, 0.02);
    f.quantizeRow(row, pool.subarray(r * rowBytes, (r + 1) * rowBytes), k);
  }
  for (let filled = seedRows * rowBytes; filled < pool.length; filled *= 2) pool.copyWithin(filled, 0, Math.min(filled, pool.length - filled));
  return pool;
}

export async function benchKernels(): Promise<void> {
  const a = loadNativeAddon();
  if (!a) {
    console.log(`native kernels unavailable: ${nativeAddonError()}`);
    return;
  }
  const threads = [1, Math.min(2, availableParallelism())].filter((t, i, all) => all.indexOf(t) === i);
  const before = a.getThreads();
  const memBuf = new Uint8Array(256 * 2 ** 20).fill(1);
  // Measured between the kernels too, keeping the best: on a shared machine both get the same chances of a quiet window.
  const mem = new Map(threads.map((t) => [t, memBandwidth(a, t, memBuf, 8)] as const));
  const rows: { label: string; gbs: number[]; gflops: number }[] = [];
  for (const f of [Q8_0, Q4_K, Q6_K, F16, BF16, F32]) {
    for (const sh of SHAPES) {
      const pool = weightPool(f, sh.k, POOL_BYTES);
      const matBytes = ((sh.k / f.blockSize) * f.bytesPerBlock) * sh.n;
      const copies = Math.max(1, Math.floor(pool.length / matBytes));
      const mat = (i: number) => pool.subarray((i % copies) * matBytes, (i % copies + 1) * matBytes);
      const x = new Float32Array(sh.k * 64);
      new Stream(5, "bench-x").fillUniform(x, 1);
      const out = new Float32Array(sh.n * 64);
      const gbs = threads.map((t) => {
        mem.set(t, Math.max(mem.get(t)!, memBandwidth(a, t, memBuf, 2)));
        return matBytes / timeIt((i) => a.matmul(f.type, mat(i), x, out, sh.k, sh.n, 1), copies) / 1e9;
      });
      const s64 = timeIt((i) => a.matmul(f.type, mat(i), x, out, sh.k, sh.n, 64), 2);
      rows.push({ label: `${f.name.padEnd(5)} ${sh.label.padEnd(24)}`, gbs, gflops: (2 * sh.k * sh.n * 64) / s64 / 1e9 });
    }
  }
  for (const t of threads) mem.set(t, Math.max(mem.get(t)!, memBandwidth(a, t, memBuf, 8)));
  a.setThreads(before);
  console.log(`kernels ${a.kernelLevel()} (${a.cpuFeatures().join(" ")}); memory read ${threads.map((t) => `${mem.get(t)!.toFixed(1)} GB/s at ${t}T`).join(", ")}`);
  console.log(`matvec T=1: GB/s of weights streamed from DRAM (ratio to memory read at the same thread count); T=64 prefill GFLOP/s at ${threads.at(-1)}T`);
  for (const r of rows) {
    const cells = r.gbs.map((g, i) => `${threads[i]}T ${g.toFixed(1).padStart(5)} GB/s (${(g / mem.get(threads[i])!).toFixed(2)})`);
    console.log(`  ${r.label} ${cells.join("   ")}   T=64 ${r.gflops.toFixed(0).padStart(4)} GFLOP/s`);
  }
}
