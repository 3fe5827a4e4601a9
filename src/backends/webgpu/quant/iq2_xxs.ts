// IQ2_XXS on the WebGPU backend (src/quant/iq2_xxs.ts): ggml's 66-byte block (f16 d, then per 32 values two u32:
// 4 indices into iq2xxs_grid, 8 magnitudes each; 4 7-bit sign codes and a 4-bit scale s in the top bits) is only
// 2-byte aligned, so a bound weight is repacked in place into the 64-byte bodies (16 words) of all its blocks, then
// their f16 d. value = d·(0.5 + s)·0.25·grid·sign. Unit u of a row is sub-block u % 8 of block u / 8.
import { IQ2XXS_GRID } from "../../../quant/iq-tables.js";
import { F16_AT, type GpuQuant } from "./types.js";
import { IQ_SIGNS, gridConst } from "./iq-grid.js";

const GRID = `${gridConst("IQ2XXS_G", IQ2XXS_GRID)}${IQ_SIGNS}`;

export const IQ2_XXS_GPU: GpuQuant = {
  type: 16,
  repack: { rawBytes: 66, bodyAt: 2, bodyBytes: 64, scaleAt: 0, blockValues: 256 },
  chunkValues: 256,
  // Chunk = block: thread t reads sub-block t's two words (the 8 threads 64 consecutive bytes).
  piece: /* wgsl */ `${GRID}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let nbr = k / 256u;
  let blk = row * nbr + c;
  let b = wb + blk * 16u + 2u * t;
  let a0 = w[b];
  let a1 = w[b + 1u];
  var s = 0.0;
  for (var l = 0u; l < 4u; l++) {
    let g = 2u * ((a0 >> (8u * l)) & 0xffu);
    let m = ksigns((a1 >> (7u * l)) & 127u);
    let x0 = xb + c * 64u + 8u * t + 2u * l;
    s += dot(sgn4(IQ2XXS_G[g], m), x4[x0]) + dot(sgn4(IQ2XXS_G[g + 1u], m >> 4u), x4[x0 + 1u]);
  }
  return f16_at(wb + n * nbr * 16u, blk) * (0.5 + f32(a1 >> 28u)) * 0.25 * s;
}`,
  wgsl: /* wgsl */ `${GRID}${F16_AT}
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let nbr = p.k / 256u;
  let blk = row * nbr + u / 8u;
  let b = p.w_off + blk * 16u + 2u * (u % 8u);
  let a0 = w[b];
  let a1 = w[b + 1u];
  let db = f16_at(p.w_off + p.n * nbr * 16u, blk) * (0.5 + f32(a1 >> 28u)) * 0.25;
  for (var l = 0u; l < 4u; l++) {
    let g = 2u * ((a0 >> (8u * l)) & 0xffu);
    let m = ksigns((a1 >> (7u * l)) & 127u);
    for (var j = 0u; j < 8u; j++) {
      let v = db * f32((IQ2XXS_G[g + j / 4u] >> (8u * (j % 4u))) & 0xffu);
      o[8u * l + j] = select(v, -v, ((m >> j) & 1u) != 0u);
    }
  }
  return o;
}`,
};
