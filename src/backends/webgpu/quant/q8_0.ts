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
    // A block past the row reads the row's first again and adds 0 (loads with no branch).
    let ok = 4u * c + i < nbr;
    let j = select(0u, 4u * c + i, ok);
    let blk = row * nbr + j;
    s += select(0.0, f16_at(sb, blk) * dot(i8x4(w[wb + blk * 8u + t]), x4[xb + 8u * j + t]), ok);
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

/**
 * Q8_0 against x quantised to 8 bits (WebGpuBackend.intDot): a chunk's 4 repacked block bodies are 8 vec4s, thread
 * t taking half of block 4c + t/2 in one 16-byte load, 4 integer dot products, scaled by the weight's d and x's.
 */
export const Q8_0_GPU_Q8X: GpuQuant = {
  ...Q8_0_GPU,
  vec4: { fallback: Q8_0_GPU },
  intX: true,
  piece: /* wgsl */ `
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let nbr = k / 32u;
  let ok = 4u * c + (t >> 1u) < nbr; // else the row's first block again, giving 0 (loads with no branch)
  let j = select(0u, 4u * c + (t >> 1u), ok);
  let blk = row * nbr + j;
  let qv = w[(wb + blk * 8u) / 4u + (t & 1u)];
  let xv = xq[(xb + 8u * j) / 4u + (t & 1u)];
  let isum = dot4I8Packed(qv.x, xv.x) + dot4I8Packed(qv.y, xv.y) + dot4I8Packed(qv.z, xv.z) + dot4I8Packed(qv.w, xv.w);
  let sw = wb + n * nbr * 8u + blk / 2u;
  let dw = unpack2x16float(w[sw / 4u][sw % 4u]);
  let sx = xb + k / 4u + j;
  return select(0.0, select(dw.x, dw.y, (blk & 1u) == 1u) * bitcast<f32>(xq[sx / 4u][sx % 4u]) * f32(isum), ok);
}`,
};
