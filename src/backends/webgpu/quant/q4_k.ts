// Q4_K on the WebGPU backend: ggml's 144-byte block (f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128
// bytes of nibbles) is whole words, so it is read as stored. Unit u of a row is sub-block u % 8 of block u / 8.
import type { GpuQuant } from "./types.js";

export const Q4_K_GPU: GpuQuant = {
  type: 12,
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
