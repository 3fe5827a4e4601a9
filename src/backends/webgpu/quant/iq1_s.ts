// IQ1_S and IQ1_M on the WebGPU backend (src/quant/iq1_s.ts, iq1_m.ts; iq-grid.ts reads them): 8 values in {-1, 0, 1}
// from an 11-bit index into iq1s_grid (kept here 2 bits a value, 16 bits an entry), shifted by ±delta (0.125), times a
// 3-bit odd scale: value = d·(2s + 1)·(grid + delta).
// IQ1_S: 50 bytes, f16 d, 32 low bytes of the indices, 8 u16 (3 top bits per group, the scale at bit 12, the delta's
// sign at 15). Repacked: 12 body words, sub-block ib's low bytes at word ib, its u16 at half ib of words 8-11.
// IQ1_M: 56 bytes, whole words, read as stored: 32 low bytes, 16 bytes of top bits and delta signs (a nibble a group),
// 4 u16 of two 6-bit scale pairs whose top nibbles together are the f16 d.
import { IQ1S_GRID } from "../../../quant/iq-tables.js";
import { gridConst, gridQuant } from "./iq-grid.js";
import { WORD_BYTE } from "./types.js";

/** The grid's entries 2 bits a value ((v + 1) << 2j), two entries a word. */
const PACKED = (() => {
  const out = new Uint8Array(IQ1S_GRID.length / 4);
  for (let e = 0; e < IQ1S_GRID.length / 8; e++) {
    let h = 0;
    for (let j = 0; j < 8; j++) h |= (IQ1S_GRID[8 * e + j] + 1) << (2 * j);
    out[2 * e] = h & 0xff;
    out[2 * e + 1] = h >> 8;
  }
  return out;
})();

const CONSTS = `${gridConst("IQ1S_G", PACKED)}
${WORD_BYTE}
// Entry g's values j0..j0 + 3 shifted by delta.
fn iq1v(g: u32, j0: u32, delta: f32) -> vec4f {
  let h = IQ1S_G[g >> 1u] >> (16u * (g & 1u) + 2u * j0);
  return vec4f(f32(h & 3u), f32((h >> 2u) & 3u), f32((h >> 4u) & 3u), f32((h >> 6u) & 3u)) - vec4f(1.0 - delta);
}`;

export const IQ1_S_GPU = gridQuant({
  type: 19,
  rawBytes: 50,
  bodyWords: 12,
  consts: CONSTS,
  sub: `let qs = w[b + ib];
  let qh = (w[b + 8u + ib / 2u] >> (16u * (ib & 1u))) & 0xffffu;
  let dl = d * f32(2u * ((qh >> 12u) & 7u) + 1u);
  let delta = select(0.125, -0.125, (qh & 0x8000u) != 0u);`,
  group: `let g = ((qs >> (8u * l)) & 0xffu) | (((qh >> (3u * l)) & 7u) << 8u);
    let v0 = iq1v(g, 0u, delta);
    let v1 = iq1v(g, 4u, delta);
    let gs = dl;`,
});

export const IQ1_M_GPU = gridQuant({
  type: 29,
  rawBytes: 56,
  bodyWords: 14,
  stored: { d: "iq1m_d(b)" },
  consts: `${CONSTS}
fn iq1m_d(b: u32) -> f32 {
  let s01 = w[b + 12u];
  let s23 = w[b + 13u];
  return unpack2x16float(((s01 >> 12u) & 0xfu) | ((s01 >> 24u) & 0xf0u) | ((s23 >> 4u) & 0xf00u) | ((s23 >> 16u) & 0xf000u)).x;
}`,
  sub: `let qs = w[b + ib];
  let sc = ((w[b + 12u + ib / 4u] >> (16u * ((ib / 2u) & 1u))) & 0xffffu) >> (6u * (ib & 1u));
  let dl1 = d * f32(2u * (sc & 7u) + 1u);
  let dl2 = d * f32(2u * ((sc >> 3u) & 7u) + 1u);
  let qh01 = word_byte(b, 32u + 2u * ib) | (word_byte(b, 33u + 2u * ib) << 8u);`,
  group: `let qh = (qh01 >> (8u * (l / 2u))) >> (4u * (l & 1u));
    let g = ((qs >> (8u * l)) & 0xffu) | ((qh & 7u) << 8u);
    let delta = select(0.125, -0.125, (qh & 8u) != 0u);
    let v0 = iq1v(g, 0u, delta);
    let v1 = iq1v(g, 4u, delta);
    let gs = select(dl1, dl2, l >= 2u);`,
});
