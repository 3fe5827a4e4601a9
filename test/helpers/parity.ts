// What the kernel parity tests share: the native addon (required), seeded inputs, running a matmul on any
// backend, the every-kernel-level loop, and ggml's reference activation quantisers written out in TypeScript.
import assert from "node:assert/strict";
import { loadNativeAddon, nativeAddonError, type NativeAddon } from "../../src/backends/cpu/native-addon.js";
import { NativeBackend } from "../../src/backends/cpu/native.js";
import type { Backend, Buf, ExpertRows, HostWeight, Weight } from "../../src/backends/backend.js";
import { BF16, F16, F32, Q4_K, Q6_K, Q8_0, type QuantFormat } from "../../src/quant/index.js";
import { Stream } from "../../src/gen/random.js";
import { directFillIq } from "../../src/gen/direct-iq.js";
import { f32ToF16 } from "../../src/util/f16.js";
import { sameBits } from "./numeric.js";

/** Every weight type a matmul kernel serves, and its parity tolerance (normalised MSE vs the scalar reference):
 *  quantised weights meet Q8-quantised activations (~1e-5 measured); float weights differ only in summation order. */
export const MATMUL_FORMATS = [F32, F16, BF16, Q8_0, Q4_K, Q6_K];
export const MATMUL_TOL: Record<string, number> = { F32: 1e-10, F16: 1e-10, BF16: 1e-10, Q8_0: 5e-4, Q4_K: 5e-4, Q6_K: 5e-4 };

/** The native addon; CI builds it, so a missing addon fails the test. */
export function needNative(): NativeAddon {
  const a = loadNativeAddon();
  assert.ok(a, `the native addon is required (npm run build:native): ${nativeAddonError()}`);
  return a;
}

/** len uniform values in [-scale, scale) from Stream(stream, seed). */
export function randomValues(len: number, seed: string, scale = 1, stream = 13): Float32Array {
  const x = new Float32Array(len);
  new Stream(stream, seed).fillUniform(x, scale);
  return x;
}

/** A backend buffer holding x. */
export function bufOf(be: Backend, x: Float32Array): Buf {
  const b = be.alloc(x.length);
  be.write(b, x);
  return b;
}

/** n rows of k values of type f: rows of different scales with a few outliers, at an odd byte offset (kernels must not assume alignment).
 *  A dequantise-only type (most i-quants) gets random blocks sampled in the quantised domain instead (directFillIq,
 *  as the generator writes i-quant experts), rows again of different scales. */
export function randomWeight(f: QuantFormat, k: number, n: number, seed: string): HostWeight {
  const s = new Stream(7, seed);
  const rowBytes = (k / f.blockSize) * f.bytesPerBlock;
  const bytes = new Uint8Array(rowBytes * n + 1).subarray(1);
  if (f.dequantOnly) {
    for (let r = 0; r < n; r++) bytes.set(directFillIq(f.type, k, 0.5 + (r % 5) * 0.3, s), r * rowBytes);
    return { name: `w_${f.name}_${k}x${n}`, type: f.type, shape: [k, n], bytes };
  }
  const row = new Float32Array(k);
  for (let r = 0; r < n; r++) {
    s.fillUniform(row, 0.5 + (r % 5) * 0.3);
    for (let i = 0; i < k; i += 97) row[i] *= 6;
    f.quantizeRow(row, bytes.subarray(r * rowBytes, (r + 1) * rowBytes), k);
  }
  return { name: `w_${f.name}_${k}x${n}`, type: f.type, shape: [k, n], bytes };
}

/** A copy of w whose bytes the upload owns (what the model loader and the expert slots pass): the native backend may repack it. */
export function owned(w: HostWeight): HostWeight {
  const bytes = new Uint8Array(w.bytes.length + 1).subarray(1);
  bytes.set(w.bytes);
  return { ...w, bytes, owned: true };
}

/** Whether NativeBackend.upload repacks Q4_K / Q8_0 on this CPU (x86 with AVX2: SIMD kernels for the 8-row layouts). */
export function repacks(a: NativeAddon): boolean {
  return a.kernelLevels().some((l) => l === "avx2" || l === "avx512");
}

/** out[t, n] = x[t, k] · wᵀ on `be`, read back. */
export async function runMatmul(be: Backend, w: Weight, x: Float32Array, sh: { k: number; n: number; t: number }): Promise<Float32Array> {
  const xb = be.alloc(sh.k * sh.t);
  be.write(xb, x);
  const out = be.alloc(sh.n * sh.t);
  be.matmul(out, w, xb, sh.t);
  return be.read(out);
}

/** fn on every kernel set this CPU runs, at 1 and 2 threads (which must agree bit for bit); check gets each level's result. */
export async function everyKernelLevel(a: NativeAddon, fn: (be: NativeBackend) => Promise<Float32Array>, check: (got: Float32Array, level: string) => Promise<void> | void): Promise<void> {
  const best = a.kernelLevel();
  const threads = a.getThreads();
  try {
    for (const level of a.kernelLevels()) {
      a.setKernelLevel(level);
      const one = await fn(new NativeBackend({ threads: 1 }));
      const two = await fn(new NativeBackend({ threads: 2 }));
      assert.ok(sameBits(one, two), `${level}: 1 and 2 threads differ`);
      await check(two, level);
    }
  } finally {
    a.setKernelLevel(best);
    a.setThreads(threads);
  }
}

/**
 * A MoE layer expert by expert, as the model's fallback runs it: gather the expert's rows of h[T, D], its FFN
 * (the backend's fused expertFfn when asked and present, else matmul, matmul, swiglu, matmul), then the
 * weighted scatter-add into out. The reference backend.moeFfn is held to.
 */
export function perExpertMoe(be: Backend, out: Buf, h: Buf, experts: readonly ExpertRows[], D: number, F: number, useExpertFfn = true): void {
  for (const ex of experts) {
    const n = ex.rows.length;
    if (n === 0) continue;
    const xe = be.alloc(n * D), ye = be.alloc(n * D), ge = be.alloc(n * F), ue = be.alloc(n * F);
    be.gatherRows(xe, h, ex.rows, D);
    if (useExpertFfn && be.expertFfn) be.expertFfn(ye, xe, ex.gate, ex.up, ex.down, n);
    else {
      be.matmul(ge, ex.gate, xe, n);
      be.matmul(ue, ex.up, xe, n);
      be.swiglu(ge, ge, ue, n * F);
      be.matmul(ye, ex.down, ge, n);
    }
    be.scatterAddRows(out, ye, ex.rows, ex.scales, D);
  }
}

/** Round to nearest, ties to even, as the hardware does. */
export function roundEven(v: number): number {
  return v + 6755399441055744 - 6755399441055744; // 1.5 * 2^52: the f64 add rounds half to even
}

/** ggml's x86 quantize_row_q8_0: d = amax/127 as f16, q = round-half-even(x * 127/amax). */
export function refQ8_0(x: Float32Array): Uint8Array {
  const fr = Math.fround, out = new Uint8Array((x.length / 32) * 34);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
    const h = f32ToF16(fr(amax / 127)), id = amax ? fr(127 / amax) : 0;
    out[34 * b] = h & 0xff;
    out[34 * b + 1] = h >> 8;
    for (let j = 0; j < 32; j++) out[34 * b + 2 + j] = roundEven(fr(x[32 * b + j] * id)) & 0xff;
  }
  return out;
}

/** ggml's quantize_row_q8_K_ref: scale by -127/max of the signed value of largest magnitude. */
export function refQ8K(x: Float32Array): Uint8Array {
  const fr = Math.fround, out = new Uint8Array((x.length / 256) * 292), dv = new DataView(out.buffer);
  for (let b = 0; b < x.length / 256; b++) {
    const o = 292 * b;
    let max = 0, amax = 0;
    for (let j = 0; j < 256; j++) {
      const v = x[256 * b + j];
      if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
    }
    if (amax === 0) continue;
    const iscale = fr(-127 / max);
    for (let g = 0; g < 16; g++) {
      let sum = 0;
      for (let j = 0; j < 16; j++) {
        const q = Math.min(127, roundEven(fr(iscale * x[256 * b + 16 * g + j])));
        out[o + 4 + 16 * g + j] = q & 0xff;
        sum += q;
      }
      dv.setInt16(o + 260 + 2 * g, sum, true);
    }
    dv.setFloat32(o, fr(1 / iscale), true);
  }
  return out;
}

/**
 * x as the webgpu backend's integer-dot readers see it (kernels.ts QUANT_X_WGSL): per 32 values d = amax / 127,
 * q = round(x / d) with ties to even, x' = d · q. The GPU's division may round a q the other way at a tie: a test
 * against x' allows for that (one flipped q moves a 4096-long dot by ~2e-4 of itself).
 */
export function quantiseX8(x: Float32Array): Float32Array {
  const o = new Float32Array(x.length);
  const even = (v: number) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let i = b; i < b + 32; i++) amax = Math.max(amax, Math.abs(x[i]));
    const d = Math.fround(amax / 127), id = d > 0 ? Math.fround(1 / d) : 0;
    for (let i = b; i < b + 32; i++) o[i] = d * even(Math.fround(x[i] * id));
  }
  return o;
}
