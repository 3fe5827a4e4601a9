// What the WebGPU readers of the grid i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) share: blocks
// of 256 values in 8 sub-blocks of 32, each 4 groups of 8 values taken from a grid (ggml's uint64/uint32 entries, as
// WGSL module constants of u32 words, renamed for a second reader copy like any table), with signs or a shift, and a
// scale. A type gives its layout and the WGSL that decodes a sub-block and a group; this file makes the matvec's
// reader (a chunk is a block, thread t its sub-block t) and dq32 from them, the same arithmetic as the scalar
// reference (the scale times each signed grid value), so embed equals it bit for bit.
import { BYTES4, F16_AT, type GpuQuant } from "./types.js";

export interface GridLayout {
  type: number;
  /** ggml's block bytes. Repacked in place, the bytes after its f16 d become `bodyWords` words, the d's follow all bodies. */
  rawBytes: number;
  bodyWords: number;
  /** Blocks of whole words with d inside them (IQ1_M): read as stored, `d` computing it from the block's words. */
  stored?: { d: string };
  /** WGSL at module scope: the grid constants and helper functions (reading weights as `w`). */
  consts: string;
  /** WGSL: sub-block `ib` (u32) of the block at word `b`, its f16 `d` known: lets the groups use (not named s, o, j, x0). */
  sub: string;
  /** WGSL: group `l` (0..3) of the sub-block: `v0`, `v1` (vec4f, its 8 values signed or shifted, before the scale) and `gs` (f32, the scale). */
  group: string;
}

/** WGSL `const name: array<u32, N>` holding bytes 4 to a word, little-endian. */
export function gridConst(name: string, bytes: Uint8Array): string {
  const words = Array.from({ length: bytes.length / 4 }, (_, i) => `0x${((bytes[4 * i] | (bytes[4 * i + 1] << 8) | (bytes[4 * i + 2] << 16) | (bytes[4 * i + 3] << 24)) >>> 0).toString(16)}u`);
  return `const ${name}: array<u32, ${words.length}> = array<u32, ${words.length}>(${words.join(", ")});`;
}

/**
 * ksigns_iq2xs[s] (s: 7 bits) = s with bit 7 making the count of set bits even; sgn4(g, m): the 4 bytes of grid word
 * g as values, negated where bits 0-3 of m are set.
 */
export const IQ_SIGNS = /* wgsl */ `${BYTES4}
fn ksigns(s: u32) -> u32 { return s | ((countOneBits(s) & 1u) << 7u); }
fn sgn4(g: u32, m: u32) -> vec4f {
  let v = bytes4(g);
  return select(v, -v, vec4<bool>((m & 1u) != 0u, (m & 2u) != 0u, (m & 4u) != 0u, (m & 8u) != 0u));
}`;

export function gridQuant(l: GridLayout): GpuQuant {
  const bw = l.bodyWords;
  const d = (wb: string, n: string) => l.stored?.d ?? `f16_at(${wb} + ${n} * nbr * ${bw}u, blk)`;
  return {
    type: l.type,
    ...(l.stored ? {} : { repack: { rawBytes: l.rawBytes, bodyAt: 2, bodyBytes: 4 * bw, scaleAt: 0, blockValues: 256 } }),
    chunkValues: 256,
    piece: /* wgsl */ `${l.consts}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let nbr = k / 256u;
  let blk = row * nbr + c;
  let b = wb + blk * ${bw}u;
  let ib = t;
  let d = ${d("wb", "n")};
  ${l.sub}
  var s = 0.0;
  for (var l = 0u; l < 4u; l++) {
    ${l.group}
    let x0 = xb + c * 64u + 8u * ib + 2u * l;
    s += gs * (dot(v0, x4[x0]) + dot(v1, x4[x0 + 1u]));
  }
  return s;
}`,
    // f16_at: the matvec prepends F16_AT to every word reader's piece (matvec.ts readerCode); dq32 brings its own.
    wgsl: /* wgsl */ `${l.consts}${F16_AT}
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let nbr = p.k / 256u;
  let blk = row * nbr + u / 8u;
  let b = p.w_off + blk * ${bw}u;
  let ib = u % 8u;
  let d = ${d("p.w_off", "p.n")};
  ${l.sub}
  for (var l = 0u; l < 4u; l++) {
    ${l.group}
    for (var j = 0u; j < 4u; j++) {
      o[8u * l + j] = gs * v0[j];
      o[8u * l + 4u + j] = gs * v1[j];
    }
  }
  return o;
}`,
  };
}
