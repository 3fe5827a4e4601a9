// IQ3_S (ggml type 21): super-blocks of 256 values, 110 bytes: f16 d, 64 bytes of grid index low bits, 8 bytes of
// index high bits (9-bit index into iq3s_grid), 32 sign bytes, 4 scale bytes (4-bit scale s per 32 values);
// value = d * (1 + 2s) * grid * sign. Bit-exact with ggml's dequantize_row_iq3_s.
// Dequantise-only here (ggml's reference is the imatrix search with x^2 weights).
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { signed4x2 } from "./iq-common.js";
import { IQ3S_GRID } from "./iq-tables.js";
import { F16_TO_F32 } from "../util/f16.js";

const fr = Math.fround;

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  for (let ib = 0; ib < 8; ib++) {
    const sc = src[o + 106 + (ib >> 1)];
    const db = fr(d * (1 + 2 * (ib & 1 ? sc >> 4 : sc & 15)));
    const qh = src[o + 66 + ib];
    for (let l = 0; l < 4; l++) {
      const qs = o + 2 + 8 * ib + 2 * l;
      const g1 = 4 * (src[qs] | ((qh << (8 - 2 * l)) & 256));
      const g2 = 4 * (src[qs + 1] | ((qh << (7 - 2 * l)) & 256));
      const signs = src[o + 74 + 4 * ib + l];
      const y = at + 32 * ib + 8 * l;
      signed4x2(out, y, IQ3S_GRID, g1, g2, db, signs);
    }
  }
}

export const IQ3_S: QuantFormat = blockFormat({ type: 21, name: "IQ3_S", blockSize: 256, bytesPerBlock: 110, dequantBlock });
