// WebAssembly SIMD128 kernels (AssemblyScript), the same math as native/src/*.c: activations are quantised as
// llama.cpp pairs them with each weight type (its vec_dot_type): Q8_0 blocks for Q8_0 / Q4_0 / Q5_0 / IQ4_NL / MXFP4
// weights, Q8_1 (Q8_0 and the block's sum) for Q4_1 / Q5_1, Q8_K blocks for the K-quants and the other i-quants,
// and meet the weights in integer dot products; F32 / F16 / BF16 weights take f32 activations. Block layouts are
// ggml's; pointers are offsets into the one imported memory, which the host lays out (i-quant tables, weights,
// activations, scratch). No runtime, no static data.

const F32: i32 = 0, F16: i32 = 1, Q4_0: i32 = 2, Q4_1: i32 = 3, Q5_0: i32 = 6, Q5_1: i32 = 7, Q8_0: i32 = 8, Q2_K: i32 = 10,
  Q3_K: i32 = 11, Q4_K: i32 = 12, Q5_K: i32 = 13, Q6_K: i32 = 14, IQ2_XXS: i32 = 16, IQ2_XS: i32 = 17, IQ3_XXS: i32 = 18,
  IQ1_S: i32 = 19, IQ4_NL: i32 = 20, IQ3_S: i32 = 21, IQ2_S: i32 = 22, IQ4_XS: i32 = 23, IQ1_M: i32 = 29, BF16: i32 = 30,
  MXFP4: i32 = 39;
const QK8_0: i32 = 32, QK_K: i32 = 256;
const B_Q8_0: usize = 34, B_Q4_0: usize = 18, B_Q4_1: usize = 20, B_Q5_0: usize = 22, B_Q5_1: usize = 24, B_IQ4_NL: usize = 18,
  B_Q2_K: usize = 84, B_Q3_K: usize = 110, B_Q4_K: usize = 144, B_Q5_K: usize = 176, B_Q6_K: usize = 210, B_IQ2_XXS: usize = 66, B_IQ2_XS: usize = 74, B_IQ2_S: usize = 82, B_IQ3_XXS: usize = 98, B_IQ3_S: usize = 110,
  B_IQ1_S: usize = 50, B_IQ1_M: usize = 56, B_IQ4_XS: usize = 136, B_Q8_K: usize = 292, B_MXFP4: usize = 17;

/** First byte the host may use (after any data the compiler placed). */
export function heapBase(): usize {
  return __heap_base;
}

// ---- i-quant tables ----------------------------------------------------------------------------------------
// ggml's tables (src/quant/iq-tables.ts, generated from ggml-common.h) are written by the host at the first
// 16-byte boundary past __heap_base (src/backends/wasm/iq-tables.ts), the same address in every instance over a
// memory, so worker threads read them too and the module carries no data segments. Offsets from that base:
const T_KVALUES: usize = 0; // kvalues_iq4nl: 16 int8
const T_SIGNS: usize = 16; // ksigns_iq2xs expanded: 128 x 8 bytes, 0xff where the value is negated
const T_IQ2XXS: usize = T_SIGNS + 1024; // iq2xxs_grid: 256 x 8 bytes
const T_IQ3XXS: usize = T_IQ2XXS + 2048; // iq3xxs_grid: 256 x 4 bytes
const T_IQ2XS: usize = T_IQ3XXS + 1024; // iq2xs_grid: 512 x 8 bytes
const T_IQ2S: usize = T_IQ2XS + 4096; // iq2s_grid: 1024 x 8 bytes
const T_IQ3S: usize = T_IQ2S + 8192; // iq3s_grid: 512 x 4 bytes
const T_IQ1S: usize = T_IQ3S + 2048; // iq1s_grid: 2048 x 8 int8 (-1, 0, 1)
const T_KVMXFP4: usize = T_IQ1S + 16384; // kvalues_mxfp4: 16 int8 (from memory: an i8x16 immediate in the loop ran 1.4x slower)
const T_END: usize = T_KVMXFP4 + 16;

@inline function tables(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

/**
 * Where the host writes table `id` (0 kvalues, 1 signs, 2 iq2xxs, 3 iq3xxs, 4 iq2xs, 5 iq2s, 6 iq3s, 7 iq1s grids,
 * 8 kvalues_mxfp4); id 9: the end of the tables.
 */
export function iqTable(id: i32): usize {
  switch (id) {
    case 0: return tables() + T_KVALUES;
    case 1: return tables() + T_SIGNS;
    case 2: return tables() + T_IQ2XXS;
    case 3: return tables() + T_IQ3XXS;
    case 4: return tables() + T_IQ2XS;
    case 5: return tables() + T_IQ2S;
    case 6: return tables() + T_IQ3S;
    case 7: return tables() + T_IQ1S;
    case 8: return tables() + T_KVMXFP4;
    default: return tables() + T_END;
  }
}

// ---- f16 <-> f32 -------------------------------------------------------------------------------------------

@inline function f16ToF32(h: u32): f32 {
  // (exponent, mantissa) moved into an f32 and rescaled by 2^112: exact for normals and subnormals.
  const v = reinterpret<f32>((h & 0x7fff) << 13) * reinterpret<f32>(0x77800000);
  let bits = reinterpret<u32>(v) | ((h & 0x8000) << 16);
  if ((h & 0x7c00) == 0x7c00) bits |= 0x7f800000; // inf / nan
  return reinterpret<f32>(bits);
}

/** Round to nearest even, like F16C's vcvtps2ph (native/src/common.h fp16_from_f32). */
function f32ToF16(f: f32): u32 {
  const u = reinterpret<u32>(f), sign = (u >> 16) & 0x8000, a = u & 0x7fffffff;
  if (a >= 0x7f800000) return sign | 0x7c00 | (a > 0x7f800000 ? 0x200 : 0);
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a < 0x38800000) {
    const v = reinterpret<f32>(a) + <f32>0.5;
    return sign | (reinterpret<u32>(v) - 0x3f000000);
  }
  const r = a + 0xfff + ((a >> 13) & 1) - (112 << 23);
  return sign | (r >> 13);
}

@inline function hsumF(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline function hsumI(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

/** 16 int8 x 16 int8 -> 4 int32 lane sums (sign-extending loads, then pmaddwd-style dots). */
@inline function dot16(a: usize, b: usize): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(v128.load8x8_s(a), v128.load8x8_s(b)),
    i32x4.dot_i16x8_s(v128.load8x8_s(a, 8), v128.load8x8_s(b, 8)),
  );
}

/** Round 16 scaled floats half to even and pack them to int8 at y; returns their int32 lane sums. */
@inline function round16(y: usize, v0: v128, v1: v128, v2: v128, v3: v128): v128 {
  const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(v0)), b = i32x4.trunc_sat_f32x4_s(f32x4.nearest(v1));
  const c = i32x4.trunc_sat_f32x4_s(f32x4.nearest(v2)), d = i32x4.trunc_sat_f32x4_s(f32x4.nearest(v3));
  v128.store(y, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d)));
  return i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
}

// ---- activation quantisers ---------------------------------------------------------------------------------

/** f32 x[n] -> Q8_0 blocks: d = amax/127 (f16), q = round-half-even(x * 127/amax). */
export function quant_q8_0(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n / QK8_0; i++, x += 128, y += B_Q8_0) {
    const v0 = v128.load(x), v1 = v128.load(x, 16), v2 = v128.load(x, 32), v3 = v128.load(x, 48);
    const v4 = v128.load(x, 64), v5 = v128.load(x, 80), v6 = v128.load(x, 96), v7 = v128.load(x, 112);
    let m = f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3)));
    m = f32x4.max(m, f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    store<u16>(y, <u16>f32ToF16(amax / <f32>127));
    const id = f32x4.splat(amax != 0 ? <f32>127 / amax : <f32>0);
    round16(y + 2, f32x4.mul(v0, id), f32x4.mul(v1, id), f32x4.mul(v2, id), f32x4.mul(v3, id));
    round16(y + 18, f32x4.mul(v4, id), f32x4.mul(v5, id), f32x4.mul(v6, id), f32x4.mul(v7, id));
  }
}

/** f32 x[n] -> Q8_K blocks (f32 d, 256 int8, 16 int16 sums), as ggml's quantize_row_q8_K_ref. */
export function quant_q8_K(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n / QK_K; i++, x += 1024, y += B_Q8_K) {
    let m = f32x4.splat(0);
    for (let j: usize = 0; j < 1024; j += 16) m = f32x4.max(m, f32x4.abs(v128.load(x + j)));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    if (amax == 0) {
      memory.fill(y, 0, B_Q8_K);
      continue;
    }
    let mx = amax; // the first value of largest magnitude, with its sign
    for (let j: usize = 0; j < 1024; j += 4) {
      const v = load<f32>(x + j);
      if (v == amax || v == -amax) {
        mx = v;
        break;
      }
    }
    const iscale = <f32>-127 / mx;
    const is = f32x4.splat(iscale);
    for (let j: usize = 0; j < 16; j++) {
      const p = x + 64 * j;
      const s = round16(y + 4 + 16 * j, f32x4.mul(v128.load(p), is), f32x4.mul(v128.load(p, 16), is),
        f32x4.mul(v128.load(p, 32), is), f32x4.mul(v128.load(p, 48), is));
      store<i16>(y + 260 + 2 * j, <i16>hsumI(s));
    }
    store<f32>(y, <f32>1 / iscale);
  }
}

// ---- activations as the dots read them --------------------------------------------------------------------
// The same values as the ggml blocks above, widened to int16 and split per 16 values into [8 even | 8 odd], so
// a dot needs no byte-to-int16 extension of activations (x86 shuffles) and weights widen with shifts and masks.
// Q8_0: per 32 values 64 bytes of int16, then f32 d (the f16 scale, widened), then the int32 sum of the 32 (what
// ggml's Q8_1 carries, as d * sum, for the _1 types' mins): XB_Q8_0 bytes.
// Q8_K: per 256 values 512 bytes of int16, f32 d, 16 int16 group sums: XB_Q8_K bytes.
const XB_Q8_0: usize = 80, XB_Q8_K: usize = 560;

/** Rounds 16 scaled floats half to even (clamped to <= hi), stores them as int16 [evens | odds] at y; returns their lane sums. */
@inline function round16x(y: usize, v0: v128, v1: v128, v2: v128, v3: v128, hi: v128): v128 {
  const a = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(v0)), hi), b = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(v1)), hi);
  const c = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(v2)), hi), d = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(v3)), hi);
  const p0 = i16x8.narrow_i32x4_s(a, b), p1 = i16x8.narrow_i32x4_s(c, d);
  v128.store(y, i16x8.shuffle(p0, p1, 0, 2, 4, 6, 8, 10, 12, 14));
  v128.store(y, i16x8.shuffle(p0, p1, 1, 3, 5, 7, 9, 11, 13, 15), 16);
  return i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
}

/** f32 x[n] -> widened Q8_0 activations (values equal to quant_q8_0's). */
function prep_q8_0(x: usize, y: usize, n: i32): void {
  const hi = i32x4.splat(127);
  for (let i = 0; i < n / QK8_0; i++, x += 128, y += XB_Q8_0) {
    const v0 = v128.load(x), v1 = v128.load(x, 16), v2 = v128.load(x, 32), v3 = v128.load(x, 48);
    const v4 = v128.load(x, 64), v5 = v128.load(x, 80), v6 = v128.load(x, 96), v7 = v128.load(x, 112);
    let m = f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3)));
    m = f32x4.max(m, f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    store<f32>(y + 64, f16ToF32(f32ToF16(amax / <f32>127)));
    const id = f32x4.splat(amax != 0 ? <f32>127 / amax : <f32>0);
    const s0 = round16x(y, f32x4.mul(v0, id), f32x4.mul(v1, id), f32x4.mul(v2, id), f32x4.mul(v3, id), hi);
    const s1 = round16x(y + 32, f32x4.mul(v4, id), f32x4.mul(v5, id), f32x4.mul(v6, id), f32x4.mul(v7, id), hi);
    store<i32>(y + 68, hsumI(i32x4.add(s0, s1)));
  }
}

/** f32 x[n] -> widened Q8_K activations (values equal to quant_q8_K's). */
function prep_q8_K(x: usize, y: usize, n: i32): void {
  const hi = i32x4.splat(127);
  for (let i = 0; i < n / QK_K; i++, x += 1024, y += XB_Q8_K) {
    let m = f32x4.splat(0);
    for (let j: usize = 0; j < 1024; j += 16) m = f32x4.max(m, f32x4.abs(v128.load(x + j)));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    if (amax == 0) {
      memory.fill(y, 0, XB_Q8_K);
      continue;
    }
    let mx = amax;
    for (let j: usize = 0; j < 1024; j += 4) {
      const v = load<f32>(x + j);
      if (v == amax || v == -amax) {
        mx = v;
        break;
      }
    }
    const iscale = <f32>-127 / mx;
    const is = f32x4.splat(iscale);
    for (let j: usize = 0; j < 16; j++) {
      const p = x + 64 * j;
      const s = round16x(y + 32 * j, f32x4.mul(v128.load(p), is), f32x4.mul(v128.load(p, 16), is),
        f32x4.mul(v128.load(p, 32), is), f32x4.mul(v128.load(p, 48), is), hi);
      store<i16>(y + 516 + 2 * j, <i16>hsumI(s));
    }
    store<f32>(y + 512, <f32>1 / iscale);
  }
}

// ---- dot products: one weight row against one activation row ------------------------------------------------

const LO8: v128 = i16x8.splat(0x00ff);

/** 16 signed int8 weights in a register x 16 widened activations at a (evens, odds) -> 4 int32 lane sums. */
@inline function dotS8v(q: v128, a: usize): v128 {
  const ev = i16x8.shr_s(i16x8.shl(q, 8), 8), od = i16x8.shr_s(q, 8);
  return i32x4.add(i32x4.dot_i16x8_s(ev, v128.load(a)), i32x4.dot_i16x8_s(od, v128.load(a, 16)));
}

/** 16 signed int8 weights at w x 16 widened activations at a -> 4 int32 lane sums. */
@inline function dotS8(w: usize, a: usize): v128 {
  return dotS8v(v128.load(w), a);
}

/** 16 bytes of unsigned weights (< 128) in a register x 16 widened activations at a -> 4 int32 lane sums. */
@inline function dotU8(q: v128, a: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(v128.and(q, LO8), v128.load(a)), i32x4.dot_i16x8_s(i16x8.shr_u(q, 8), v128.load(a, 16)));
}

@inline function dotQ8_0(n: i32, w: usize, x: usize): f32 {
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
  const nb = n / QK8_0;
  let i = 0;
  for (; i + 2 <= nb; i += 2, w += 2 * B_Q8_0, x += 2 * XB_Q8_0) {
    const s0 = i32x4.add(dotS8(w + 2, x), dotS8(w + 18, x + 32));
    const s1 = i32x4.add(dotS8(w + 36, x + 80), dotS8(w + 52, x + 112));
    acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(s0), f32x4.splat(f16ToF32(load<u16>(w)) * load<f32>(x, 64))));
    acc1 = f32x4.add(acc1, f32x4.mul(f32x4.convert_i32x4_s(s1), f32x4.splat(f16ToF32(load<u16>(w, 34)) * load<f32>(x, 144))));
  }
  if (i < nb) {
    const s0 = i32x4.add(dotS8(w + 2, x), dotS8(w + 18, x + 32));
    acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(s0), f32x4.splat(f16ToF32(load<u16>(w)) * load<f32>(x, 64))));
  }
  return hsumF(f32x4.add(acc0, acc1));
}

// Q4_K / Q5_K: 8 (scale, min) pairs of 6 bits at s, unpacked with 32-bit word operations (native q4_K_scales_mins):
// scales 0-3 and 4-7 in the bytes of two words; mins likewise.
@inline function kScales0(s: usize): u32 {
  return load<u32>(s) & 0x3f3f3f3f;
}
@inline function kScales1(s: usize): u32 {
  return (load<u32>(s, 8) & 0x0f0f0f0f) | (((load<u32>(s) >> 6) & 0x03030303) << 4);
}

/** Q4_K / Q5_K mins term: sum_j min[j] * (activation sum of sub-block j), from the 16 group sums of the Q8_K row at x. */
@inline function kMins(s: usize, x: usize): v128 {
  const u1 = load<u32>(s, 4), u2 = load<u32>(s, 8);
  const mn0 = u1 & 0x3f3f3f3f, mn1 = ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4);
  const b0 = i32x4.extadd_pairwise_i16x8_s(v128.load(x, 516)), b1 = i32x4.extadd_pairwise_i16x8_s(v128.load(x, 532));
  const mv0 = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(i32x4.splat(mn0)));
  const mv1 = i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(i32x4.splat(mn1)));
  return i32x4.add(i32x4.mul(b0, mv0), i32x4.mul(b1, mv1));
}

/** 32 unsigned weights (< 128) in two registers x 32 widened activations at a, times one scale -> 4 int32 lane sums. */
@inline function dotU8s2(q0: v128, q1: v128, a: usize, sc: i32): v128 {
  return i32x4.mul(i32x4.add(dotU8(q0, a), dotU8(q1, a + 32)), i32x4.splat(sc));
}

@inline function dotQ4_K(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0), accm = f32x4.splat(0);
  const m4 = i16x8.splat(0x000f);
  for (let i = 0; i < n / QK_K; i++, w += B_Q4_K, x += XB_Q8_K) {
    const sc0 = kScales0(w + 4), sc1 = kScales1(w + 4);
    let sumi = i32x4.splat(0);
    for (let j: usize = 0; j < 4; j++) { // 32 bytes: sub-block 2j in the low nibbles, 2j+1 in the high
      const q0 = v128.load(w + 16 + 32 * j), q1 = v128.load(w + 32 + 32 * j);
      const a = x + 128 * j; // widened groups 4j .. 4j+3 (32 bytes each)
      // nibbles of even / odd bytes as int16 lanes: masks and 16-bit shifts only
      let lo = i32x4.add(i32x4.dot_i16x8_s(v128.and(q0, m4), v128.load(a)), i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(q0, 8), m4), v128.load(a, 16)));
      lo = i32x4.add(lo, i32x4.add(i32x4.dot_i16x8_s(v128.and(q1, m4), v128.load(a, 32)), i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(q1, 8), m4), v128.load(a, 48))));
      let hi = i32x4.add(i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(q0, 4), m4), v128.load(a, 64)), i32x4.dot_i16x8_s(i16x8.shr_u(q0, 12), v128.load(a, 80)));
      hi = i32x4.add(hi, i32x4.add(i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(q1, 4), m4), v128.load(a, 96)), i32x4.dot_i16x8_s(i16x8.shr_u(q1, 12), v128.load(a, 112))));
      const s = j < 2 ? sc0 : sc1, sh = (<u32>j & 1) * 16;
      sumi = i32x4.add(sumi, i32x4.mul(lo, i32x4.splat((s >> sh) & 0xff)));
      sumi = i32x4.add(sumi, i32x4.mul(hi, i32x4.splat((s >> (sh + 8)) & 0xff)));
    }
    const dx = load<f32>(x, 512);
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(dx * f16ToF32(load<u16>(w)))));
    accm = f32x4.add(accm, f32x4.mul(f32x4.convert_i32x4_s(kMins(w + 4, x)), f32x4.splat(dx * f16ToF32(load<u16>(w, 2)))));
  }
  return hsumF(acc) - hsumF(accm);
}

@inline function dotQ5_K(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0), accm = f32x4.splat(0);
  const m4 = i8x16.splat(0x0f), one = i8x16.splat(1);
  for (let i = 0; i < n / QK_K; i++, w += B_Q5_K, x += XB_Q8_K) {
    const sc0 = kScales0(w + 4), sc1 = kScales1(w + 4);
    const h0 = v128.load(w, 16), h1 = v128.load(w, 32); // bits 2j / 2j+1 of qh[l]: the fifth bits of sub-blocks 2j / 2j+1
    let sumi = i32x4.splat(0);
    for (let j: u32 = 0; j < 4; j++) { // 64 values: sub-block 2j in the low nibbles of 32 bytes, 2j+1 in the high
      const q0 = v128.load(w + 48 + 32 * j), q1 = v128.load(w + 64 + 32 * j);
      // 16-bit shifts (< 8), then byte masks: each byte keeps bits from itself only
      const l0 = v128.or(v128.and(q0, m4), i16x8.shl(v128.and(i16x8.shr_u(h0, 2 * j), one), 4));
      const l1 = v128.or(v128.and(q1, m4), i16x8.shl(v128.and(i16x8.shr_u(h1, 2 * j), one), 4));
      const u0 = v128.or(v128.and(i16x8.shr_u(q0, 4), m4), i16x8.shl(v128.and(i16x8.shr_u(h0, 2 * j + 1), one), 4));
      const u1 = v128.or(v128.and(i16x8.shr_u(q1, 4), m4), i16x8.shl(v128.and(i16x8.shr_u(h1, 2 * j + 1), one), 4));
      const a = x + 128 * <usize>j; // widened groups 4j .. 4j+3
      const s = j < 2 ? sc0 : sc1, sh = (j & 1) * 16;
      sumi = i32x4.add(sumi, dotU8s2(l0, l1, a, (s >> sh) & 0xff));
      sumi = i32x4.add(sumi, dotU8s2(u0, u1, a + 64, (s >> (sh + 8)) & 0xff));
    }
    const dx = load<f32>(x, 512);
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(dx * f16ToF32(load<u16>(w)))));
    accm = f32x4.add(accm, f32x4.mul(f32x4.convert_i32x4_s(kMins(w + 4, x)), f32x4.splat(dx * f16ToF32(load<u16>(w, 2)))));
  }
  return hsumF(acc) - hsumF(accm);
}

@inline function dotQ6_K(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const m4 = i8x16.splat(0x0f), m30 = i8x16.splat(0x30);
  for (let i = 0; i < n / QK_K; i++, w += B_Q6_K, x += XB_Q8_K) {
    // quants as unsigned 0..63; the -32 offset comes back as 32 * sum_k sc[k] * groupsum[k]
    const sc = v128.load(w, 192), bs = x + 516;
    const off = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(sc), v128.load(bs)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(sc), v128.load(bs, 16)));
    let sumi = i32x4.sub(i32x4.splat(0), i32x4.shl(off, 5));
    for (let h: usize = 0; h < 2; h++) { // 128 values per half; scale k covers values 16k..16k+15 of the block
      const ql = w + 64 * h, qh = w + 128 + 32 * h, s = w + 192 + 8 * h, a = x + 256 * h;
      for (let c: usize = 0; c < 2; c++) { // 16 of the 32 columns l at a time: groups 8h + c + {0, 2, 4, 6}
        const l0 = v128.load(ql + 16 * c), l1 = v128.load(ql + 32 + 16 * c), hb = v128.load(qh + 16 * c);
        // 16-bit shifts, then byte masks: each byte keeps bits from itself only
        const q0 = v128.or(v128.and(l0, m4), v128.and(i16x8.shl(hb, 4), m30));
        const q1 = v128.or(v128.and(l1, m4), v128.and(i16x8.shl(hb, 2), m30));
        const q2 = v128.or(v128.and(i16x8.shr_u(l0, 4), m4), v128.and(hb, m30));
        const q3 = v128.or(v128.and(i16x8.shr_u(l1, 4), m4), v128.and(i16x8.shr_u(hb, 2), m30));
        const ac = a + 32 * c;
        sumi = i32x4.add(sumi, i32x4.mul(dotU8(q0, ac), i32x4.splat(load<i8>(s + c))));
        sumi = i32x4.add(sumi, i32x4.mul(dotU8(q1, ac + 64), i32x4.splat(load<i8>(s + 2 + c))));
        sumi = i32x4.add(sumi, i32x4.mul(dotU8(q2, ac + 128), i32x4.splat(load<i8>(s + 4 + c))));
        sumi = i32x4.add(sumi, i32x4.mul(dotU8(q3, ac + 192), i32x4.splat(load<i8>(s + 6 + c))));
      }
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * f16ToF32(load<u16>(w, 208)))));
  }
  return hsumF(acc);
}

@inline function dotQ2_K(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0), accm = f32x4.splat(0);
  const m3 = i8x16.splat(3);
  for (let i = 0; i < n / QK_K; i++, w += B_Q2_K, x += XB_Q8_K) {
    // value 128h + 32j + l: bits 2j..2j+1 of qs[32h + l]; scale byte g = 8h + 2j + (l >= 16): low nibble scale, high min
    let sumi = i32x4.splat(0);
    for (let h: usize = 0; h < 2; h++) {
      const q0 = v128.load(w + 16 + 32 * h), q1 = v128.load(w + 32 + 32 * h);
      for (let j: u32 = 0; j < 4; j++) {
        const g: usize = 8 * h + 2 * <usize>j, a = x + 32 * g;
        sumi = i32x4.add(sumi, i32x4.mul(dotU8(v128.and(i16x8.shr_u(q0, 2 * j), m3), a), i32x4.splat(load<u8>(w + g) & 15)));
        sumi = i32x4.add(sumi, i32x4.mul(dotU8(v128.and(i16x8.shr_u(q1, 2 * j), m3), a + 32), i32x4.splat(load<u8>(w + g + 1) & 15)));
      }
    }
    // mins: sum_g min[g] * (activation sum of group g)
    const mn = i8x16.shr_u(v128.load(w), 4);
    const msum = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(mn), v128.load(x, 516)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(mn), v128.load(x, 532)));
    const dx = load<f32>(x, 512);
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(dx * f16ToF32(load<u16>(w, 80)))));
    accm = f32x4.add(accm, f32x4.mul(f32x4.convert_i32x4_s(msum), f32x4.splat(dx * f16ToF32(load<u16>(w, 82)))));
  }
  return hsumF(acc) - hsumF(accm);
}

@inline function dotQ3_K(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const m3 = i8x16.splat(3), one = i8x16.splat(1);
  for (let i = 0; i < n / QK_K; i++, w += B_Q3_K, x += XB_Q8_K) {
    // 16 6-bit scales (ggml's kmask unpacking), bytes of 4 words: scale g in byte g & 3 of word g >> 2
    const a0 = load<u32>(w, 96), a1 = load<u32>(w, 100), t = load<u32>(w, 104);
    const s0 = (a0 & 0x0f0f0f0f) | ((t & 0x03030303) << 4), s1 = (a1 & 0x0f0f0f0f) | (((t >> 2) & 0x03030303) << 4);
    const s2 = ((a0 >> 4) & 0x0f0f0f0f) | (((t >> 4) & 0x03030303) << 4), s3 = ((a1 >> 4) & 0x0f0f0f0f) | (((t >> 6) & 0x03030303) << 4);
    // quants as unsigned 0..7 (q + 4 * high bit); the -4 comes back as 4 * sum_g (sc[g] - 32) * groupsum[g]
    const sc = i8x16.sub(i32x4.replace_lane(i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(s0), 1, s1), 2, s2), 3, s3), i8x16.splat(32));
    const off = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(sc), v128.load(x, 516)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(sc), v128.load(x, 532)));
    let sumi = i32x4.sub(i32x4.splat(0), i32x4.shl(off, 2));
    const hm0 = v128.load(w), hm1 = v128.load(w, 16);
    for (let h: u32 = 0; h < 2; h++) {
      // value 128h + 32j + l: bits 2j..2j+1 of qs[32h + l], high bit 4h + j of hmask[l]; scale 8h + 2j + (l >= 16)
      const q0 = v128.load(w + 32 + 32 * <usize>h), q1 = v128.load(w + 48 + 32 * <usize>h);
      for (let j: u32 = 0; j < 4; j++) {
        const v0 = v128.or(v128.and(i16x8.shr_u(q0, 2 * j), m3), i16x8.shl(v128.and(i16x8.shr_u(hm0, 4 * h + j), one), 2));
        const v1 = v128.or(v128.and(i16x8.shr_u(q1, 2 * j), m3), i16x8.shl(v128.and(i16x8.shr_u(hm1, 4 * h + j), one), 2));
        const sw = h == 0 ? (j < 2 ? s0 : s1) : (j < 2 ? s2 : s3), sh = (j & 1) * 16;
        const a = x + 32 * <usize>(8 * h + 2 * j);
        sumi = i32x4.add(sumi, i32x4.mul(dotU8(v0, a), i32x4.splat(<i32>((sw >> sh) & 0xff) - 32)));
        sumi = i32x4.add(sumi, i32x4.mul(dotU8(v1, a + 32), i32x4.splat(<i32>((sw >> (sh + 8)) & 0xff) - 32)));
      }
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * f16ToF32(load<u16>(w, 108)))));
  }
  return hsumF(acc);
}

const BYTE_SEL_LO: v128 = i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
const BYTE_SEL_HI: v128 = i8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
const BIT_OF_BYTE: v128 = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);

/** Bits 0-15 (sel BYTE_SEL_LO) or 16-31 (BYTE_SEL_HI) of qh as 16 bytes, 0x10 where the bit is set: the 5th bits. */
@inline function fifthBits(qh: v128, sel: v128): v128 {
  const b = v128.and(i8x16.swizzle(qh, sel), BIT_OF_BYTE);
  return v128.and(i8x16.eq(b, BIT_OF_BYTE), i8x16.splat(0x10));
}

/**
 * The legacy 32-value types (ggml's block_q{4,5}_{0,1}; `five`, `withMin` are constants at each call, so the
 * branches fold): value j is the low nibble of qs[j], value 16 + j its high nibble, with bit j / 16 + j of qh as
 * a 5th bit; _0: value = d * (q - 8 | 16); _1: value = d * q + m, the m part m * (activation sum of the block).
 */
@inline function dotLegacy(n: i32, w: usize, x: usize, five: bool, withMin: bool): f32 {
  let acc = f32x4.splat(0), accm: f32 = 0;
  const m4 = i8x16.splat(0x0f), off = i8x16.splat(five ? 16 : 8);
  const qhAt: usize = withMin ? 4 : 2, qsAt: usize = qhAt + (five ? 4 : 0);
  for (let i = 0; i < n / QK8_0; i++, w += qsAt + 16, x += XB_Q8_0) {
    const q = v128.load(w + qsAt), dx = load<f32>(x, 64);
    let lo = v128.and(q, m4), hi = i8x16.shr_u(q, 4);
    if (five) {
      const qh = v128.load32_splat(w + qhAt);
      lo = v128.or(lo, fifthBits(qh, BYTE_SEL_LO));
      hi = v128.or(hi, fifthBits(qh, BYTE_SEL_HI));
    }
    const s = withMin ? i32x4.add(dotU8(lo, x), dotU8(hi, x + 32)) : i32x4.add(dotS8v(i8x16.sub(lo, off), x), dotS8v(i8x16.sub(hi, off), x + 32));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(f16ToF32(load<u16>(w)) * dx)));
    if (withMin) accm += f16ToF32(load<u16>(w, 2)) * dx * <f32>load<i32>(x, 68);
  }
  return hsumF(acc) + accm;
}

@inline function dotIQ4_NL(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const m4 = i8x16.splat(0x0f), kv = v128.load(tables() + T_KVALUES);
  for (let i = 0; i < n / QK8_0; i++, w += B_IQ4_NL, x += XB_Q8_0) {
    // value j: kvalues[low nibble of qs[j]], value 16 + j: kvalues[its high nibble]
    const q = v128.load(w, 2);
    const s = i32x4.add(dotS8v(i8x16.swizzle(kv, v128.and(q, m4)), x), dotS8v(i8x16.swizzle(kv, i8x16.shr_u(q, 4)), x + 32));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(f16ToF32(load<u16>(w)) * load<f32>(x, 64))));
  }
  return hsumF(acc);
}

@inline function dotMXFP4(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  // kvalues_mxfp4: the E2M1 values doubled; the scale is 2^(e - 128)
  const m4 = i8x16.splat(0x0f), kv = v128.load(tables() + T_KVMXFP4);
  for (let i = 0; i < n / QK8_0; i++, w += B_MXFP4, x += XB_Q8_0) {
    const q = v128.load(w, 1), e = <u32>load<u8>(w);
    const s = i32x4.add(dotS8v(i8x16.swizzle(kv, v128.and(q, m4)), x), dotS8v(i8x16.swizzle(kv, i8x16.shr_u(q, 4)), x + 32));
    const d = reinterpret<f32>(e < 2 ? <u32>0x00200000 << e : (e - 1) << 23);
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(x, 64) * d)));
  }
  return hsumF(acc);
}

@inline function dotIQ4_XS(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const m4 = i8x16.splat(0x0f), kv = v128.load(tables() + T_KVALUES);
  for (let i = 0; i < n / QK_K; i++, w += B_IQ4_XS, x += XB_Q8_K) {
    const sh = <u32>load<u16>(w, 2);
    let sumi = i32x4.splat(0);
    for (let ib: u32 = 0; ib < 8; ib++) { // 32 values: kvalues of the 16 low nibbles, then of the 16 high
      const ls = ((<u32>load<u8>(w + 4 + (ib >> 1)) >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
      const q = v128.load(w + 8 + 16 * <usize>ib), a = x + 64 * <usize>ib;
      const s = i32x4.add(dotS8v(i8x16.swizzle(kv, v128.and(q, m4)), a), dotS8v(i8x16.swizzle(kv, i8x16.shr_u(q, 4)), a + 32));
      sumi = i32x4.add(sumi, i32x4.mul(s, i32x4.splat(<i32>ls - 32)));
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * f16ToF32(load<u16>(w)))));
  }
  return hsumF(acc);
}

/** 16 grid magnitudes (int8) with the signs of two 7-bit ksigns codes (8 values each) applied: (g ^ m) - m. */
@inline function signed16(g: v128, c0: u32, c1: u32): v128 {
  const sg = tables() + T_SIGNS;
  const m = v128.load64_lane(sg + 8 * <usize>c1, v128.load64_zero(sg + 8 * <usize>c0), 1);
  return i8x16.sub(v128.xor(g, m), m);
}

@inline function dotIQ3_XXS(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const grid = tables() + T_IQ3XXS;
  for (let i = 0; i < n / QK_K; i++, w += B_IQ3_XXS, x += XB_Q8_K) {
    let sumi = i32x4.splat(0);
    for (let ib: usize = 0; ib < 8; ib++) { // 32 values: 8 grid indices (4 magnitudes each); 4 sign codes and a scale s in a u32
      const q = w + 2 + 8 * ib, aux = load<u32>(w + 66 + 4 * ib), a = x + 64 * ib;
      const g = grid4x4(grid, load<u8>(q), load<u8>(q, 1), load<u8>(q, 2), load<u8>(q, 3));
      const h = grid4x4(grid, load<u8>(q, 4), load<u8>(q, 5), load<u8>(q, 6), load<u8>(q, 7));
      const s = i32x4.add(dotS8v(signed16(g, aux & 127, (aux >> 7) & 127), a), dotS8v(signed16(h, (aux >> 14) & 127, (aux >> 21) & 127), a + 32));
      sumi = i32x4.add(sumi, i32x4.mul(s, i32x4.splat(2 * (aux >> 28) + 1))); // d * (0.5 + s) * 0.5 = d * (2s + 1) / 4
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * f16ToF32(load<u16>(w)) * <f32>0.25)));
  }
  return hsumF(acc);
}

@inline function dotIQ2_XXS(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const grid = tables() + T_IQ2XXS;
  for (let i = 0; i < n / QK_K; i++, w += B_IQ2_XXS, x += XB_Q8_K) {
    let sumi = i32x4.splat(0);
    for (let ib: usize = 0; ib < 8; ib++) { // 32 values: a u32 of 4 grid indices (8 magnitudes each), a u32 of 4 sign codes and a scale s
      const q = load<u32>(w + 2 + 8 * ib), aux = load<u32>(w + 6 + 8 * ib), a = x + 64 * ib;
      const g = grid8x2(grid, q & 255, (q >> 8) & 255), h = grid8x2(grid, (q >> 16) & 255, q >> 24);
      const s = i32x4.add(dotS8v(signed16(g, aux & 127, (aux >> 7) & 127), a), dotS8v(signed16(h, (aux >> 14) & 127, (aux >> 21) & 127), a + 32));
      sumi = i32x4.add(sumi, i32x4.mul(s, i32x4.splat(2 * (aux >> 28) + 1))); // d * (0.5 + s) * 0.25 = d * (2s + 1) / 8
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * f16ToF32(load<u16>(w)) * <f32>0.125)));
  }
  return hsumF(acc);
}

/** 16 grid magnitudes with signs from two raw sign bytes (bit j negates value j): (g ^ m) - m. */
@inline function signedBits16(g: v128, signs: u32): v128 {
  const m = i8x16.eq(v128.and(i8x16.swizzle(i16x8.splat(<i16>signs), BYTE_SEL_LO), BIT_OF_BYTE), BIT_OF_BYTE);
  return i8x16.sub(v128.xor(g, m), m);
}

/** Two 8-byte grid entries (indices i0, i1) in one register. */
@inline function grid8x2(grid: usize, i0: u32, i1: u32): v128 {
  return v128.load64_lane(grid + 8 * <usize>i1, v128.load64_zero(grid + 8 * <usize>i0), 1);
}

/** Four 4-byte grid entries in one register. */
@inline function grid4x4(grid: usize, i0: u32, i1: u32, i2: u32, i3: u32): v128 {
  let g = v128.load32_zero(grid + 4 * <usize>i0);
  g = v128.load32_lane(grid + 4 * <usize>i1, g, 1);
  g = v128.load32_lane(grid + 4 * <usize>i2, g, 2);
  return v128.load32_lane(grid + 4 * <usize>i3, g, 3);
}

/** IQ2_XS: 16 values (half h of sub-block ib): two u16 codes (9-bit grid index, 7-bit sign code). */
@inline function iq2xsHalf(grid: usize, w: usize, x: usize, ib: usize, h: usize): v128 {
  const u = load<u32>(w + 2 + 8 * ib + 4 * h), q0 = u & 0xffff, q1 = u >> 16;
  return dotS8v(signed16(grid8x2(grid, q0 & 511, q1 & 511), q0 >> 9, q1 >> 9), x + 64 * ib + 32 * h);
}

@inline function dotIQ2_XS(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const grid = tables() + T_IQ2XS;
  for (let i = 0; i < n / QK_K; i++, w += B_IQ2_XS, x += XB_Q8_K) {
    let sumi = i32x4.splat(0);
    for (let ib: usize = 0; ib < 8; ib++) { // a 4-bit scale s per 16 values: d * (0.5 + s) * 0.25
      const sc = <u32>load<u8>(w + 66 + ib);
      sumi = i32x4.add(sumi, i32x4.mul(iq2xsHalf(grid, w, x, ib, 0), i32x4.splat(2 * (sc & 15) + 1)));
      sumi = i32x4.add(sumi, i32x4.mul(iq2xsHalf(grid, w, x, ib, 1), i32x4.splat(2 * (sc >> 4) + 1)));
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * f16ToF32(load<u16>(w)) * <f32>0.125)));
  }
  return hsumF(acc);
}

/** IQ2_S: 16 values (half h of sub-block ib): entries l = 2h, 2h + 1 with 10-bit indices (low byte, bits 2l, 2l + 1 of qh), raw sign bytes. */
@inline function iq2sHalf(grid: usize, w: usize, x: usize, ib: usize, qh: u32, h: usize): v128 {
  const b = 4 * <u32>h, q = w + 2 + 4 * ib + 2 * h;
  const g = grid8x2(grid, <u32>load<u8>(q) | (((qh >> b) & 3) << 8), <u32>load<u8>(q, 1) | (((qh >> (b + 2)) & 3) << 8));
  return dotS8v(signedBits16(g, <u32>load<u16>(w + 34 + 4 * ib + 2 * h)), x + 64 * ib + 32 * h);
}

@inline function dotIQ2_S(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const grid = tables() + T_IQ2S;
  for (let i = 0; i < n / QK_K; i++, w += B_IQ2_S, x += XB_Q8_K) {
    let sumi = i32x4.splat(0);
    for (let ib: usize = 0; ib < 8; ib++) { // a 4-bit scale s per 16 values: d * (0.5 + s) * 0.25
      const sc = <u32>load<u8>(w + 74 + ib), qh = <u32>load<u8>(w + 66 + ib);
      sumi = i32x4.add(sumi, i32x4.mul(iq2sHalf(grid, w, x, ib, qh, 0), i32x4.splat(2 * (sc & 15) + 1)));
      sumi = i32x4.add(sumi, i32x4.mul(iq2sHalf(grid, w, x, ib, qh, 1), i32x4.splat(2 * (sc >> 4) + 1)));
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * f16ToF32(load<u16>(w)) * <f32>0.125)));
  }
  return hsumF(acc);
}

/** IQ3_S: 16 values (half h of sub-block ib): 4 grid entries of 4, 9-bit indices (low byte, a bit of qh), raw sign bytes. */
@inline function iq3sHalf(grid: usize, w: usize, x: usize, ib: usize, qh: u32, h: usize): v128 {
  const q = w + 2 + 8 * ib + 4 * h, b = 4 * <u32>h;
  const g = grid4x4(grid, <u32>load<u8>(q) | (((qh >> b) & 1) << 8), <u32>load<u8>(q, 1) | (((qh >> (b + 1)) & 1) << 8),
    <u32>load<u8>(q, 2) | (((qh >> (b + 2)) & 1) << 8), <u32>load<u8>(q, 3) | (((qh >> (b + 3)) & 1) << 8));
  return dotS8v(signedBits16(g, <u32>load<u16>(w + 74 + 4 * ib + 2 * h)), x + 64 * ib + 32 * h);
}

@inline function dotIQ3_S(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const grid = tables() + T_IQ3S;
  for (let i = 0; i < n / QK_K; i++, w += B_IQ3_S, x += XB_Q8_K) {
    let sumi = i32x4.splat(0);
    for (let ib: usize = 0; ib < 8; ib++) {
      const qh = <u32>load<u8>(w + 66 + ib), ls = (<u32>load<u8>(w + 106 + (ib >> 1)) >> (4 * (<u32>ib & 1))) & 15;
      const s = i32x4.add(iq3sHalf(grid, w, x, ib, qh, 0), iq3sHalf(grid, w, x, ib, qh, 1));
      sumi = i32x4.add(sumi, i32x4.mul(s, i32x4.splat(2 * ls + 1))); // d * (1 + 2s)
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * f16ToF32(load<u16>(w)))));
  }
  return hsumF(acc);
}

// IQ1_S / IQ1_M: value = d * (2s + 1) * (grid + delta), grid in {-1, 0, 1}, delta = +-1/8, taken as integers
// 8 * grid + 8 * delta (in -9..9) with the 1/8 in the scale.

@inline function dotIQ1_S(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const grid = tables() + T_IQ1S;
  for (let i = 0; i < n / QK_K; i++, w += B_IQ1_S, x += XB_Q8_K) {
    let sumi = i32x4.splat(0);
    for (let ib: usize = 0; ib < 8; ib++) { // 32 values: 4 grid indices of 11 bits (low byte, 3 bits of qh), scale, delta sign
      const qh = <u32>load<u16>(w + 34 + 2 * ib), q = w + 2 + 4 * ib;
      const dv = i8x16.splat(<i8>(1 - 2 * <i32>(qh >> 15))); // arithmetic, not a select: the sign bit is random
      const g0 = grid8x2(grid, <u32>load<u8>(q) | ((qh & 7) << 8), <u32>load<u8>(q, 1) | (((qh >> 3) & 7) << 8));
      const g1 = grid8x2(grid, <u32>load<u8>(q, 2) | (((qh >> 6) & 7) << 8), <u32>load<u8>(q, 3) | (((qh >> 9) & 7) << 8));
      const s = i32x4.add(dotS8v(i8x16.add(i8x16.shl(g0, 3), dv), x + 64 * ib), dotS8v(i8x16.add(i8x16.shl(g1, 3), dv), x + 64 * ib + 32));
      sumi = i32x4.add(sumi, i32x4.mul(s, i32x4.splat(2 * ((qh >> 12) & 7) + 1)));
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * f16ToF32(load<u16>(w)) * <f32>0.125)));
  }
  return hsumF(acc);
}

const DELTA_BITS: v128 = i8x16(8, 8, 8, 8, 8, 8, 8, 8, -128, -128, -128, -128, -128, -128, -128, -128);

/** IQ1_M: 16 values (half h of sub-block ib): qh byte 2ib + h holds 2 x (3 index high bits, delta sign). */
@inline function iq1mHalf(grid: usize, w: usize, x: usize, ib: usize, h: usize): v128 {
  const qh = <u32>load<u8>(w + 32 + 2 * ib + h), q = w + 4 * ib + 2 * h;
  const g = grid8x2(grid, <u32>load<u8>(q) | ((qh & 7) << 8), <u32>load<u8>(q, 1) | (((qh >> 4) & 7) << 8));
  // delta signs: bit 3 of qh for values 0-7, bit 7 for 8-15 (0xff | 1 = -1 where set, else 1; no selects: they branch)
  const dv = v128.or(i8x16.eq(v128.and(i8x16.splat(<i8>qh), DELTA_BITS), DELTA_BITS), i8x16.splat(1));
  return dotS8v(i8x16.add(i8x16.shl(g, 3), dv), x + 64 * ib + 32 * h);
}

@inline function dotIQ1_M(n: i32, w: usize, x: usize): f32 {
  let acc = f32x4.splat(0);
  const grid = tables() + T_IQ1S;
  for (let i = 0; i < n / QK_K; i++, w += B_IQ1_M, x += XB_Q8_K) {
    // the f16 super-block scale: the top nibbles of the 4 scale words
    const s0 = <u32>load<u16>(w, 48), s1 = <u32>load<u16>(w, 50), s2 = <u32>load<u16>(w, 52), s3 = <u32>load<u16>(w, 54);
    const d = f16ToF32((s0 >> 12) | ((s1 >> 8) & 0xf0) | ((s2 >> 4) & 0xf00) | (s3 & 0xf000));
    let sumi = i32x4.splat(0);
    for (let ib: usize = 0; ib < 8; ib++) {
      const sc = <u32>load<u16>(w + 48 + 2 * (ib >> 1)) >> (6 * (<u32>ib & 1));
      sumi = i32x4.add(sumi, i32x4.mul(iq1mHalf(grid, w, x, ib, 0), i32x4.splat(2 * (sc & 7) + 1)));
      sumi = i32x4.add(sumi, i32x4.mul(iq1mHalf(grid, w, x, ib, 1), i32x4.splat(2 * ((sc >> 3) & 7) + 1)));
    }
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(load<f32>(x, 512) * d * <f32>0.125)));
  }
  return hsumF(acc);
}

@inline function dotF32(n: i32, w: usize, x: usize): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16, w += 64, x += 64) {
    a0 = f32x4.add(a0, f32x4.mul(v128.load(w), v128.load(x)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(w, 16), v128.load(x, 16)));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(w, 32), v128.load(x, 32)));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(w, 48), v128.load(x, 48)));
  }
  for (; i + 4 <= n; i += 4, w += 16, x += 16) a0 = f32x4.add(a0, f32x4.mul(v128.load(w), v128.load(x)));
  let s = hsumF(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; i < n; i++, w += 4, x += 4) s += load<f32>(w) * load<f32>(x);
  return s;
}

/** 8 f16 (as zero-extended u16 in two i32x4 halves) -> f32x4: exponent and mantissa rescaled by 2^112, sign, inf/nan. */
@inline function halfToF32x4(h: v128): v128 {
  const mag = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  let v = f32x4.mul(mag, f32x4.splat(reinterpret<f32>(0x77800000)));
  const inf = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  v = v128.or(v, v128.and(inf, i32x4.splat(0x7f800000)));
  return v128.or(v, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

@inline function dotF16(n: i32, w: usize, x: usize): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16, w += 32, x += 64) {
    const h0 = v128.load(w), h1 = v128.load(w, 16);
    a0 = f32x4.add(a0, f32x4.mul(halfToF32x4(i32x4.extend_low_i16x8_u(h0)), v128.load(x)));
    a1 = f32x4.add(a1, f32x4.mul(halfToF32x4(i32x4.extend_high_i16x8_u(h0)), v128.load(x, 16)));
    a2 = f32x4.add(a2, f32x4.mul(halfToF32x4(i32x4.extend_low_i16x8_u(h1)), v128.load(x, 32)));
    a3 = f32x4.add(a3, f32x4.mul(halfToF32x4(i32x4.extend_high_i16x8_u(h1)), v128.load(x, 48)));
  }
  let s = hsumF(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; i < n; i++, w += 2, x += 4) s += f16ToF32(load<u16>(w)) * load<f32>(x);
  return s;
}

@inline function dotBF16(n: i32, w: usize, x: usize): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= n; i += 16, w += 32, x += 64) {
    const h0 = v128.load(w), h1 = v128.load(w, 16);
    a0 = f32x4.add(a0, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(h0), 16), v128.load(x)));
    a1 = f32x4.add(a1, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(h0), 16), v128.load(x, 16)));
    a2 = f32x4.add(a2, f32x4.mul(i32x4.shl(i32x4.extend_low_i16x8_u(h1), 16), v128.load(x, 32)));
    a3 = f32x4.add(a3, f32x4.mul(i32x4.shl(i32x4.extend_high_i16x8_u(h1), 16), v128.load(x, 48)));
  }
  let s = hsumF(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; i < n; i++, w += 2, x += 4) s += reinterpret<f32>(<u32>load<u16>(w) << 16) * load<f32>(x);
  return s;
}

// ---- matmul driver -----------------------------------------------------------------------------------------

/** Bytes of one row of K values of a ggml type; 0 if unsupported or not whole blocks. */
export function rowBytes(type: i32, K: i32): usize {
  if (K <= 0) return 0;
  if (type == F32) return <usize>K * 4;
  if (type == F16 || type == BF16) return <usize>K * 2;
  const act = actKind(type);
  if (act == ACT_Q8_0) return K % QK8_0 ? 0 : <usize>(K / QK8_0) * blockBytes(type);
  if (act == ACT_Q8_K) return K % QK_K ? 0 : <usize>(K / QK_K) * blockBytes(type);
  return 0;
}

/** Bytes per block of a quantised type. */
function blockBytes(type: i32): usize {
  switch (type) {
    case Q8_0: return B_Q8_0;
    case Q4_0: return B_Q4_0;
    case Q4_1: return B_Q4_1;
    case Q5_0: return B_Q5_0;
    case Q5_1: return B_Q5_1;
    case IQ4_NL: return B_IQ4_NL;
    case MXFP4: return B_MXFP4;
    case Q2_K: return B_Q2_K;
    case Q3_K: return B_Q3_K;
    case Q4_K: return B_Q4_K;
    case Q5_K: return B_Q5_K;
    case Q6_K: return B_Q6_K;
    case IQ2_XXS: return B_IQ2_XXS;
    case IQ3_XXS: return B_IQ3_XXS;
    case IQ2_XS: return B_IQ2_XS;
    case IQ2_S: return B_IQ2_S;
    case IQ3_S: return B_IQ3_S;
    case IQ1_S: return B_IQ1_S;
    case IQ1_M: return B_IQ1_M;
    case IQ4_XS: return B_IQ4_XS;
    default: return 0;
  }
}

const ACT_F32 = 0, ACT_Q8_0 = 1, ACT_Q8_K = 2;

/** The activations a weight type's dot reads (llama.cpp's vec_dot_type); -1: no kernel for the type. */
function actKind(type: i32): i32 {
  switch (type) {
    case F32: case F16: case BF16: return ACT_F32;
    case Q8_0: case Q4_0: case Q4_1: case Q5_0: case Q5_1: case IQ4_NL: case MXFP4: return ACT_Q8_0;
    case Q2_K: case Q3_K: case Q4_K: case Q5_K: case Q6_K: return ACT_Q8_K;
    case IQ2_XXS: case IQ2_XS: case IQ2_S: case IQ3_XXS: case IQ3_S: case IQ1_S: case IQ1_M: case IQ4_XS: return ACT_Q8_K;
    default: return -1;
  }
}

/** Bytes of one activation row as the dot for `type` reads it (quantised, or f32). */
export function actRowBytes(type: i32, K: i32): usize {
  const act = actKind(type);
  if (act == ACT_Q8_0) return <usize>(K / QK8_0) * XB_Q8_0;
  if (act == ACT_Q8_K) return <usize>(K / QK_K) * XB_Q8_K;
  return <usize>K * 4;
}

@inline function dot(type: i32, K: i32, w: usize, x: usize): f32 {
  switch (type) {
    case Q8_0: return dotQ8_0(K, w, x);
    case Q4_0: return dotLegacy(K, w, x, false, false);
    case Q4_1: return dotLegacy(K, w, x, false, true);
    case Q5_0: return dotLegacy(K, w, x, true, false);
    case Q5_1: return dotLegacy(K, w, x, true, true);
    case IQ4_NL: return dotIQ4_NL(K, w, x);
    case MXFP4: return dotMXFP4(K, w, x);
    case Q2_K: return dotQ2_K(K, w, x);
    case Q3_K: return dotQ3_K(K, w, x);
    case Q4_K: return dotQ4_K(K, w, x);
    case Q5_K: return dotQ5_K(K, w, x);
    case Q6_K: return dotQ6_K(K, w, x);
    case IQ2_XXS: return dotIQ2_XXS(K, w, x);
    case IQ3_XXS: return dotIQ3_XXS(K, w, x);
    case IQ4_XS: return dotIQ4_XS(K, w, x);
    case IQ2_XS: return dotIQ2_XS(K, w, x);
    case IQ2_S: return dotIQ2_S(K, w, x);
    case IQ3_S: return dotIQ3_S(K, w, x);
    case IQ1_S: return dotIQ1_S(K, w, x);
    case IQ1_M: return dotIQ1_M(K, w, x);
    case F16: return dotF16(K, w, x);
    case BF16: return dotBF16(K, w, x);
    default: return dotF32(K, w, x);
  }
}

/**
 * Activations as the dot for `type` reads them: T rows of K f32 at x quantised into xq (T * actRowBytes), for
 * quantised weights; returns where the rows are (xq, or x itself for float weights).
 */
export function prep(type: i32, x: usize, xq: usize, K: i32, T: i32): usize {
  const act = actKind(type);
  if (act != ACT_Q8_0 && act != ACT_Q8_K) return x;
  const xrow = actRowBytes(type, K);
  for (let t = 0; t < T; t++) {
    if (act == ACT_Q8_0) prep_q8_0(x + <usize>t * K * 4, xq + <usize>t * xrow, K);
    else prep_q8_K(x + <usize>t * K * 4, xq + <usize>t * xrow, K);
  }
  return xq;
}

/** Output rows [r0, r1) of out[T, N] from prepared activations xb (see prep): one thread's share of a matmul. */
export function matmul_rows(type: i32, w: usize, xb: usize, out: usize, K: i32, N: i32, T: i32, r0: i32, r1: i32): void {
  const wrow = rowBytes(type, K), xrow = actRowBytes(type, K);
  // A tile of weight rows stays in L1 while every token's row passes by.
  let tile = T == 1 ? r1 - r0 : 16384 / <i32>wrow;
  if (tile < 1) tile = 1;
  if (T > 1 && tile > 16) tile = 16;
  for (let a = r0; a < r1; a += tile) {
    const b = min(a + tile, r1);
    for (let t = 0; t < T; t++) {
      const xr = xb + <usize>t * xrow, o = out + <usize>t * N * 4;
      for (let r = a; r < b; r++) store<f32>(o + <usize>r * 4, dot(type, K, w + <usize>r * wrow, xr));
    }
  }
}

/** out[T, N] = x[T, K] · Wᵀ for W = N rows of K values of `type`; xq: T * actRowBytes bytes of scratch. */
export function matmul(type: i32, w: usize, x: usize, out: usize, K: i32, N: i32, T: i32, xq: usize): void {
  matmul_rows(type, w, prep(type, x, xq, K, T), out, K, N, T, 0, N);
}

// ---- element-wise ops --------------------------------------------------------------------------------------

/** For nRows rows of len: out = x / sqrt(mean(x²) + eps) * w (w: len f32). out may equal x. */
export function rms_norm(out: usize, x: usize, w: usize, eps: f64, len: i32, nRows: i32): void {
  for (let r = 0; r < nRows; r++) {
    const xr = x + <usize>r * len * 4, or = out + <usize>r * len * 4;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let i = 0;
    for (; i + 8 <= len; i += 8) {
      const v0 = v128.load(xr + <usize>i * 4), v1 = v128.load(xr + <usize>i * 4, 16);
      a0 = f32x4.add(a0, f32x4.mul(v0, v0));
      a1 = f32x4.add(a1, f32x4.mul(v1, v1));
    }
    let ss = <f64>hsumF(f32x4.add(a0, a1));
    for (; i < len; i++) {
      const v = <f64>load<f32>(xr + <usize>i * 4);
      ss += v * v;
    }
    const inv = <f32>(1 / Math.sqrt(ss / len + eps));
    const iv = f32x4.splat(inv);
    i = 0;
    for (; i + 4 <= len; i += 4) {
      const p = <usize>i * 4;
      v128.store(or + p, f32x4.mul(f32x4.mul(v128.load(xr + p), iv), v128.load(w + p)));
    }
    for (; i < len; i++) {
      const p = <usize>i * 4;
      store<f32>(or + p, load<f32>(xr + p) * inv * load<f32>(w + p));
    }
  }
}

/** out[0..n) = a + b (out may equal a or b). */
export function add(out: usize, a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = <usize>i * 4;
    v128.store(out + p, f32x4.add(v128.load(a + p), v128.load(b + p)));
  }
  for (; i < n; i++) {
    const p = <usize>i * 4;
    store<f32>(out + p, load<f32>(a + p) + load<f32>(b + p));
  }
}

/** out[0..n) = silu(gate) * up = gate / (1 + e^-gate) * up, 4 lanes at a time (out may equal gate or up). */
export function swiglu(out: usize, gate: usize, up: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = <usize>i * 4;
    const g = v128.load(gate + p);
    v128.store(out + p, f32x4.mul(f32x4.div(g, f32x4.add(one, exp4(f32x4.neg(g)))), v128.load(up + p)));
  }
  for (; i < n; i++) {
    const p = <usize>i * 4;
    const g = <f64>load<f32>(gate + p);
    store<f32>(out + p, <f32>((g / (1 + Math.exp(-g))) * <f64>load<f32>(up + p)));
  }
}

// ---- rope, attention ---------------------------------------------------------------------------------------

/**
 * NeoX rotary embedding in place on x[nTok, nHead, hd]; row t has position pos[t] (int32 at pos). Angles as the
 * scalar reference computes them, in f64: theta = pos * base^(-2i/hd); cs holds hd f64 of scratch (cos, sin).
 */
export function rope(x: usize, pos: usize, nTok: i32, nHead: i32, hd: i32, freqBase: f64, cs: usize): void {
  const half = hd / 2;
  for (let t = 0; t < nTok; t++) {
    const p = <f64>load<i32>(pos + <usize>t * 4);
    for (let i = 0; i < half; i++) {
      const theta = p * Math.pow(freqBase, <f64>(-2 * i) / <f64>hd);
      store<f64>(cs + <usize>i * 16, Math.cos(theta));
      store<f64>(cs + <usize>i * 16 + 8, Math.sin(theta));
    }
    for (let h = 0; h < nHead; h++) {
      const b = x + (<usize>(t * nHead + h) * hd) * 4;
      for (let i = 0; i < half; i++) {
        const c = load<f64>(cs + <usize>i * 16), s = load<f64>(cs + <usize>i * 16 + 8);
        const pa = b + <usize>i * 4, pb = b + <usize>(i + half) * 4;
        const a = <f64>load<f32>(pa), bb = <f64>load<f32>(pb);
        store<f32>(pa, <f32>(a * c - bb * s));
        store<f32>(pb, <f32>(a * s + bb * c));
      }
    }
  }
}

/** e^x for 4 lanes (Cephes expf: 2^n times a degree-6 polynomial on [-ln2/2, ln2/2]; ~1 ulp); below e^-87: 0. */
@inline function exp4(x: v128): v128 {
  const lo = f32x4.lt(x, f32x4.splat(-87.0));
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.0)), f32x4.splat(88.0));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  p = f32x4.add(f32x4.add(f32x4.mul(p, r2), r), f32x4.splat(1));
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.andnot(f32x4.mul(p, e), lo);
}

/**
 * Causal grouped-query attention of q[T, nHead, hd] against k, v rows [startPos + T, nHeadKv * hd];
 * out[T, nHead * hd]. hd must be a multiple of 4; sc holds startPos + T f32 of scratch (scores).
 */
export function attention(out: usize, q: usize, k: usize, v: usize, nTok: i32, startPos: i32, nHead: i32, nHeadKv: i32, hd: i32, scale: f32, sc: usize): void {
  const group = nHead / nHeadKv, kvRow = <usize>(nHeadKv * hd) * 4, hb = <usize>hd * 4;
  for (let t = 0; t < nTok; t++) {
    const nKeys = startPos + t + 1;
    for (let h = 0; h < nHead; h++) {
      const qh = q + <usize>(t * nHead + h) * hb, kvOff = <usize>(h / group) * hb;
      // scores and their max
      let mx: f32 = -Infinity;
      for (let j = 0; j < nKeys; j++) {
        const kj = k + <usize>j * kvRow + kvOff;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        let i: usize = 0;
        for (; i + 32 <= hb; i += 32) {
          a0 = f32x4.add(a0, f32x4.mul(v128.load(qh + i), v128.load(kj + i)));
          a1 = f32x4.add(a1, f32x4.mul(v128.load(qh + i, 16), v128.load(kj + i, 16)));
        }
        if (i < hb) a0 = f32x4.add(a0, f32x4.mul(v128.load(qh + i), v128.load(kj + i)));
        const s = hsumF(f32x4.add(a0, a1)) * scale;
        store<f32>(sc + <usize>j * 4, s);
        mx = max(mx, s);
      }
      // softmax weights (unnormalised) and their sum; the padding lanes past nKeys are never read back
      const mv = f32x4.splat(mx);
      let sum = f32x4.splat(0);
      for (let j = 0; j < nKeys; j += 4) {
        const p = sc + <usize>j * 4;
        let e = exp4(f32x4.sub(v128.load(p), mv));
        if (j + 4 > nKeys) { // zero the lanes past the last key
          const keep = i32x4.lt_s(i32x4.add(i32x4.splat(j), i32x4(0, 1, 2, 3)), i32x4.splat(nKeys));
          e = v128.and(e, keep);
        }
        v128.store(p, e);
        sum = f32x4.add(sum, e);
      }
      const inv = f32x4.splat(<f32>1 / hsumF(sum));
      // out = sum_j p_j v_j / sum, 16 values of the head at a time held in registers
      const oh = out + <usize>(t * nHead + h) * hb;
      let i: usize = 0;
      for (; i + 64 <= hb; i += 64) {
        let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
        let vj = v + kvOff + i;
        for (let j = 0; j < nKeys; j++, vj += kvRow) {
          const p = v128.load32_splat(sc + <usize>j * 4);
          o0 = f32x4.add(o0, f32x4.mul(p, v128.load(vj)));
          o1 = f32x4.add(o1, f32x4.mul(p, v128.load(vj, 16)));
          o2 = f32x4.add(o2, f32x4.mul(p, v128.load(vj, 32)));
          o3 = f32x4.add(o3, f32x4.mul(p, v128.load(vj, 48)));
        }
        v128.store(oh + i, f32x4.mul(o0, inv));
        v128.store(oh + i, f32x4.mul(o1, inv), 16);
        v128.store(oh + i, f32x4.mul(o2, inv), 32);
        v128.store(oh + i, f32x4.mul(o3, inv), 48);
      }
      for (; i < hb; i += 16) {
        let o0 = f32x4.splat(0);
        let vj = v + kvOff + i;
        for (let j = 0; j < nKeys; j++, vj += kvRow) o0 = f32x4.add(o0, f32x4.mul(v128.load32_splat(sc + <usize>j * 4), v128.load(vj)));
        v128.store(oh + i, f32x4.mul(o0, inv));
      }
    }
  }
}

// The MLA and gated-DeltaNet ops live in their own file.
export { attention_ext, gated_delta_net, conv_silu, l2_norm, rms_norm_gated, sigmoid_mul, rope_table, swiglu_oai, add_rows, round_f16,
  scale_add_rows } from "./mla-linear";
