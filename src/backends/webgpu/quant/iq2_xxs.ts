// IQ2_XXS on the WebGPU backend (src/quant/iq2_xxs.ts; iq-grid.ts reads it): ggml's 66-byte block is f16 d, then per
// sub-block two u32: 4 indices into iq2xxs_grid (8 magnitudes each); 4 7-bit sign codes and a 4-bit scale s in the
// top bits. Repacked: 16 body words, sub-block ib's at 2ib. value = d·(0.5 + s)·0.25·grid·sign.
import { IQ2XXS_GRID } from "../../../quant/iq-tables.js";
import { IQ_SIGNS, gridConst, gridQuant } from "./iq-grid.js";

export const IQ2_XXS_GPU = gridQuant({
  type: 16,
  rawBytes: 66,
  bodyWords: 16,
  consts: `${gridConst("IQ2XXS_G", IQ2XXS_GRID)}${IQ_SIGNS}`,
  sub: `let a0 = w[b + 2u * ib];
  let a1 = w[b + 2u * ib + 1u];
  let db = d * (0.5 + f32(a1 >> 28u)) * 0.25;`,
  group: `let g = 2u * ((a0 >> (8u * l)) & 0xffu);
    let m = ksigns((a1 >> (7u * l)) & 127u);
    let v0 = sgn4(IQ2XXS_G[g], m);
    let v1 = sgn4(IQ2XXS_G[g + 1u], m >> 4u);
    let gs = db;`,
});
