// Q6_K on the WebGPU backend. ggml's 210-byte block (128 bytes low nibbles, 64 bytes high bits, 16 int8 scales,
// f16 d) is only 2-byte aligned: a bound weight is repacked in place into the 208-byte bodies (52 words each)
// followed by the f16 d of every block. Unit u of a row: block u / 8; j = u % 8 picks half j / 4 (128 values)
// and quarter j % 4 of it (ggml's y[l], y[l + 32], y[l + 64], y[l + 96]).
import { F16_AT, type GpuQuant } from "./types.js";

export const Q6_K_GPU: GpuQuant = {
  type: 14,
  repack: { rawBytes: 210, bodyAt: 0, bodyBytes: 208, scaleAt: 208, blockValues: 256 },
  wgsl: F16_AT + /* wgsl */ `
fn q6k_byte(b: u32, i: u32) -> u32 { return (w[b + (i >> 2u)] >> (8u * (i & 3u))) & 0xffu; }
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let nb = p.n * (p.k / 256u);
  let blk = row * (p.k / 256u) + u / 8u;
  let d = f16_at(p.w_off + nb * 52u, blk);
  let b = p.w_off + blk * 52u;
  let j = u % 8u;
  let h = j / 4u;
  let qq = j % 4u;
  let ql0 = 64u * h + 32u * (qq & 1u);
  let lsh = 4u * (qq / 2u);
  for (var l = 0u; l < 32u; l++) {
    let lo = (q6k_byte(b, ql0 + l) >> lsh) & 0xfu;
    let hi = (q6k_byte(b, 128u + 32u * h + l) >> (2u * qq)) & 3u;
    let sc = f32(bitcast<i32>(q6k_byte(b, 192u + 8u * h + l / 16u + 2u * qq) << 24u) >> 24u);
    o[l] = d * sc * f32(i32(lo | (hi << 4u)) - 32);
  }
  return o;
}`,
};
