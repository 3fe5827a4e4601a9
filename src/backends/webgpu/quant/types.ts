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

/**
 * Q4_K's and Q5_K's 12 bytes of 6-bit scales and mins (ggml's get_scale_min_k4), from the block's words s0, s1, s2:
 * the 8 sub-blocks' scales and mins four to a vec4 (sc_lo, mn_lo: sub-blocks 0-3; sc_hi, mn_hi: 4-7). Needs bytes4.
 */
export const K4_SCALES = /* wgsl */ `let sc_lo = bytes4(s0 & 0x3f3f3f3fu);
  let mn_lo = bytes4(s1 & 0x3f3f3f3fu);
  let sc_hi = bytes4((s2 & 0x0f0f0f0fu) | ((s0 >> 2u) & 0x30303030u));
  let mn_hi = bytes4(((s2 >> 4u) & 0x0f0f0f0fu) | ((s1 >> 2u) & 0x30303030u));`;

/** Byte i of the words from word b, and sub-block j's 6-bit scale and min (get_scale_min_k4) of the k-quant block at word b (scales at byte 4). */
export const K4_SCALE_MIN = /* wgsl */ `
fn kq_byte(b: u32, i: u32) -> u32 { return (w[b + (i >> 2u)] >> (8u * (i & 3u))) & 0xffu; }
fn k4_scale_min(b: u32, j: u32) -> vec2u {
  if (j < 4u) { return vec2u(kq_byte(b, 4u + j) & 63u, kq_byte(b, 8u + j) & 63u); }
  return vec2u((kq_byte(b, 8u + j) & 0xfu) | ((kq_byte(b, j) >> 6u) << 4u), (kq_byte(b, 8u + j) >> 4u) | ((kq_byte(b, 4u + j) >> 6u) << 4u));
}`;
