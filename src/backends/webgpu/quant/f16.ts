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

/**
 * The matvec's piece over words of two values each: a chunk is 128 values (64 words), thread t reading words
 * 2t + 16i and 2t + 16i + 1 (values 32i + 4t..).
 */
function twoPerWordPiece(pair: string): string {
  return /* wgsl */ `
fn pair_of(x: u32) -> vec2f { return ${pair}; }
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let rb = wb + row * (k / 2u) + 64u * c + 2u * t;
  var s = 0.0;
  for (var i = 0u; i < 4u; i++) {
    let ok = 128u * c + 32u * i < k; // else the chunk's first part again, adding 0 (loads with no branch)
    let ii = select(0u, i, ok);
    s += select(0.0, dot(vec4f(pair_of(w[rb + 16u * ii]), pair_of(w[rb + 16u * ii + 1u])), x4[xb + 32u * c + 8u * ii + t]), ok);
  }
  return s;
}`;
}

const half = (pair: string) => ({ wgsl: twoPerWord(pair), chunkValues: 128, piece: twoPerWordPiece(pair) });

export const F16_GPU: GpuQuant = { type: 1, ...half("unpack2x16float(x)") };

/** bfloat16: the high half of an f32. */
export const BF16_GPU: GpuQuant = { type: 30, ...half("vec2f(bitcast<f32>(x << 16u), bitcast<f32>(x & 0xffff0000u))") };
