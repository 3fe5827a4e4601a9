// F32 weights on the WebGPU backend: one value per word, read as is.
import type { GpuQuant } from "./types.js";

export const F32_GPU: GpuQuant = {
  type: 0,
  chunkValues: 64,
  // Chunk = 64 words: thread t reads words 4t.. and 32 + 4t.. (consecutive threads, consecutive words).
  piece: /* wgsl */ `
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let rb = wb + row * k + 64u * c + 4u * t;
  var s = 0.0;
  // The chunk's second half may lie past the row: it reads the first again and adds 0 (loads with no branch).
  for (var i = 0u; i < 2u; i++) {
    let ok = 64u * c + 32u * i < k;
    let a = rb + select(0u, 32u * i, ok);
    let v = dot(vec4f(bitcast<f32>(w[a]), bitcast<f32>(w[a + 1u]), bitcast<f32>(w[a + 2u]), bitcast<f32>(w[a + 3u])), x4[xb + 16u * c + select(0u, 8u * i, ok) + t]);
    s += select(0.0, v, ok);
  }
  return s;
}`,
  wgsl: /* wgsl */ `
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let b = p.w_off + row * p.k + u * 32u;
  for (var j = 0u; j < 32u; j++) { o[j] = bitcast<f32>(w[b + j]); }
  return o;
}`,
};
