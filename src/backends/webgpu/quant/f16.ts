// F16 (and BF16) weights on the WebGPU backend: two values per word, read as is (rows hold an even number of values).
import type { GpuQuant } from "./types.js";

/** dq32 over words of two values each; `pair` gives the vec2f of word x. */
function twoPerWord(pair: string): string {
  return /* wgsl */ `
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let b = p.w_off + row * (p.k / 2u) + u * 16u;
  for (var j = 0u; j < 16u; j++) {
    let x = w[b + j];
    let v = ${pair};
    o[2u * j] = v.x;
    o[2u * j + 1u] = v.y;
  }
  return o;
}`;
}

export const F16_GPU: GpuQuant = { type: 1, wgsl: twoPerWord("unpack2x16float(x)") };

/** bfloat16: the high half of an f32. */
export const BF16_GPU: GpuQuant = { type: 30, wgsl: twoPerWord("vec2f(bitcast<f32>(x << 16u), bitcast<f32>(x & 0xffff0000u))") };
