// Q8_0 (ggml type 8): blocks of 32 values, 34 bytes: f16 d, then 32 int8 quants; value = d * q.
// quantizeRow reproduces ggml's quantize_row_q8_0_ref bit for bit (f32 arithmetic, roundf = half away from zero).
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { F16_TO_F32, f32ToF16 } from "../util/f16.js";

const QK = 32;
const BLOCK_BYTES = 34;
const fr = Math.fround;

/** Decode one block at byte offset o into out[0..32). */
function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  for (let j = 0; j < QK; j++) out[at + j] = ((src[o + 2 + j] << 24) >> 24) * d;
}

/** Encode src[i, i + 32) into the block at byte offset o (ggml's quantize_row_q8_0_ref, one block). */
function quantizeBlock(src: Float32Array, i: number, dst: Uint8Array, o: number): void {
  let amax = 0;
  for (let j = 0; j < QK; j++) {
    const a = Math.abs(src[i + j]);
    amax = amax > a ? amax : a; // MAX(amax, fabsf(v)), NaN-propagating like the C macro
  }
  const d = fr(amax / 127);
  const id = d !== 0 ? fr(1 / d) : 0;
  const h = f32ToF16(d);
  dst[o] = h & 0xff;
  dst[o + 1] = h >>> 8;
  for (let j = 0; j < QK; j++) {
    const x0 = fr(src[i + j] * id);
    // roundf: half away from zero (x0 + 0.5 is exact in f64 for |x0| <= 2^8).
    const q = x0 >= 0 ? Math.floor(x0 + 0.5) : -Math.floor(0.5 - x0);
    dst[o + 2 + j] = q & 0xff;
  }
}

export const Q8_0: QuantFormat = blockFormat({ type: 8, name: "Q8_0", blockSize: QK, bytesPerBlock: BLOCK_BYTES, dequantBlock, quantizeBlock });
