// ggml's legacy 32-value blocks on the WebGPU backend (src/quant/legacy.ts): Q4_0 (f16 d, 16 bytes of nibbles),
// Q4_1 (f16 d, f16 m, nibbles), Q5_0 (f16 d, u32 qh of 5th bits, nibbles), Q5_1 (d, m, qh, nibbles); IQ4_NL
// (iq4_nl.ts) is Q4_0's layout with its nibbles indexing kvalues_iq4nl. Nibble byte i of a block holds values i (low)
// and 16 + i (high); bit v of qh is value v's 5th bit. Value: d·(q − 8 | 16), d·q + m, or d·KQ[q].
// Blocks of whole words (Q4_1: 20 bytes, Q5_1: 24) are read as stored, word 0 d (low half) and m (high); the others
// (18 and 22 bytes) are repacked in place into their bodies ([qh,] nibbles: 4 or 5 words), then the f16 scales.
import { BYTES4, F16_AT, type GpuQuant } from "./types.js";

export interface LegacyLayout {
  type: number;
  bits: 4 | 5;
  /** d·q + m (the _1 types) instead of d·(q − 2^(bits−1)). */
  withMin: boolean;
  /** IQ4_NL: WGSL declaring `KQ: array<f32, 16>` and `iq4_4(q) -> vec4f` (the low nibbles of q's 4 bytes looked up). */
  table?: string;
}

export function legacyQuant(l: LegacyLayout): GpuQuant {
  const five = l.bits === 5;
  // Words a block: the min's word (d, m) where stored, the qh word, 4 of nibbles; _0 types repacked (no d inside).
  const bw = (l.withMin ? 1 : 0) + (five ? 1 : 0) + 4, qh = l.withMin ? 1 : 0, qo = bw - 4;
  const off = five ? 16 : 8;
  // The 5th bits of 4 values (qh >> their first value's index) onto bit 4 of their 4 bytes.
  const HI = /* wgsl */ `fn hi4(h: u32) -> u32 { return ((h & 1u) | ((h & 2u) << 7u) | ((h & 4u) << 14u) | ((h & 8u) << 21u)) << 4u; }`;
  // Four values of word q (its low nibbles, or its high with q >> 4) whose 5th bits are h's (hi4), before d and m.
  const vals = (q: string, h: string) => (l.table ? `iq4_4(${q})` : `bytes4((${q} & 0x0f0f0f0fu)${five ? ` | hi4(${h})` : ""})${l.withMin ? "" : ` - vec4f(${off}.0)`}`);
  const scale = l.withMin ? "let dm = unpack2x16float(w[bb]);" : `let dm = vec2f(f16_at(sb, blk), 0.0);`;
  // f16_at: the matvec prepends F16_AT to every word reader's piece (matvec.ts readerCode); dq32 brings its own.
  const helpers = `${l.table ?? BYTES4}${five ? `\n${HI}` : ""}`;
  return {
    type: l.type,
    ...(l.withMin ? {} : { repack: { rawBytes: 2 + 4 * bw, bodyAt: 2, bodyBytes: 4 * bw, scaleAt: 0, blockValues: 32 } }),
    chunkValues: 128,
    // Chunk = 4 blocks: thread t reads nibble words 2(t & 1) and 2(t & 1) + 1 of block 4c + t / 2, values 4w..
    // (low nibbles) and 16 + 4w.. (high) of each word w, as MXFP4's reader.
    piece: /* wgsl */ `${helpers}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let nbr = k / 32u;
  let ok = 4u * c + (t >> 1u) < nbr; // else the row's first block again, giving 0 (loads with no branch)
  let j = select(0u, 4u * c + (t >> 1u), ok);
  let blk = row * nbr + j;
  let bb = wb + blk * ${bw}u;
  let sb = wb + n * nbr * ${bw}u;
  let wi = 2u * (t & 1u);
  let q0 = w[bb + ${qo}u + wi];
  let q1 = w[bb + ${qo}u + wi + 1u];${five ? `
  let h = w[bb + ${qh}u] >> (4u * wi);` : ""}
  let x0 = xb + 8u * j + wi;
  let xa = x4[x0];
  let xc = x4[x0 + 1u];
  let xe = x4[x0 + 4u];
  let xg = x4[x0 + 5u];
  ${scale}
  let s = dot(${vals("q0", "h")}, xa) + dot(${vals("q1", "h >> 4u")}, xc) + dot(${vals("(q0 >> 4u)", "h >> 16u")}, xe) + dot(${vals("(q1 >> 4u)", "h >> 20u")}, xg);
  return select(0.0, dm.x * s${l.withMin ? " + dm.y * dot(xa + xc + xe + xg, vec4f(1.0))" : ""}, ok);
}`,
    wgsl: /* wgsl */ `${helpers}${l.withMin ? "" : F16_AT}
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let nbr = p.k / 32u;
  let blk = row * nbr + u;
  let bb = p.w_off + blk * ${bw}u;
  let sb = p.w_off + p.n * nbr * ${bw}u;
  ${scale}${five ? `
  let qh = w[bb + ${qh}u];` : ""}
  for (var i = 0u; i < 4u; i++) {
    let q = w[bb + ${qo}u + i];
    for (var b = 0u; b < 4u; b++) {
      let lo = (q >> (8u * b)) & 0xfu;
      let hi = (q >> (8u * b + 4u)) & 0xfu;${five ? `
      let v0 = lo | (((qh >> (4u * i + b)) & 1u) << 4u);
      let v1 = hi | (((qh >> (16u + 4u * i + b)) & 1u) << 4u);` : `
      let v0 = lo;
      let v1 = hi;`}
      ${l.table ? "o[4u * i + b] = dm.x * KQ[v0];\n      o[16u + 4u * i + b] = dm.x * KQ[v1];" : l.withMin ? "o[4u * i + b] = f32(v0) * dm.x + dm.y;\n      o[16u + 4u * i + b] = f32(v1) * dm.x + dm.y;" : `o[4u * i + b] = f32(i32(v0) - ${off}) * dm.x;\n      o[16u + 4u * i + b] = f32(i32(v1) - ${off}) * dm.x;`}
    }
  }
  return o;
}`,
  };
}

export const Q4_0_GPU = legacyQuant({ type: 2, bits: 4, withMin: false });
export const Q4_1_GPU = legacyQuant({ type: 3, bits: 4, withMin: true });
export const Q5_0_GPU = legacyQuant({ type: 6, bits: 5, withMin: false });
export const Q5_1_GPU = legacyQuant({ type: 7, bits: 5, withMin: true });
