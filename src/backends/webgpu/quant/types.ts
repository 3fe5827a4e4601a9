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

/** A word's four bytes as a vec4f, lowest first (the readers' four quants at once). */
export const BYTES4 = /* wgsl */ `fn bytes4(v: u32) -> vec4f { return vec4f(f32(v & 0xffu), f32((v >> 8u) & 0xffu), f32((v >> 16u) & 0xffu), f32(v >> 24u)); }`;

/** Byte i of the weight words from word b (the dequantisers' byte reads). */
export const WORD_BYTE = /* wgsl */ `fn word_byte(b: u32, i: u32) -> u32 { return (w[b + (i >> 2u)] >> (8u * (i & 3u))) & 0xffu; }`;

/** Sub-block j's 6-bit scale and min (get_scale_min_k4) of the k-quant block at word b (scales at byte 4). */
const K4_SCALE_MIN = /* wgsl */ `
${WORD_BYTE}
fn k4_scale_min(b: u32, j: u32) -> vec2u {
  if (j < 4u) { return vec2u(word_byte(b, 4u + j) & 63u, word_byte(b, 8u + j) & 63u); }
  return vec2u((word_byte(b, 8u + j) & 0xfu) | ((word_byte(b, j) >> 6u) << 4u), (word_byte(b, 8u + j) >> 4u) | ((word_byte(b, 4u + j) >> 6u) << 4u));
}`;

/**
 * Q4_K's and Q5_K's dq32: unit u is sub-block j = u % 8 of block u / 8 (`blockWords` words), the low (j even) or
 * high nibbles of the qs words from `qsAt`, with Q5_K's 5th bit j of the qh words from `qhAt`; each value
 * d·sc·q − dmin·m as the scalar reference rounds it, so embed equals it bit for bit.
 */
export function k4Dq32(blockWords: number, qsAt: number, qhAt?: number): string {
  const q = qhAt === undefined ? "(x >> (8u * l)) & 0xfu" : "((x >> (8u * l)) & 0xfu) | (((h >> (8u * l)) & 1u) << 4u)";
  return /* wgsl */ `
${K4_SCALE_MIN}
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let b = p.w_off + (row * (p.k / 256u) + u / 8u) * ${blockWords}u;
  let j = u % 8u;
  let dm = unpack2x16float(w[b]);
  let sm = k4_scale_min(b, j);
  let d = dm.x * f32(sm.x);
  let mn = dm.y * f32(sm.y);
  let q = b + ${qsAt}u + 8u * (j / 2u);
  let sh = 4u * (j & 1u);
  for (var i = 0u; i < 8u; i++) {
    let x = w[q + i] >> sh;${qhAt === undefined ? "" : `
    let h = w[b + ${qhAt}u + i] >> j;`}
    for (var l = 0u; l < 4u; l++) { o[4u * i + l] = d * f32(${q}) - mn; }
  }
  return o;
}`;
}
