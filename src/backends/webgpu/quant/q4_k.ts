// Q4_K on the WebGPU backend: ggml's 144-byte block (f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128
// bytes of nibbles) is whole words, so it is read as stored. Unit u of a row is sub-block u % 8 of block u / 8.
import { BYTES4, K4_SCALES, k4Dq32, type GpuQuant } from "./types.js";

/** Both readers' start: the block's word b, its d and dmin, and its 3 words of 6-bit scales and mins. */
const PIECE_HEAD = /* wgsl */ `${BYTES4}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let b = wb + (row * (k / 256u) + c) * 36u;
  let dm = unpack2x16float(w[b]);
  let s0 = w[b + 1u];
  let s1 = w[b + 2u];
  let s2 = w[b + 3u];`;

export const Q4_K_GPU: GpuQuant = {
  type: 12,
  chunkValues: 256,
  // Chunk = block (36 words): thread t reads qs words t + 8i (i < 4), bytes 4t.. of 32-byte group i: values
  // 64i + 4t.. (low nibbles, sub-block 2i) and 64i + 32 + 4t.. (high nibbles, sub-block 2i + 1). Σ (d·sc·q − dmin·m)·x
  // is taken as d·sc·(q·x) − dmin·m·Σx per 4 values.
  piece: /* wgsl */ `
${PIECE_HEAD}
  // The 8 sub-blocks' 6-bit scales and mins (get_scale_min_k4), four to a word: sub-blocks 0-3, then 4-7.
  ${K4_SCALES}
  let x0 = xb + c * 64u + t;
  var s = 0.0;
  s += q4k_pair(w[b + 4u + t], x4[x0], x4[x0 + 8u], dm, vec4f(sc_lo.x, mn_lo.x, sc_lo.y, mn_lo.y));
  s += q4k_pair(w[b + 12u + t], x4[x0 + 16u], x4[x0 + 24u], dm, vec4f(sc_lo.z, mn_lo.z, sc_lo.w, mn_lo.w));
  s += q4k_pair(w[b + 20u + t], x4[x0 + 32u], x4[x0 + 40u], dm, vec4f(sc_hi.x, mn_hi.x, sc_hi.y, mn_hi.y));
  s += q4k_pair(w[b + 28u + t], x4[x0 + 48u], x4[x0 + 56u], dm, vec4f(sc_hi.z, mn_hi.z, sc_hi.w, mn_hi.w));
  return s;
}
// One qs word: its low nibbles against xl (sub-block a: scale sm.x, min sm.y), high nibbles against xh (sm.z, sm.w).
fn q4k_pair(q: u32, xl: vec4f, xh: vec4f, dm: vec2f, sm: vec4f) -> f32 {
  return dm.x * (sm.x * dot(bytes4(q & 0x0f0f0f0fu), xl) + sm.z * dot(bytes4((q >> 4u) & 0x0f0f0f0fu), xh)) - dm.y * (sm.y * dot(xl, vec4f(1.0)) + sm.w * dot(xh, vec4f(1.0)));
}`,
  wgsl: k4Dq32(36, 4),
};

/**
 * Q4_K read another way (WebGpuBackend.q4kReader "pair", benches compare): thread t of a block's 8 takes half of one
 * 32-byte group of nibbles (words 4t..4t+3: 16 values of sub-block 2(t/2) in the low nibbles, 16 of sub-block
 * 2(t/2) + 1 in the high), so it decodes 2 of the 8 scales and mins, not all 8, and scales its two dot sums once.
 */
export const Q4_K_GPU_PAIR: GpuQuant = {
  ...Q4_K_GPU,
  piece: /* wgsl */ `
${PIECE_HEAD}
  let g = t >> 1u;
  // get_scale_min_k4 for sub-blocks 2g and 2g + 1: bytes 2(g % 2) and 2(g % 2) + 1 of the low (g < 2) or high words.
  let hi = g >= 2u;
  let scw = select(s0 & 0x3f3f3f3fu, (s2 & 0x0f0f0f0fu) | ((s0 >> 2u) & 0x30303030u), hi);
  let mnw = select(s1 & 0x3f3f3f3fu, ((s2 >> 4u) & 0x0f0f0f0fu) | ((s1 >> 2u) & 0x30303030u), hi);
  let sh = 16u * (g & 1u);
  let sc = vec2f(f32((scw >> sh) & 0xffu), f32((scw >> (sh + 8u)) & 0xffu));
  let mn = vec2f(f32((mnw >> sh) & 0xffu), f32((mnw >> (sh + 8u)) & 0xffu));
  let q0 = b + 4u + 4u * t;
  let xl = xb + c * 64u + 16u * g + 4u * (t & 1u);
  var lo = 0.0;
  var hv = 0.0;
  var xs = vec2f(0.0);
  for (var i = 0u; i < 4u; i++) {
    let q = w[q0 + i];
    let a = x4[xl + i];
    let h = x4[xl + 8u + i];
    lo += dot(bytes4(q & 0x0f0f0f0fu), a);
    hv += dot(bytes4((q >> 4u) & 0x0f0f0f0fu), h);
    xs += vec2f(dot(a, vec4f(1.0)), dot(h, vec4f(1.0)));
  }
  return dm.x * (sc.x * lo + sc.y * hv) - dm.y * (mn.x * xs.x + mn.y * xs.y);
}`,
};

/**
 * The 16-byte readers' start (weights bound as array<vec4u>): the block's head (d, dmin, 3 words of scales and
 * mins) and thread t's 4 words of nibbles in two loads, and the scales and mins of its sub-blocks 2g and 2g + 1.
 */
const VEC4_HEAD = /* wgsl */ `  let b = (wb + (row * (k / 256u) + c) * 36u) / 4u;
  let hd = w[b];
  let qv = w[b + 1u + t];
  let dm = unpack2x16float(hd.x);
  let g = t >> 1u;
  let hi = g >= 2u;
  let scw = select(hd.y & 0x3f3f3f3fu, (hd.w & 0x0f0f0f0fu) | ((hd.y >> 2u) & 0x30303030u), hi);
  let mnw = select(hd.z & 0x3f3f3f3fu, ((hd.w >> 4u) & 0x0f0f0f0fu) | ((hd.z >> 2u) & 0x30303030u), hi);
  let sh = 16u * (g & 1u);
  let sc = vec2f(f32((scw >> sh) & 0xffu), f32((scw >> (sh + 8u)) & 0xffu));
  let mn = vec2f(f32((mnw >> sh) & 0xffu), f32((mnw >> (sh + 8u)) & 0xffu));`;

/**
 * The pair reader's arithmetic with 16-byte loads (WebGpuBackend.q4kReader "vec4"): the weight bound as
 * array<vec4u>, a block is 9 vec4s (the head, then 8 of nibbles), so thread t loads the head and qs words 4t..4t+3
 * in two loads; x's 8 vec4s for (c, t) are loaded once a loop turn and shared by every row (and by gate and up).
 * The same sums in the same order as Q4_K_GPU_PAIR: the same bits.
 */
export const Q4_K_GPU_VEC4: GpuQuant = {
  ...Q4_K_GPU,
  vec4: { fallback: Q4_K_GPU_PAIR },
  xload: /* wgsl */ `
struct XS { a: array<vec4f, 4>, h: array<vec4f, 4>, sa: f32, sh: f32 }
fn xload(c: u32, t: u32, xb: u32) -> XS {
  let xl = xb + c * 64u + 16u * (t >> 1u) + 4u * (t & 1u);
  var r: XS;
  var xs = vec2f(0.0);
  for (var i = 0u; i < 4u; i++) {
    r.a[i] = x4[xl + i];
    r.h[i] = x4[xl + 8u + i];
    xs += vec2f(dot(r.a[i], vec4f(1.0)), dot(r.h[i], vec4f(1.0)));
  }
  r.sa = xs.x;
  r.sh = xs.y;
  return r;
}`,
  piece: /* wgsl */ `
${BYTES4}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, x: XS) -> f32 {
${VEC4_HEAD}
  var lo = 0.0;
  var hv = 0.0;
  for (var i = 0u; i < 4u; i++) {
    lo += dot(bytes4(qv[i] & 0x0f0f0f0fu), x.a[i]);
    hv += dot(bytes4((qv[i] >> 4u) & 0x0f0f0f0fu), x.h[i]);
  }
  return dm.x * (sc.x * lo + sc.y * hv) - dm.y * (mn.x * x.sa + mn.y * x.sh);
}`,
};

/**
 * Q4_K against x quantised to 8 bits (WebGpuBackend.intDot), as llama.cpp's CUDA matvec: the vec4 reader's
 * layout, each 4 nibbles times 4 int8 of x in one integer dot product (no int-to-float conversion per value), the
 * sub-block's sums scaled by d·sc·dx; the mins' term, dmin·m·Σx, taken once per sub-block (by the even thread).
 */
export const Q4_K_GPU_Q8X: GpuQuant = {
  ...Q4_K_GPU,
  vec4: { fallback: Q4_K_GPU_PAIR },
  intX: true,
  piece: /* wgsl */ `
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
${VEC4_HEAD}
  let h = t & 1u;
  let xi = (xb + c * 64u + 16u * g + 4u * h) / 4u;
  let xa = xq[xi];
  let xh = xq[xi + 2u];
  var ilo = 0;
  var ihi = 0;
  for (var i = 0u; i < 4u; i++) {
    ilo += dot4I8Packed(qv[i] & 0x0f0f0f0fu, xa[i]);
    ihi += dot4I8Packed((qv[i] >> 4u) & 0x0f0f0f0fu, xh[i]);
  }
  // sub-blocks 8c + 2g and 8c + 2g + 1: their x scales, and x sums k/32 words on (an even word: both in one vec4)
  let sd = xb + k / 4u + 8u * c + 2u * g;
  let dv = xq[sd / 4u];
  let d = vec2f(bitcast<f32>(dv[sd % 4u]), bitcast<f32>(dv[sd % 4u + 1u]));
  let ss = sd + k / 32u;
  let sv = xq[ss / 4u];
  let mins = dm.y * (mn.x * bitcast<f32>(sv[ss % 4u]) + mn.y * bitcast<f32>(sv[ss % 4u + 1u]));
  return dm.x * (sc.x * d.x * f32(ilo) + sc.y * d.y * f32(ihi)) - select(0.0, mins, h == 0u);
}`,
};
