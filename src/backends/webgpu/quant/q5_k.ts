// Q5_K on the WebGPU backend: ggml's 176-byte block (f16 d, f16 dmin, 12 bytes of 6-bit scales and mins as Q4_K's,
// qh[32] of 5th bits, 128 bytes of nibbles) is whole words, so it is read as stored: words 0 (d, dmin), 1-3 (scales
// and mins), 4-11 (qh), 12-43 (qs). Unit u of a row is sub-block j = u % 8 of block u / 8: the low (j even) or high
// nibbles of qs bytes 32(j / 2).., with bit j of qh bytes 0..31 as the 5th bit.
import { BYTES4, K4_SCALES, k4Dq32, type GpuQuant } from "./types.js";

export const Q5_K_GPU: GpuQuant = {
  type: 13,
  chunkValues: 256,
  // Chunk = block (44 words), read as Q4_K's: thread t reads qs words 12 + t + 8i (i < 4), bytes 4t.. of 32-byte group
  // i: values 64i + 4t.. (low nibbles, sub-block 2i) and 64i + 32 + 4t.. (high nibbles, sub-block 2i + 1). Their 5th
  // bits are bits 2i and 2i + 1 of qh bytes 4t.., i.e. of the one qh word 4 + t. Σ (d·sc·q − dmin·m)·x is taken as
  // d·sc·(q·x) − dmin·m·Σx per 4 values.
  piece: /* wgsl */ `
${BYTES4}
// One qs word with the 5th bits qh >> 2i: low nibbles + bit 2i against xl (sub-block 2i: scale sm.x, min sm.y), high
// nibbles + bit 2i + 1 against xh (sm.z, sm.w). Each byte's quant (0..31) is built in place, four at once.
fn q5k_pair(q: u32, qh: u32, xl: vec4f, xh: vec4f, dm: vec2f, sm: vec4f) -> f32 {
  let lo = bytes4((q & 0x0f0f0f0fu) | ((qh & 0x01010101u) << 4u));
  let hi = bytes4(((q >> 4u) & 0x0f0f0f0fu) | ((qh & 0x02020202u) << 3u));
  return dm.x * (sm.x * dot(lo, xl) + sm.z * dot(hi, xh)) - dm.y * (sm.y * dot(xl, vec4f(1.0)) + sm.w * dot(xh, vec4f(1.0)));
}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let b = wb + (row * (k / 256u) + c) * 44u;
  let dm = unpack2x16float(w[b]);
  let s0 = w[b + 1u];
  let s1 = w[b + 2u];
  let s2 = w[b + 3u];
  let qh = w[b + 4u + t];
  // The 8 sub-blocks' 6-bit scales and mins (get_scale_min_k4), four to a word: sub-blocks 0-3, then 4-7.
  ${K4_SCALES}
  let x0 = xb + c * 64u + t;
  var s = 0.0;
  s += q5k_pair(w[b + 12u + t], qh, x4[x0], x4[x0 + 8u], dm, vec4f(sc_lo.x, mn_lo.x, sc_lo.y, mn_lo.y));
  s += q5k_pair(w[b + 20u + t], qh >> 2u, x4[x0 + 16u], x4[x0 + 24u], dm, vec4f(sc_lo.z, mn_lo.z, sc_lo.w, mn_lo.w));
  s += q5k_pair(w[b + 28u + t], qh >> 4u, x4[x0 + 32u], x4[x0 + 40u], dm, vec4f(sc_hi.x, mn_hi.x, sc_hi.y, mn_hi.y));
  s += q5k_pair(w[b + 36u + t], qh >> 6u, x4[x0 + 48u], x4[x0 + 56u], dm, vec4f(sc_hi.z, mn_hi.z, sc_hi.w, mn_hi.w));
  return s;
}`,
  wgsl: k4Dq32(44, 12, 4),
};
