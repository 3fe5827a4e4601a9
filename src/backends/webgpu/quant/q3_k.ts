// Q3_K on the WebGPU backend. ggml's 110-byte block (hmask[32] of 3rd bits, qs[64] of 2-bit quants, 12 bytes of
// 6-bit scales, f16 d) is only 2-byte aligned: a bound weight is repacked in place into the 108-byte bodies (27
// words each: hmask 0-7, qs 8-23, scales 24-26) followed by the f16 d of every block. Value 128h + 32s + l of a
// block (h < 2, s < 4, l < 32) is bits 2s..2s+1 of qs[32h + l] with bit 4h + s of hmask[l] as its 3rd bit, minus 4,
// times d·(scale 8h + 2s + l / 16 − 32). Unit u of a row: block u / 8; j = u % 8 picks h = j / 4, s = j % 4.
import { BYTES4, F16_AT, WORD_BYTE, type GpuQuant } from "./types.js";

export const Q3_K_GPU: GpuQuant = {
  type: 11,
  repack: { rawBytes: 110, bodyAt: 0, bodyBytes: 108, scaleAt: 108, blockValues: 256 },
  chunkValues: 256,
  // Chunk = block: thread t reads hmask word t and qs words 8 + t (h = 0) and 16 + t (h = 1), i.e. l = 4t.. of
  // each half: values 128h + 32s + 4t.. for s < 4, with scales 8h + 2s + t / 4 (the scales of thread t's parity).
  piece: /* wgsl */ `
${BYTES4}
// Four quants minus 4 (−4..3): the 2 low bits of each byte of q, the 3rd from bit 0 of each byte of hm.
fn q3k_four(q: u32, hm: u32) -> vec4f { return bytes4((q & 0x03030303u) | ((hm & 0x01010101u) << 2u)) - 4.0; }
// Bytes g / 8 and g / 8 + 2 of a word of four 6-bit scales, minus 32.
fn q3k_two(v: u32, g: u32) -> vec2f { let x = v >> g; return vec2f(f32(x & 0x3fu), f32((x >> 16u) & 0x3fu)) - 32.0; }
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let nbr = k / 256u;
  let blk = row * nbr + c;
  let b = wb + blk * 27u;
  let d = f16_at(wb + n * nbr * 27u, blk);
  let hm = w[b + t];
  let qa = w[b + 8u + t];
  let qb = w[b + 16u + t];
  let s0 = w[b + 24u];
  let s1 = w[b + 25u];
  let s2 = w[b + 26u];
  // The 16 scales four to a word (ggml's kmask1/kmask2 unpacking): low nibbles of s0 (0-3), s1 (4-7), high nibbles
  // of s0 (8-11), s1 (12-15), each byte's top 2 bits from bits 0-1, 2-3, 4-5, 6-7 of s2's byte. Thread t takes
  // bytes t / 4 and t / 4 + 2 of each word.
  let g = 8u * (t >> 2u);
  let sa = q3k_two((s0 & 0x0f0f0f0fu) | ((s2 << 4u) & 0x30303030u), g);
  let sb = q3k_two((s1 & 0x0f0f0f0fu) | ((s2 << 2u) & 0x30303030u), g);
  let sc = q3k_two(((s0 >> 4u) & 0x0f0f0f0fu) | (s2 & 0x30303030u), g);
  let sd = q3k_two(((s1 >> 4u) & 0x0f0f0f0fu) | ((s2 >> 2u) & 0x30303030u), g);
  let x0 = xb + c * 64u + t;
  let s = sa.x * dot(q3k_four(qa, hm), x4[x0]) + sa.y * dot(q3k_four(qa >> 2u, hm >> 1u), x4[x0 + 8u])
    + sb.x * dot(q3k_four(qa >> 4u, hm >> 2u), x4[x0 + 16u]) + sb.y * dot(q3k_four(qa >> 6u, hm >> 3u), x4[x0 + 24u])
    + sc.x * dot(q3k_four(qb, hm >> 4u), x4[x0 + 32u]) + sc.y * dot(q3k_four(qb >> 2u, hm >> 5u), x4[x0 + 40u])
    + sd.x * dot(q3k_four(qb >> 4u, hm >> 6u), x4[x0 + 48u]) + sd.y * dot(q3k_four(qb >> 6u, hm >> 7u), x4[x0 + 56u]);
  return d * s;
}`,
  // Each value as the scalar reference rounds it, (d·(sc − 32))·(q − 4), so embed equals it bit for bit.
  wgsl: F16_AT + /* wgsl */ `
${WORD_BYTE}
// Scale j (6 bits, stored + 32): low nibble of byte 96 + j % 8 (the high one for j >= 8), top bits 2(j / 4).. of byte 104 + j % 4.
fn q3k_scale(b: u32, j: u32) -> f32 {
  let lo = (word_byte(b, 96u + (j & 7u)) >> (4u * (j >> 3u))) & 0xfu;
  let hi = (word_byte(b, 104u + (j & 3u)) >> (2u * (j >> 2u))) & 3u;
  return f32(i32(lo | (hi << 4u)) - 32);
}
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let nbr = p.k / 256u;
  let blk = row * nbr + u / 8u;
  let d = f16_at(p.w_off + p.n * nbr * 27u, blk);
  let b = p.w_off + blk * 27u;
  let j = u % 8u;
  let h = j / 4u;
  let s = j % 4u;
  // values l < 16 and l >= 16 of the unit have scales 8h + 2s and 8h + 2s + 1
  let d0 = d * q3k_scale(b, 8u * h + 2u * s);
  let d1 = d * q3k_scale(b, 8u * h + 2u * s + 1u);
  for (var i = 0u; i < 8u; i++) {
    let q = w[b + 8u + 8u * h + i] >> (2u * s);
    let m = w[b + i] >> (4u * h + s);
    let dl = select(d1, d0, i < 4u);
    for (var l = 0u; l < 4u; l++) { o[4u * i + l] = dl * f32(i32(((q >> (8u * l)) & 3u) | (((m >> (8u * l)) & 1u) << 2u)) - 4); }
  }
  return o;
}`,
};
