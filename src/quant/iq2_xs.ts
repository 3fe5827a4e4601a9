// IQ2_XS (ggml type 17): super-blocks of 256 values, 74 bytes: f16 d, 32 u16 codes (9-bit index into iq2xs_grid,
// 7-bit sign code), 8 scale bytes (two 4-bit scales per 32 values, one per 16); value = d * (0.5 + s) * 0.25 *
// grid * sign. Bit-exact with ggml's dequantize_row_iq2_xs. Dequantise-only (ggml's quantiser needs an imatrix).
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { signed8 } from "./iq-common.js";
import { IQ2XS_GRID, KSIGNS_IQ2XS } from "./iq-tables.js";
import { F16_TO_F32 } from "../util/f16.js";

const fr = Math.fround;

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  for (let ib = 0; ib < 8; ib++) {
    const sc = src[o + 66 + ib];
    const db0 = fr(fr(d * (0.5 + (sc & 15))) * 0.25);
    const db1 = fr(fr(d * (0.5 + (sc >> 4))) * 0.25);
    for (let l = 0; l < 4; l++) {
      const qo = o + 2 + 2 * (4 * ib + l);
      const q = src[qo] | (src[qo + 1] << 8);
      const g = 8 * (q & 511);
      const signs = KSIGNS_IQ2XS[q >> 9];
      const db = l < 2 ? db0 : db1;
      const y = at + 32 * ib + 8 * l;
      signed8(out, y, IQ2XS_GRID, g, db, signs);
    }
  }
}

export const IQ2_XS: QuantFormat = blockFormat({ type: 17, name: "IQ2_XS", blockSize: 256, bytesPerBlock: 74, dequantBlock });
