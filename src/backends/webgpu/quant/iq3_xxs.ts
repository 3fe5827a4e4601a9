// IQ3_XXS on the WebGPU backend (src/quant/iq3_xxs.ts; iq-grid.ts reads it): ggml's 98-byte block is f16 d, 64
// indices into iq3xxs_grid (4 magnitudes each), then per sub-block a u32 of 4 7-bit sign codes and a 4-bit scale s
// in its top bits. Repacked: 24 body words, sub-block ib's indices at 2ib, 2ib + 1, its signs at 16 + ib.
// value = d·(0.5 + s)·0.5·grid·sign.
import { IQ3XXS_GRID } from "../../../quant/iq-tables.js";
import { IQ_SIGNS, gridConst, gridQuant } from "./iq-grid.js";

export const IQ3_XXS_GPU = gridQuant({
  type: 18,
  rawBytes: 98,
  bodyWords: 24,
  consts: `${gridConst("IQ3XXS_G", IQ3XXS_GRID)}${IQ_SIGNS}`,
  sub: `let q0 = w[b + 2u * ib];
  let q1 = w[b + 2u * ib + 1u];
  let aux = w[b + 16u + ib];
  let db = d * (0.5 + f32(aux >> 28u)) * 0.5;`,
  group: `let q = select(q0, q1, l >= 2u) >> (16u * (l & 1u));
    let m = ksigns((aux >> (7u * l)) & 127u);
    let v0 = sgn4(IQ3XXS_G[q & 0xffu], m);
    let v1 = sgn4(IQ3XXS_G[(q >> 8u) & 0xffu], m >> 4u);
    let gs = db;`,
});
