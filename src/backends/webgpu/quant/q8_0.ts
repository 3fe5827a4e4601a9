// Q8_0 on the WebGPU backend. ggml's 34-byte block (f16 d, 32 int8) is only 2-byte aligned, which a GPU reads
// slowly (157 GB/s on an H100 against 2.6 TB/s for aligned words: shared/GPU.md), so a bound weight is repacked in
// place into the 32-byte bodies of all its blocks (8 aligned words each) followed by the blocks' f16 scales.
import { F16_AT, type GpuQuant } from "./types.js";

export const Q8_0_GPU: GpuQuant = {
  type: 8,
  repack: { rawBytes: 34, bodyAt: 2, bodyBytes: 32, scaleAt: 0, blockValues: 32 },
  chunkValues: 128,
  // Chunk = 4 blocks: thread t reads word t of each block body (8 threads: one 32-byte body per load).
  piece: /* wgsl */ `
fn i8x4(q: u32) -> vec4f { return vec4f(f32(bitcast<i32>(q << 24u) >> 24u), f32(bitcast<i32>(q << 16u) >> 24u), f32(bitcast<i32>(q << 8u) >> 24u), f32(bitcast<i32>(q) >> 24u)); }
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let nbr = k / 32u;
  let sb = wb + n * nbr * 8u;
  var s = 0.0;
  for (var i = 0u; i < 4u; i++) {
    let j = 4u * c + i;
    if (j < nbr) {
      let blk = row * nbr + j;
      s += f16_at(sb, blk) * dot(i8x4(w[wb + blk * 8u + t]), x4[xb + 8u * j + t]);
    }
  }
  return s;
}`,
  wgsl: F16_AT + /* wgsl */ `
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let nb = p.n * (p.k / 32u);
  let blk = row * (p.k / 32u) + u;
  let d = f16_at(p.w_off + nb * 8u, blk);
  let b = p.w_off + blk * 8u;
  for (var i = 0u; i < 8u; i++) {
    let q = w[b + i];
    for (var j = 0u; j < 4u; j++) { o[4u * i + j] = f32(bitcast<i32>(q << (24u - 8u * j)) >> 24u) * d; }
  }
  return o;
}`,
};
