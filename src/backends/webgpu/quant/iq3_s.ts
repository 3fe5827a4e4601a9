// IQ3_S on the WebGPU backend (src/quant/iq3_s.ts; iq-grid.ts reads it): ggml's 110-byte block is f16 d, 64 low
// bytes of a 9-bit index into iq3s_grid (4 magnitudes), 8 bytes of the indices' top bits (one an index), 32 sign
// bytes, 4 bytes of two 4-bit scales (sub-blocks 2i, 2i + 1). Repacked: 27 body words, sub-block ib's indices at
// 2ib, 2ib + 1, top bits at byte 64 + ib, signs at word 18 + ib, scales at byte 104 + ib / 2.
// value = d·(1 + 2s)·grid·sign.
import { IQ3S_GRID } from "../../../quant/iq-tables.js";
import { IQ_SIGNS, gridConst, gridQuant } from "./iq-grid.js";
import { WORD_BYTE } from "./types.js";

export const IQ3_S_GPU = gridQuant({
  type: 21,
  rawBytes: 110,
  bodyWords: 27,
  consts: `${gridConst("IQ3S_G", IQ3S_GRID)}${IQ_SIGNS}\n${WORD_BYTE}`,
  sub: `let q0 = w[b + 2u * ib];
  let q1 = w[b + 2u * ib + 1u];
  let qh = word_byte(b, 64u + ib);
  let sg = w[b + 18u + ib];
  let db = d * f32(1u + 2u * ((word_byte(b, 104u + ib / 2u) >> (4u * (ib & 1u))) & 15u));`,
  group: `let q = select(q0, q1, l >= 2u) >> (16u * (l & 1u));
    let m = (sg >> (8u * l)) & 0xffu;
    let v0 = sgn4(IQ3S_G[(q & 0xffu) | (((qh >> (2u * l)) & 1u) << 8u)], m);
    let v1 = sgn4(IQ3S_G[((q >> 8u) & 0xffu) | (((qh >> (2u * l + 1u)) & 1u) << 8u)], m >> 4u);
    let gs = db;`,
});
