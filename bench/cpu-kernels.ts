// Native matmul kernels: decode-shaped matvec (T = 1) GB/s of weights per type at 1 and 2 threads, as a ratio
// of the machine's memory read bandwidth measured in the same run. Weights rotate over copies larger than the
// L3 cache, so the figures are DRAM-bound like a real decode step; a T = 64 column shows prefill compute.
// --only=TEXT[,TEXT] keeps the types whose name contains a TEXT (e.g. --only=MXFP4,IQ4_NL), native and wasm, without
// the ops table.
import { availableParallelism } from "node:os";
import { loadNativeAddon, nativeAddonError, type NativeAddon } from "../src/backends/cpu/native-addon.js";
import {
  BF16, F16, F32, IQ1_M, IQ1_S, IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S, IQ3_XXS, IQ4_NL, IQ4_XS, MXFP4, Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_0,
  Q5_1, Q5_K, Q6_K, Q8_0, type QuantFormat,
} from "../src/quant/index.js";
import { Stream } from "../src/gen/random.js";
import { directFillIq } from "../src/gen/direct-iq.js";
import { timeIt } from "./timing.js";
import { ScalarBackend } from "../src/backends/cpu/scalar.js";
import { NativeBackend, Q4_K_R8, Q8_0_R8, nativeLayout } from "../src/backends/cpu/native.js";
import type { Backend, Buf, Weight } from "../src/backends/backend.js";
import { benchWasmKernels, kernelShapes, typeWanted } from "./wasm-kernels.js";

const POOL_BYTES = 512 * 2 ** 20; // per type: well past any L3
const SHAPES = [
  { k: 2048, n: 6144, label: "2048x6144" },
  { k: 2048, n: 768, label: "expert gate/up 2048x768" },
  { k: 768, n: 2048, label: "expert down 768x2048" },
];

const LOWBIT: readonly QuantFormat[] = [Q2_K, Q3_K, Q5_K, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_XS, IQ3_XXS, IQ2_XXS, IQ4_NL, IQ3_S, IQ2_XS, IQ2_S, IQ1_S, IQ1_M, MXFP4];

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

/** Weight memory as the engine holds it (NativeBackend.allocHost: huge pages where Linux has them). */
function hugeBytes(a: NativeAddon, n: number): Uint8Array {
  return new NativeBackend({ threads: a.getThreads() }).allocHost(n);
}

/** Rows of f, quantised from random values once and tiled over `bytes` (weight memory as the engine holds it). */
function weightPool(a: NativeAddon, f: QuantFormat, k: number, bytes: number): Uint8Array {
  const rowBytes = (k / f.blockSize) * f.bytesPerBlock;
  const seedRows = 64;
  const pool = hugeBytes(a, Math.floor(bytes / rowBytes) * rowBytes);
  const row = new Float32Array(k);
  const s = new Stream(3, `bench-${f.name}-${k}`);
  if (f.dequantOnly) pool.set(directFillIq(f.type, seedRows * k, 0.02, s)); // i-quants: sampled in the quantised domain
  else {
    for (let r = 0; r < seedRows; r++) {
      s.fillUniform(row, 0.02);
      f.quantizeRow(row, pool.subarray(r * rowBytes, (r + 1) * rowBytes), k);
    }
  }
  for (let filled = seedRows * rowBytes; filled < pool.length; filled *= 2) pool.copyWithin(filled, 0, Math.min(filled, pool.length - filled));
  return pool;
}

export async function benchKernels(only?: string): Promise<void> {
  const a = loadNativeAddon();
  if (!a) {
    console.log(`native kernels unavailable: ${nativeAddonError()}`);
    benchWasmKernels(SHAPES, undefined, only);
    return;
  }
  const threads = [1, Math.min(2, availableParallelism())].filter((t, i, all) => all.indexOf(t) === i);
  const before = a.getThreads();
  const memBuf = hugeBytes(a, 256 * 2 ** 20).fill(1); // the same pages as the weights: the limit is DRAM, not the TLB
  // Measured between the kernels too, keeping the best: on a shared machine both get the same chances of a quiet window.
  const mem = new Map(threads.map((t) => [t, memBandwidth(a, t, memBuf, 8)] as const));
  const rows: { label: string; gbs: number[]; gflops: number }[] = [];
  // Q8_0_R8 / Q4_K_R8: rows repacked into 8-row groups, as NativeBackend.upload does for the model's matrices.
  // The low-bit and i-quant types (what "UD" dynamic GGUFs stream for experts) at the expert shapes only.
  const kinds = [Q8_0, "Q8_0_R8", Q4_K, "Q4_K_R8", Q6_K, F16, BF16, F32, ...LOWBIT] as const;
  for (const kind of kinds) {
    const f = kind === "Q4_K_R8" ? Q4_K : kind === "Q8_0_R8" ? Q8_0 : kind;
    const type = kind === "Q4_K_R8" ? Q4_K_R8 : kind === "Q8_0_R8" ? Q8_0_R8 : f.type;
    const name = kind === "Q4_K_R8" ? "Q4KR8" : kind === "Q8_0_R8" ? "Q80R8" : f.name;
    if (!typeWanted(name, only)) continue;
    for (const sh of kernelShapes(f, LOWBIT.includes(f) ? SHAPES.slice(1) : SHAPES)) {
      const pool = weightPool(a, f, sh.k, POOL_BYTES);
      const matBytes = ((sh.k / f.blockSize) * f.bytesPerBlock) * sh.n;
      const copies = Math.max(1, Math.floor(pool.length / matBytes));
      const mat = (i: number) => pool.subarray((i % copies) * matBytes, (i % copies + 1) * matBytes);
      if (type !== f.type) for (let i = 0; i < copies; i++) a.repackR8(f.type, mat(i), sh.k, sh.n);
      const x = new Float32Array(sh.k * 64);
      new Stream(5, "bench-x").fillUniform(x, 1);
      const out = new Float32Array(sh.n * 64);
      const gbs = threads.map((t) => {
        mem.set(t, Math.max(mem.get(t)!, memBandwidth(a, t, memBuf, 2)));
        return matBytes / timeIt((i) => a.matmul(type, mat(i), x, out, sh.k, sh.n, 1), copies) / 1e9;
      });
      const s64 = timeIt((i) => a.matmul(type, mat(i), x, out, sh.k, sh.n, 64), 2);
      rows.push({ label: `${name.padEnd(7)} ${sh.label.padEnd(24)}`, gbs, gflops: (2 * sh.k * sh.n * 64) / s64 / 1e9 });
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
  benchWasmKernels(SHAPES, { gbs: new Map(rows.map((r) => [r.label, r.gbs])), mem: threads.map((t) => mem.get(t)!) }, only);
  if (!only) benchOps(a, threads.at(-1)!);
  a.setThreads(before);
}

/** The per-token ops besides the dense matmuls at a3b decode shapes (hidden 2048, 32/4 heads of 128, experts
 *  2048x768, 8 routed), scalar TypeScript vs native, in microseconds per call and per token over 48 layers. */
export function benchOps(a: NativeAddon, threads: number): void {
  const D = 2048, nHead = 32, nHeadKv = 4, hd = 128, F = 768, nUsed = 8, layers = 48;
  const scalar = new ScalarBackend();
  const native = new NativeBackend({ threads });
  const mk = (be: Backend, n: number, seed: string, scale = 1): Buf => {
    const x = new Float32Array(n);
    new Stream(9, seed).fillUniform(x, scale);
    const b = be.alloc(n);
    be.write(b, x);
    return b;
  };
  const normW = (be: Backend, n: number): Weight => {
    const w = new Float32Array(n).fill(1);
    return be.upload({ name: "norm", type: F32.type, shape: [n], bytes: new Uint8Array(w.buffer) });
  };
  const expert = (be: Backend, f: QuantFormat, k: number, n: number, seed: string, owned = false): Weight => {
    const bytes = new Uint8Array((k / f.blockSize) * f.bytesPerBlock * n);
    const row = new Float32Array(k), rb = bytes.length / n, s = new Stream(4, seed);
    for (let r = 0; r < n; r++) {
      s.fillUniform(row, 0.05);
      f.quantizeRow(row, bytes.subarray(r * rb, (r + 1) * rb), k);
    }
    return be.upload({ name: seed, type: f.type, shape: [k, n], bytes, owned }); // owned Q4_K: repacked to Q4_K_R8
  };
  type Op = { label: string; perLayer: number; run: (be: Backend) => () => void };
  const ops: Op[] = [
    { label: "rmsNorm 2048 (attn + ffn)", perLayer: 2, run: (be) => { const x = mk(be, D, "x"), w = normW(be, D), o = be.alloc(D); return () => be.rmsNorm(o, x, w, 1e-6, D, 1); } },
    { label: "q/k norm 128 x (32 + 4)", perLayer: 1, run: (be) => { const x = mk(be, (nHead + nHeadKv) * hd, "q"), w = normW(be, hd); return () => be.rmsNorm(x, x, w, 1e-6, hd, nHead + nHeadKv); } },
    { label: "rope q 32x128 + k 4x128", perLayer: 1, run: (be) => { const q = mk(be, nHead * hd, "q"), k = mk(be, nHeadKv * hd, "k"), pos = Int32Array.of(700); return () => { be.rope(q, pos, nHead, hd, 1e6); be.rope(k, pos, nHeadKv, hd, 1e6); }; } },
    ...[512, 4096].map((ctx): Op => ({
      label: `attention decode, ${ctx} positions`, perLayer: 1, run: (be) => {
        const q = mk(be, nHead * hd, "q"), kc = mk(be, ctx * nHeadKv * hd, "k"), vc = mk(be, ctx * nHeadKv * hd, "v"), o = be.alloc(nHead * hd);
        return () => be.attention(o, q, kc, vc, { nTokens: 1, startPos: ctx - 1, nHead, nHeadKv, headDim: hd, scale: 1 / Math.sqrt(hd) });
      },
    })),
    { label: "add 2048 (x2)", perLayer: 2, run: (be) => { const x = mk(be, D, "x"), y = mk(be, D, "y"); return () => be.add(x, x, y, D); } },
    { label: "swiglu 768 (per expert)", perLayer: nUsed, run: (be) => { const g = mk(be, F, "g"), u = mk(be, F, "u"); return () => be.swiglu(g, g, u, F); } },
    { label: "scatterAddRows 2048 (per expert)", perLayer: nUsed, run: (be) => { const o = mk(be, D, "o"), x = mk(be, D, "x", 1e-3), rows = Int32Array.of(0), sc = Float32Array.of(0.1); return () => be.scatterAddRows(o, x, rows, sc, D); } },
  ];
  const us = (fn: () => void): number => timeIt(() => fn(), 3) * 1e6;
  console.log(`per-token ops at a3b decode shapes (${threads}T native): us per call, scalar -> native; ms per token over ${layers} layers`);
  let saved = 0;
  for (const op of ops) {
    const s = op.label.startsWith("attention decode, 4096") ? NaN : us(op.run(scalar));
    const n = us(op.run(native));
    const perTok = (v: number) => (v * op.perLayer * layers) / 1000;
    if (!op.label.includes("4096")) saved += perTok(s) - perTok(n);
    console.log(`  ${op.label.padEnd(34)} ${Number.isNaN(s) ? "   (skipped)" : s.toFixed(1).padStart(9)} -> ${n.toFixed(1).padStart(7)} us   (${Number.isNaN(s) ? "-" : perTok(s).toFixed(2)} -> ${perTok(n).toFixed(2)} ms/token)`);
  }
  console.log(`  saved per token (ctx 512, non-matmul ops): ${saved.toFixed(2)} ms`);
  // Expert FFN, weights hot in cache (compute and dispatch, not DRAM): separate ops vs the fused call.
  for (const [f, own] of [[Q4_K, false], [Q4_K, true], [Q8_0, false]] as const) {
    const g = expert(native, f, D, F, "g", own), u = expert(native, f, D, F, "u", own), d = expert(native, f, F, D, "d", own);
    const name = nativeLayout(g) === Q4_K_R8 ? "Q4KR8" : f.name;
    for (const n of [1, 8]) {
      const x = mk(native, n * D, "x"), ge = native.alloc(n * F), ue = native.alloc(n * F), y = native.alloc(n * D);
      const sep = us(() => { native.matmul(ge, g, x, n); native.matmul(ue, u, x, n); native.swiglu(ge, ge, ue, n * F); native.matmul(y, d, ge, n); });
      const fused = us(() => native.expertFfn(y, x, g, u, d, n));
      console.log(`  expert FFN ${name} ${n} row(s), weights in cache: separate ${sep.toFixed(1)} us, fused ${fused.toFixed(1)} us`);
    }
  }
  a.setThreads(threads);
}
