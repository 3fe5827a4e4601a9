// IQ4_XS on the WebGPU backend: ggml's 136-byte block (f16 d, u16 scales_h, 4 bytes scales_l, 128 bytes of 4-bit
// indices into kvalues_iq4nl) is whole words (34), so it is read as stored: word 0 d (low half) and scales_h (high),
// word 1 scales_l, words 2-33 qs. Sub-block ib (32 values) has the 6-bit scale ls = nibble ib of scales_l | bits 2ib,
// 2ib + 1 of scales_h << 4, and qs words 2 + 4ib..: low nibbles values 32ib + 0..15, high 32ib + 16..31.
// value = d·(ls − 32)·KQ[q]. Unit u of a row is sub-block u % 8 of block u / 8.
import type { GpuQuant } from "./types.js";

// kvalues_iq4nl (src/quant/iq-tables.ts). var<private>, as MXFP4's KV, not a module const: readerOver (matvec.ts)
// renames private variables for a second binding's reader, where a const would be declared twice.
export const KQ = /* wgsl */ `
var<private> KQ: array<f32, 16> = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
fn iq4_4(q: u32) -> vec4f { return vec4f(KQ[q & 0xfu], KQ[(q >> 8u) & 0xfu], KQ[(q >> 16u) & 0xfu], KQ[(q >> 24u) & 0xfu]); }
// Sub-block ib's d·(ls − 32) from the block's words 0 (d, scales_h) and 1 (scales_l).
fn iq4xs_dl(hd0: u32, hd1: u32, ib: u32) -> f32 {
  let ls = ((hd1 >> (4u * ib)) & 0xfu) | (((hd0 >> (16u + 2u * ib)) & 3u) << 4u);
  return unpack2x16float(hd0).x * f32(i32(ls) - 32);
}`;

export const IQ4_XS_GPU: GpuQuant = {
  type: 23,
  chunkValues: 256,
  // Chunk = block (34 words): thread t reads qs words t + 8i (i < 4; 32 bytes across the 8 threads each), bytes
  // 4(t % 4).. of sub-block ib = 2i + t / 4: values 32ib + 4(t % 4).. (low nibbles) and 32ib + 16 + 4(t % 4).. (high).
  // Words 0 and 1 are the same for the 8 threads.
  piece: /* wgsl */ `${KQ}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let b = wb + (row * (k / 256u) + c) * 34u;
  let hd0 = w[b];
  let hd1 = w[b + 1u];
  var acc = 0.0;
  for (var i = 0u; i < 4u; i++) {
    let ib = 2u * i + t / 4u;
    let q = w[b + 2u + 8u * i + t];
    let x0 = xb + c * 64u + 8u * ib + (t & 3u);
    acc += iq4xs_dl(hd0, hd1, ib) * (dot(iq4_4(q), x4[x0]) + dot(iq4_4(q >> 4u), x4[x0 + 4u]));
  }
  return acc;
}`,
  wgsl: /* wgsl */ `${KQ}
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let b = p.w_off + (row * (p.k / 256u) + u / 8u) * 34u;
  let ib = u % 8u;
  let dl = iq4xs_dl(w[b], w[b + 1u], ib);
  let q0 = b + 2u + 4u * ib;
  for (var i = 0u; i < 4u; i++) {
    let q = w[q0 + i];
    for (var l = 0u; l < 4u; l++) {
      o[4u * i + l] = dl * KQ[(q >> (8u * l)) & 0xfu];
      o[16u + 4u * i + l] = dl * KQ[(q >> (8u * l + 4u)) & 0xfu];
    }
  }
  return o;
}`,
};
