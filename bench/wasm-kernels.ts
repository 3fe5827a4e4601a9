// WebAssembly SIMD128 matmul kernels: decode-shaped matvec (T = 1) GB/s of weights per type at 1 and 2 threads,
// next to the native kernels and the machine's memory read bandwidth at the same thread counts, plus a T = 64
// prefill column. Weights rotate over copies larger than the L3 cache, as in cpu-kernels.ts.
import { BF16, F16, F32, IQ1_M, IQ2_XXS, IQ3_XXS, IQ4_XS, MXFP4, Q2_K, Q3_K, Q4_0, Q4_K, Q5_K, Q6_K, Q8_0, type QuantFormat } from "../src/quant/index.js";
import { Stream } from "../src/gen/random.js";
import { directFillIq } from "../src/gen/direct-iq.js";
import { timeIt } from "./timing.js";
import { ScalarBackend } from "../src/backends/cpu/scalar.js";
import { WasmBackend, defaultThreads, wasmAvailable, wasmKernelsError } from "../src/backends/wasm/wasm.js";

const POOL_BYTES = 192 * 2 ** 20; // per type and shape: well past any L3

export interface NativeRef {
  /** GB/s of the native kernels by "<type> <shape label>", at 1 thread and at 2 (or as many as there are). */
  gbs: Map<string, number[]>;
  /** Memory read bandwidth at the same thread counts, GB/s. */
  mem: number[];
}

type Shape = { k: number; n: number; label: string };

/** The shapes a type is measured at: MXFP4 (gpt-oss's experts) at gpt-oss's expert matrix too. */
export function kernelShapes(f: QuantFormat, shapes: Shape[]): Shape[] {
  return f === MXFP4 ? [...shapes, { k: 2880, n: 2880, label: "gpt-oss expert 2880x2880" }] : shapes;
}

/** Whether --only (comma-separated name fragments, e.g. "MXFP4,IQ4_NL") keeps the type; no --only keeps all. */
export function typeWanted(name: string, only?: string): boolean {
  return !only || only.split(",").some((o) => name.toUpperCase().includes(o.toUpperCase()));
}

export function benchWasmKernels(shapes: Shape[], native?: NativeRef, only?: string): void {
  if (!wasmAvailable()) {
    console.log(`wasm kernels unavailable: ${wasmKernelsError()}`);
    return;
  }
  const threads = [1, Math.min(2, defaultThreads())].filter((t, i, all) => all.indexOf(t) === i);
  console.log(`wasm SIMD128 kernels: matvec T=1 GB/s of weights (ratio to native at the same threads${native ? `; memory read ${native.mem.map((m, i) => `${m.toFixed(1)} GB/s at ${threads[i]}T`).join(", ")}` : ""}); T=64 prefill GFLOP/s at ${threads.at(-1)}T`);
  // The types real MoE GGUFs use most (Q4_K_M-like, low-bit and "UD" mixes), then the float ones.
  for (const f of [Q8_0, Q4_K, Q6_K, Q5_K, Q3_K, Q2_K, IQ4_XS, IQ3_XXS, IQ2_XXS, IQ1_M, Q4_0, MXFP4, F16, BF16, F32] as QuantFormat[]) {
    if (!typeWanted(f.name, only)) continue;
    for (const sh of kernelShapes(f, shapes)) {
      const rowBytes = (sh.k / f.blockSize) * f.bytesPerBlock, matBytes = rowBytes * sh.n;
      const copies = Math.max(1, Math.floor(POOL_BYTES / matBytes));
      const host = new Uint8Array(matBytes);
      const row = new Float32Array(sh.k), s = new Stream(3, `bench-${f.name}-${sh.k}`);
      for (let r = 0; r < sh.n; r++) {
        if (f.dequantOnly) { // sampled in the quantised domain, as the generator writes them
          host.set(directFillIq(f.type, sh.k, 0.02, s), r * rowBytes);
          continue;
        }
        if (r < 64) s.fillUniform(row, 0.02);
        f.quantizeRow(row, host.subarray(r * rowBytes, (r + 1) * rowBytes), sh.k);
      }
      const xs = new Float32Array(sh.k * 64);
      new Stream(5, "bench-x").fillUniform(xs, 1);
      const label = `${f.name.padEnd(7)} ${sh.label.padEnd(24)}`;
      const cells: string[] = [];
      let gflops = 0;
      for (const [ti, t] of threads.entries()) {
        const be = new WasmBackend({ fallback: new ScalarBackend(), threads: t }); // one per run: its memories go with it
        const ws = Array.from({ length: copies }, (_, i) => be.upload({ name: `w${i}`, type: f.type, shape: [sh.k, sh.n], bytes: host.slice() }));
        const x = be.alloc(sh.k * 64), out = be.alloc(sh.n * 64);
        be.write(x, xs);
        const gbs = matBytes / timeIt((i) => be.matmul(out, ws[i % copies], x, 1), copies) / 1e9;
        const nat = native?.gbs.get(label)?.[ti];
        cells.push(`${t}T ${gbs.toFixed(1).padStart(5)} GB/s${nat ? ` (${(gbs / nat).toFixed(2)} of native ${nat.toFixed(1)})` : ""}`);
        if (ti === threads.length - 1) gflops = (2 * sh.k * sh.n * 64) / timeIt((i) => be.matmul(out, ws[i % copies], x, 64), 2) / 1e9;
        be.close();
      }
      console.log(`  ${label} ${cells.join("   ")}   T=64 ${gflops.toFixed(1).padStart(5)} GFLOP/s`);
    }
  }
}
