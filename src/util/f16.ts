// Half-precision (IEEE binary16) and bfloat16 conversions, bit-exact with ggml:
//   f32 -> f16: GGML_FP32_TO_FP16 (round to nearest even, subnormals kept, overflow -> inf, NaN -> 0x7e00 | sign)
//   f16 -> f32: GGML_FP16_TO_FP32 (exact; NaN payload kept, quiet bit set as the x86 float path does)
//   f32 -> bf16: ggml_compute_fp32_to_bf16 (round to nearest even; NaN -> top half | 0x40, i.e. forced quiet)
//   bf16 -> f32: exact (bits << 16)
// All conversions work on raw bit patterns held in plain numbers (0..0xffff).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of the f32 nearest to x (x is first rounded to f32, as storing into a float would). */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** The f32 whose bit pattern is `bits` (as a JS number). */
export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // Subnormal: value = mant * 2^-24; normalise.
    let e = -14;
    let m = mant;
    while ((m & 0x400) === 0) {
      m <<= 1;
      e--;
    }
    return (sign | ((e + 127) << 23) | ((m & 0x3ff) << 13)) >>> 0;
  }
  if (exp === 31) {
    if (mant === 0) return (sign | 0x7f800000) >>> 0;
    return (sign | 0x7fc00000 | (mant << 13)) >>> 0; // NaN, quietened
  }
  return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
}

/** f16 bit pattern -> f32 value, for all 65536 patterns. */
export const F16_TO_F32: Float32Array = (() => {
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) bits[h] = f16BitsToF32Bits(h);
  return t;
})();

/** f16 bit pattern (0..0xffff) -> its value (exact). */
export function f16ToF32(h: number): number {
  return F16_TO_F32[h & 0xffff];
}

const SCALE_TO_INF = 2 ** 112;
const SCALE_TO_ZERO = 2 ** -110;

/**
 * f32 -> f16 bit pattern, round to nearest even (ggml's GGML_FP32_TO_FP16).
 * x is first rounded to f32. Overflow gives +-inf, NaN gives 0x7e00 with x's sign.
 */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const w = u32[0];
  const fx = f32[0];
  // base = (|f| * 2^112) * 2^-110, in f32 (the first product may overflow to inf).
  let base = Math.fround(Math.fround(Math.abs(fx) * SCALE_TO_INF) * SCALE_TO_ZERO);
  const shl1w = (w << 1) >>> 0;
  const sign = w & 0x80000000;
  let bias = (shl1w & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  u32[0] = (bias >>> 1) + 0x07800000;
  base = Math.fround(f32[0] + base);
  f32[0] = base;
  const bits = u32[0];
  const expBits = (bits >>> 13) & 0x7c00;
  const mantBits = bits & 0x0fff;
  const nonsign = expBits + mantBits;
  return ((sign >>> 16) | (shl1w > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}

/** bf16 bit pattern -> value (exact). */
export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** f32 -> bf16 bit pattern, round to nearest even, NaN forced quiet (ggml_compute_fp32_to_bf16). */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Round x to the nearest f16 value (as a number). */
export function roundToF16(x: number): number {
  return F16_TO_F32[f32ToF16(x)];
}

/** Read a little-endian f16 at byte offset o of b, as f32. */
export function readF16(b: Uint8Array, o: number): number {
  return F16_TO_F32[b[o] | (b[o + 1] << 8)];
}

/** Write x as a little-endian f16 at byte offset o of b. */
export function writeF16(b: Uint8Array, o: number, x: number): void {
  const h = f32ToF16(x);
  b[o] = h & 0xff;
  b[o + 1] = h >>> 8;
}
