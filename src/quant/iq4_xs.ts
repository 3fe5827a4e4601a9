// IQ4_XS (ggml type 23): super-blocks of 256 values, 136 bytes: f16 d, u16 scales_h, 4 bytes scales_l, 128 bytes
// of 4-bit indices into kvalues_iq4nl. Sub-block ib of 32 has a 6-bit scale ls (low 4 bits in scales_l, high 2 in
// scales_h); value = d * (ls - 32) * kvalues[q]. Bit-exact with ggml's dequantize_row_iq4_xs.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { KVALUES_IQ4NL } from "./iq-tables.js";
import { quantizeIq4XsBlock } from "./iq4-quantize.js";
import { F16_TO_F32 } from "../util/f16.js";

const fr = Math.fround;

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  const sh = src[o + 2] | (src[o + 3] << 8);
  for (let ib = 0; ib < 8; ib++) {
    const ls = ((src[o + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
    const dl = fr(d * (ls - 32));
    const q = o + 8 + 16 * ib;
    const y = at + 32 * ib;
    for (let j = 0; j < 16; j++) {
      out[y + j] = fr(dl * KVALUES_IQ4NL[src[q + j] & 15]);
      out[y + j + 16] = fr(dl * KVALUES_IQ4NL[src[q + j] >> 4]);
    }
  }
}

export const IQ4_XS: QuantFormat = blockFormat({ type: 23, name: "IQ4_XS", blockSize: 256, bytesPerBlock: 136, dequantBlock, quantizeBlock: quantizeIq4XsBlock });
