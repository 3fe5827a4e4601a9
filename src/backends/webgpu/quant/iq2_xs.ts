// IQ2_XS on the WebGPU backend (src/quant/iq2_xs.ts; iq-grid.ts reads it): ggml's 74-byte block is f16 d, 32 u16 of
// a 9-bit index into iq2xs_grid (8 magnitudes) and a 7-bit sign code, then a byte of two 4-bit scales per
// sub-block (groups 0-1, 2-3). Repacked: 18 body words, sub-block ib's u16s at 2ib, 2ib + 1, scales at byte 64.
// value = d·(0.5 + s)·0.25·grid·sign.
import { IQ2XS_GRID } from "../../../quant/iq-tables.js";
import { IQ_SIGNS, gridConst, gridQuant } from "./iq-grid.js";
import { WORD_BYTE } from "./types.js";

export const IQ2_XS_GPU = gridQuant({
  type: 17,
  rawBytes: 74,
  bodyWords: 18,
  consts: `${gridConst("IQ2XS_G", IQ2XS_GRID)}${IQ_SIGNS}\n${WORD_BYTE}`,
  sub: `let q01 = w[b + 2u * ib];
  let q23 = w[b + 2u * ib + 1u];
  let sc = word_byte(b, 64u + ib);
  let db0 = d * (0.5 + f32(sc & 15u)) * 0.25;
  let db1 = d * (0.5 + f32(sc >> 4u)) * 0.25;`,
  group: `let q = (select(q01, q23, l >= 2u) >> (16u * (l & 1u))) & 0xffffu;
    let g = 2u * (q & 511u);
    let m = ksigns(q >> 9u);
    let v0 = sgn4(IQ2XS_G[g], m);
    let v1 = sgn4(IQ2XS_G[g + 1u], m >> 4u);
    let gs = select(db0, db1, l >= 2u);`,
});
