// Q4_K on the WebGPU backend: ggml's 144-byte block (f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128
// bytes of nibbles) is whole words, so it is read as stored. Unit u of a row is sub-block u % 8 of block u / 8.
import type { GpuQuant } from "./types.js";

export const Q4_K_GPU: GpuQuant = {
  type: 12,
  chunkValues: 256,
  // Chunk = block (36 words): thread t reads qs words t + 8i (i < 4), bytes 4t.. of 32-byte group i: values
  // 64i + 4t.. (low nibbles, sub-block 2i) and 64i + 32 + 4t.. (high nibbles, sub-block 2i + 1). Σ (d·sc·q − dmin·m)·x
  // is taken as d·sc·(q·x) − dmin·m·Σx per 4 values.
  piece: /* wgsl */ `
fn q4k_sm(s0: u32, s1: u32, s2: u32, j: u32) -> vec2f {
  if (j < 4u) { return vec2f(f32((s0 >> (8u * j)) & 63u), f32((s1 >> (8u * j)) & 63u)); }
  let i = 8u * (j - 4u);
  return vec2f(f32(((s2 >> i) & 0xfu) | (((s0 >> (i + 6u)) & 3u) << 4u)), f32(((s2 >> (i + 4u)) & 0xfu) | (((s1 >> (i + 6u)) & 3u) << 4u)));
}
fn nib4(q: u32) -> vec4f { return vec4f(f32(q & 15u), f32((q >> 8u) & 15u), f32((q >> 16u) & 15u), f32((q >> 24u) & 15u)); }
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let b = wb + (row * (k / 256u) + c) * 36u;
  let dm = unpack2x16float(w[b]);
  let s0 = w[b + 1u];
  let s1 = w[b + 2u];
  let s2 = w[b + 3u];
  let x0 = xb + c * 64u + t;
  var s = 0.0;
  for (var i = 0u; i < 4u; i++) {
    let q = w[b + 4u + t + 8u * i];
    let xl = x4[x0 + 16u * i];
    let xh = x4[x0 + 16u * i + 8u];
    let a = q4k_sm(s0, s1, s2, 2u * i);
    let h = q4k_sm(s0, s1, s2, 2u * i + 1u);
    s += dm.x * (a.x * dot(nib4(q), xl) + h.x * dot(nib4(q >> 4u), xh)) - dm.y * (a.y * dot(xl, vec4f(1.0)) + h.y * dot(xh, vec4f(1.0)));
  }
  return s;
}`,
  wgsl: /* wgsl */ `
fn q4k_byte(b: u32, i: u32) -> u32 { return (w[b + (i >> 2u)] >> (8u * (i & 3u))) & 0xffu; }
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let b = p.w_off + (row * (p.k / 256u) + u / 8u) * 36u;
  let j = u % 8u;
  let dm = unpack2x16float(w[b]);
  // get_scale_min_k4 over the 12 scale bytes at byte 4 of the block
  var sc: u32; var m: u32;
  if (j < 4u) {
    sc = q4k_byte(b, 4u + j) & 63u;
    m = q4k_byte(b, 8u + j) & 63u;
  } else {
    sc = (q4k_byte(b, 8u + j) & 0xfu) | ((q4k_byte(b, j) >> 6u) << 4u);
    m = (q4k_byte(b, 8u + j) >> 4u) | ((q4k_byte(b, 4u + j) >> 6u) << 4u);
  }
  let d = dm.x * f32(sc);
  let mn = dm.y * f32(m);
  let q = b + 4u + 8u * (j / 2u);
  let sh = 4u * (j & 1u);
  for (var i = 0u; i < 8u; i++) {
    let x = w[q + i] >> sh;
    for (var l = 0u; l < 4u; l++) { o[4u * i + l] = d * f32((x >> (8u * l)) & 0xfu) - mn; }
  }
  return o;
}`,
};
