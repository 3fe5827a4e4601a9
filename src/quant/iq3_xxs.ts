// IQ3_XXS (ggml type 18): super-blocks of 256 values, 98 bytes: f16 d, 64 indices into iq3xxs_grid (4 magnitudes
// each), then per 32 values a u32 of 4 x 7-bit sign codes (ksigns_iq2xs) and a 4-bit scale s in its top bits;
// value = d * (0.5 + s) * 0.5 * grid * sign. Bit-exact with ggml's dequantize_row_iq3_xxs.
// Dequantise-only here (ggml's reference is the imatrix search with x^2 weights).
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { signed4x2 } from "./iq-common.js";
import { IQ3XXS_GRID, KSIGNS_IQ2XS } from "./iq-tables.js";
import { F16_TO_F32 } from "../util/f16.js";

const fr = Math.fround;

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  for (let ib = 0; ib < 8; ib++) {
    const s = o + 66 + 4 * ib;
    const aux = (src[s] | (src[s + 1] << 8) | (src[s + 2] << 16) | (src[s + 3] << 24)) >>> 0;
    const db = fr(fr(d * (0.5 + (aux >>> 28))) * 0.5);
    for (let l = 0; l < 4; l++) {
      const signs = KSIGNS_IQ2XS[(aux >>> (7 * l)) & 127];
      const g1 = 4 * src[o + 2 + 8 * ib + 2 * l];
      const g2 = 4 * src[o + 2 + 8 * ib + 2 * l + 1];
      const y = at + 32 * ib + 8 * l;
      signed4x2(out, y, IQ3XXS_GRID, g1, g2, db, signs);
    }
  }
}

export const IQ3_XXS: QuantFormat = blockFormat({ type: 18, name: "IQ3_XXS", blockSize: 256, bytesPerBlock: 98, dequantBlock });
