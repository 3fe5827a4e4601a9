// F32 weights on the WebGPU backend: one value per word, read as is.
import type { GpuQuant } from "./types.js";

export const F32_GPU: GpuQuant = {
  type: 0,
  wgsl: /* wgsl */ `
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let b = p.w_off + row * p.k + u * 32u;
  for (var j = 0u; j < 32u; j++) { o[j] = bitcast<f32>(w[b + j]); }
  return o;
}`,
};
