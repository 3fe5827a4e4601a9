// IQ3_XXS on the WebGPU backend (src/quant/iq3_xxs.ts): ggml's 98-byte block (f16 d, 64 indices into iq3xxs_grid of
// 4 magnitudes each, then per 32 values a u32 of 4 7-bit sign codes and a 4-bit scale s in its top bits) is only
// 2-byte aligned, so a bound weight is repacked in place into the 96-byte bodies (24 words: 16 of indices, 8 of
// signs and scales) of all its blocks, then their f16 d. value = d·(0.5 + s)·0.5·grid·sign. Unit u of a row is
// sub-block u % 8 of block u / 8: its 8 indices are words 2ib, 2ib + 1, its signs and scale word 16 + ib.
import { IQ3XXS_GRID } from "../../../quant/iq-tables.js";
import { F16_AT, type GpuQuant } from "./types.js";
import { IQ_SIGNS, gridConst } from "./iq-grid.js";

const GRID = `${gridConst("IQ3XXS_G", IQ3XXS_GRID)}${IQ_SIGNS}`;

export const IQ3_XXS_GPU: GpuQuant = {
  type: 18,
  repack: { rawBytes: 98, bodyAt: 2, bodyBytes: 96, scaleAt: 0, blockValues: 256 },
  chunkValues: 256,
  // Chunk = block: thread t reads sub-block t's two index words and its sign word.
  piece: /* wgsl */ `${GRID}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let nbr = k / 256u;
  let blk = row * nbr + c;
  let b = wb + blk * 24u;
  let q0 = w[b + 2u * t];
  let q1 = w[b + 2u * t + 1u];
  let aux = w[b + 16u + t];
  var s = 0.0;
  for (var l = 0u; l < 4u; l++) {
    let q = select(q0, q1, l >= 2u) >> (16u * (l & 1u));
    let m = ksigns((aux >> (7u * l)) & 127u);
    let x0 = xb + c * 64u + 8u * t + 2u * l;
    s += dot(sgn4(IQ3XXS_G[q & 0xffu], m), x4[x0]) + dot(sgn4(IQ3XXS_G[(q >> 8u) & 0xffu], m >> 4u), x4[x0 + 1u]);
  }
  return f16_at(wb + n * nbr * 24u, blk) * (0.5 + f32(aux >> 28u)) * 0.5 * s;
}`,
  wgsl: /* wgsl */ `${GRID}${F16_AT}
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let nbr = p.k / 256u;
  let blk = row * nbr + u / 8u;
  let ib = u % 8u;
  let b = p.w_off + blk * 24u;
  let aux = w[b + 16u + ib];
  let db = f16_at(p.w_off + p.n * nbr * 24u, blk) * (0.5 + f32(aux >> 28u)) * 0.5;
  for (var l = 0u; l < 4u; l++) {
    let q = w[b + 2u * ib + l / 2u] >> (16u * (l & 1u));
    let m = ksigns((aux >> (7u * l)) & 127u);
    let g1 = IQ3XXS_G[q & 0xffu];
    let g2 = IQ3XXS_G[(q >> 8u) & 0xffu];
    for (var j = 0u; j < 8u; j++) {
      let g = select(g1, g2, j >= 4u);
      let v = db * f32((g >> (8u * (j % 4u))) & 0xffu);
      o[8u * l + j] = select(v, -v, ((m >> j) & 1u) != 0u);
    }
  }
  return o;
}`,
};
