// IQ2_S (ggml type 22): super-blocks of 256 values, 82 bytes: f16 d, 32 bytes of grid index low bits, 32 sign
// bytes, 8 bytes of index high bits (2 per 8 values: 10-bit index into iq2s_grid), 8 scale bytes (4-bit scale per
// 16 values); value = d * (0.5 + s) * 0.25 * grid * sign. Bit-exact with ggml's dequantize_row_iq2_s.
// Dequantise-only here (ggml has quantize_row_iq2_s_ref, but it is the imatrix search with x^2 weights).
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { signed8 } from "./iq-common.js";
import { IQ2S_GRID } from "./iq-tables.js";
import { F16_TO_F32 } from "../util/f16.js";

const fr = Math.fround;

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  for (let ib = 0; ib < 8; ib++) {
    const sc = src[o + 74 + ib];
    const qh = src[o + 66 + ib];
    const db0 = fr(fr(d * (0.5 + (sc & 15))) * 0.25);
    const db1 = fr(fr(d * (0.5 + (sc >> 4))) * 0.25);
    for (let l = 0; l < 4; l++) {
      const g = 8 * (src[o + 2 + 4 * ib + l] | ((qh << (8 - 2 * l)) & 0x300));
      const signs = src[o + 34 + 4 * ib + l];
      const db = l < 2 ? db0 : db1;
      const y = at + 32 * ib + 8 * l;
      signed8(out, y, IQ2S_GRID, g, db, signs);
    }
  }
}

export const IQ2_S: QuantFormat = blockFormat({ type: 22, name: "IQ2_S", blockSize: 256, bytesPerBlock: 82, dequantBlock });
