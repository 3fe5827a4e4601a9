// IQ1_S (ggml type 19): super-blocks of 256 values, 50 bytes: f16 d, 32 bytes of grid index low bits, 8 u16 (per
// 32 values: 4 x 3 index high bits -> 11-bit index into iq1s_grid of -1/0/1 octets, a 3-bit scale s, a delta sign
// bit); value = d * (2s + 1) * (grid +- 0.125). Bit-exact with ggml's dequantize_row_iq1_s.
// Dequantise-only: ggml's quantiser for it needs an importance matrix.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { IQ1S_GRID } from "./iq-tables.js";
import { F16_TO_F32 } from "../util/f16.js";

const fr = Math.fround;
const DELTA = 0.125;

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  for (let ib = 0; ib < 8; ib++) {
    const qh = src[o + 34 + 2 * ib] | (src[o + 35 + 2 * ib] << 8);
    const dl = fr(d * (2 * ((qh >> 12) & 7) + 1));
    const delta = qh & 0x8000 ? -DELTA : DELTA;
    for (let l = 0; l < 4; l++) {
      const g = 8 * (src[o + 2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8));
      const y = at + 32 * ib + 8 * l;
      for (let j = 0; j < 8; j++) out[y + j] = fr(dl * (IQ1S_GRID[g + j] + delta)); // grid + delta is exact in f32
    }
  }
}

export const IQ1_S: QuantFormat = blockFormat({ type: 19, name: "IQ1_S", blockSize: 256, bytesPerBlock: 50, dequantBlock });
