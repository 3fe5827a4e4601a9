// IQ1_M (ggml type 29): super-blocks of 256 values, 56 bytes, no separate scale field: 32 bytes of grid index low
// bits, 16 bytes qh (per 8 values: 3 index high bits and a delta sign bit), 4 u16 of 3-bit scales (one per 16
// values) whose top nibbles together hold the f16 super-block scale d; value = d * (2s + 1) * (grid +- 0.125).
// Bit-exact with ggml's dequantize_row_iq1_m. Dequantise-only: ggml's quantiser for it needs an importance matrix.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { IQ1S_GRID } from "./iq-tables.js";
import { F16_TO_F32 } from "../util/f16.js";

const fr = Math.fround;
const DELTA = 0.125;
const sc = new Uint16Array(4);

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  for (let k = 0; k < 4; k++) sc[k] = src[o + 48 + 2 * k] | (src[o + 49 + 2 * k] << 8);
  const d = F16_TO_F32[(sc[0] >> 12) | ((sc[1] >> 8) & 0xf0) | ((sc[2] >> 4) & 0xf00) | (sc[3] & 0xf000)];
  for (let ib = 0; ib < 8; ib++) {
    const s = sc[ib >> 1] >> (6 * (ib & 1));
    const dl1 = fr(d * (2 * (s & 7) + 1));
    const dl2 = fr(d * (2 * ((s >> 3) & 7) + 1));
    const qs = o + 4 * ib;
    const qh0 = src[o + 32 + 2 * ib];
    const qh1 = src[o + 33 + 2 * ib];
    for (let l = 0; l < 4; l++) {
      const qh = l < 2 ? qh0 : qh1;
      const hi = l & 1 ? (qh << 4) & 0x700 : (qh << 8) & 0x700;
      const g = 8 * (src[qs + l] | hi);
      const delta = qh & (l & 1 ? 0x80 : 0x08) ? -DELTA : DELTA;
      const dl = l < 2 ? dl1 : dl2;
      const y = at + 32 * ib + 8 * l;
      for (let j = 0; j < 8; j++) out[y + j] = fr(dl * (IQ1S_GRID[g + j] + delta));
    }
  }
}

export const IQ1_M: QuantFormat = blockFormat({ type: 29, name: "IQ1_M", blockSize: 256, bytesPerBlock: 56, dequantBlock });
