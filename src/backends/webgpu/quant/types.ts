// What a quant type contributes to the WebGPU backend: a WGSL function giving 32 consecutive values of a weight
// row (the unit every kernel loops over) and, where ggml's block is not made of aligned words, a repack into
// aligned words (block bodies first, then the f16 scales) done in place, on the device, when a weight is bound.
// Uniform `p` of every kernel that reads weights has fields w_off (words), k (values per row) and n (rows).

export interface GpuQuant {
  readonly type: number;
  /** WGSL: fn dq32(row: u32, u: u32) -> array<f32, 32>, values [32u, 32u + 32) of `row`, reading `w: array<u32>`. */
  readonly wgsl: string;
  /**
   * The matvec's reader (matvec.ts): a row is cut in chunks of `chunkValues` values, each read by 8 threads, thread t
   * taking words t, t + 8, ... of the chunk's data (so 8 threads read 32 consecutive bytes per load: coalesced).
   * WGSL: fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32, thread t's share of the dot
   * product of chunk c of `row` (weights at word wb, n rows of k) with x, whose row starts at vec4 xb of `x4`.
   */
  readonly chunkValues: number;
  readonly piece: string;
  /**
   * Readers whose weight binding is `array<vec4u>` (16-byte loads): piece's wb is still in words, a multiple of 4
   * (the backend falls back to `fallback`, which gives the same bits, for a weight that is not 16-byte aligned).
   */
  readonly vec4?: { fallback: GpuQuant };
  /**
   * WGSL fn xload(c: u32, t: u32, xb: u32) -> XS: x's share of chunk c for thread t, loaded once a loop turn for every
   * row and weight read against it; piece then takes that XS as its last argument instead of xb.
   */
  readonly xload?: string;
  /**
   * Readers of x quantised to 8 bits (kernels.ts QUANT_X_WGSL; integer dot products): x is bound as
   * `xq: array<vec4u>`, a row of k values being k/4 words of int8, k/32 f32 scales, k/32 f32 sums; xb is in words.
   * Rows of k % 64 == 0 only (the backend uses `vec4.fallback` for others).
   */
  readonly intX?: boolean;
  /** ggml block layout moved to aligned words: the block's byte size, where its body and its scale sit (an f16; MXFP4: 1 byte). */
  readonly repack?: { rawBytes: number; bodyAt: number; bodyBytes: number; scaleAt: number; blockValues: number; scaleBytes?: 1 | 2 };
}

/** f16 number `i` of the half-words starting at word `base` (two per word, little-endian). */
export const F16_AT = /* wgsl */ `
fn f16_at(base: u32, i: u32) -> f32 {
  let v = unpack2x16float(w[base + (i >> 1u)]);
  return select(v.x, v.y, (i & 1u) == 1u);
}
fn byte_of(word: u32, j: u32) -> u32 { return (word >> (8u * j)) & 0xffu; }
`;
