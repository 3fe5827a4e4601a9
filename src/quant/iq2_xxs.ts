// IQ2_XXS (ggml type 16): super-blocks of 256 values, 66 bytes: f16 d, then per 32 values two u32 words: the
// first holds 4 indices into iq2xxs_grid (8 magnitudes each), the second 4 x 7-bit sign codes (ksigns_iq2xs) and a
// 4-bit scale s in its top bits; value = d * (0.5 + s) * 0.25 * grid * sign. Bit-exact with ggml's
// dequantize_row_iq2_xxs. Dequantise-only: ggml's quantiser for it needs an importance matrix.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { signed8 } from "./iq-common.js";
import { IQ2XXS_GRID, KSIGNS_IQ2XS } from "./iq-tables.js";
import { F16_TO_F32 } from "../util/f16.js";

const fr = Math.fround;

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  for (let ib = 0; ib < 8; ib++) {
    const b = o + 2 + 8 * ib;
    const aux1 = (src[b + 4] | (src[b + 5] << 8) | (src[b + 6] << 16) | (src[b + 7] << 24)) >>> 0;
    const db = fr(fr(d * (0.5 + (aux1 >>> 28))) * 0.25);
    for (let l = 0; l < 4; l++) {
      const g = 8 * src[b + l];
      const signs = KSIGNS_IQ2XS[(aux1 >>> (7 * l)) & 127];
      const y = at + 32 * ib + 8 * l;
      signed8(out, y, IQ2XXS_GRID, g, db, signs);
    }
  }
}

export const IQ2_XXS: QuantFormat = blockFormat({ type: 16, name: "IQ2_XXS", blockSize: 256, bytesPerBlock: 66, dequantBlock });
