// IQ2_S on the WebGPU backend (src/quant/iq2_s.ts; iq-grid.ts reads it): ggml's 82-byte block is f16 d, 32 low bytes
// of a 10-bit index into iq2s_grid (8 magnitudes), 32 sign bytes, 8 bytes of the indices' top 2 bits (2 a group),
// 8 bytes of two 4-bit scales (groups 0-1, 2-3). Repacked: 20 body words, sub-block ib's indices at word ib, its
// signs at 8 + ib, its top bits and scales at bytes 64 + ib and 72 + ib. value = d·(0.5 + s)·0.25·grid·sign.
import { IQ2S_GRID } from "../../../quant/iq-tables.js";
import { IQ_SIGNS, gridConst, gridQuant } from "./iq-grid.js";
import { WORD_BYTE } from "./types.js";

export const IQ2_S_GPU = gridQuant({
  type: 22,
  rawBytes: 82,
  bodyWords: 20,
  consts: `${gridConst("IQ2S_G", IQ2S_GRID)}${IQ_SIGNS}\n${WORD_BYTE}`,
  sub: `let qs = w[b + ib];
  let sg = w[b + 8u + ib];
  let qh = word_byte(b, 64u + ib);
  let sc = word_byte(b, 72u + ib);
  let db0 = d * (0.5 + f32(sc & 15u)) * 0.25;
  let db1 = d * (0.5 + f32(sc >> 4u)) * 0.25;`,
  group: `let g = 2u * (((qs >> (8u * l)) & 0xffu) | (((qh >> (2u * l)) & 3u) << 8u));
    let m = (sg >> (8u * l)) & 0xffu;
    let v0 = sgn4(IQ2S_G[g], m);
    let v1 = sgn4(IQ2S_G[g + 1u], m >> 4u);
    let gs = select(db0, db1, l >= 2u);`,
});
