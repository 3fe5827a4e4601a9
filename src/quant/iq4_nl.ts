// IQ4_NL (ggml type 20): blocks of 32 values, 18 bytes: f16 d, 16 bytes of 4-bit indices into the non-linear
// table kvalues_iq4nl (low nibbles are values 0..15, high nibbles 16..31); value = d * kvalues[q].
// Decoding is bit-exact with ggml's dequantize_row_iq4_nl (each product rounded to f32, as C does).
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { KVALUES_IQ4NL } from "./iq-tables.js";
import { quantizeIq4NlBlock } from "./iq4-quantize.js";
import { F16_TO_F32 } from "../util/f16.js";

const fr = Math.fround;

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  for (let j = 0; j < 16; j++) {
    const q = src[o + 2 + j];
    out[at + j] = fr(d * KVALUES_IQ4NL[q & 15]);
    out[at + j + 16] = fr(d * KVALUES_IQ4NL[q >> 4]);
  }
}

export const IQ4_NL: QuantFormat = blockFormat({ type: 20, name: "IQ4_NL", blockSize: 32, bytesPerBlock: 18, dequantBlock, quantizeBlock: quantizeIq4NlBlock });
