// MXFP4 (ggml type 39, gpt-oss's expert weights): blocks of 32 values, 17 bytes: an E8M0 scale byte e, then 16
// bytes of 4-bit FP4 (E2M1) codes, low nibbles values 0..15, high nibbles 16..31 (ggml's split halves).
// value = KVALUES_MXFP4[q] * 2^(e - 128): the table holds the E2M1 values doubled (0, 0.5, 1, ... 6 -> 0, 1, 2, ... 12),
// so the scale is ggml's GGML_E8M0_TO_FP32_HALF(e) = 2^(e - 127) / 2.
// dequantRow is bit-exact with ggml's dequantize_row_mxfp4, quantizeRow byte-identical with quantize_row_mxfp4_ref.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";

const QK = 32;
const BLOCK_BYTES = 17;
const fr = Math.fround;

/** ggml's kvalues_mxfp4 (kvalues_fp4 in ggml-common.h): E2M1 codes 0..15 as doubled values. */
export const KVALUES_MXFP4: Int8Array = Int8Array.of(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);

/** GGML_E8M0_TO_FP32_HALF for every byte: 2^(e - 128), an exact f32 (2^-128 and 2^-127 are subnormals). */
export const E8M0_HALF: Float32Array = Float32Array.from({ length: 256 }, (_, e) => 2 ** (e - 128));

function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = E8M0_HALF[src[o]];
  for (let j = 0; j < 16; j++) {
    const q = src[o + 1 + j];
    // f32 products as C's int8 * float (only e = 255 can overflow, to +-inf, as in ggml)
    out[at + j] = fr(KVALUES_MXFP4[q & 15] * d);
    out[at + j + 16] = fr(KVALUES_MXFP4[q >> 4] * d);
  }
}

/** ggml's best_index_mxfp4: the first code with the least f32 error |k * d - x| (k * d is exact; NaN picks 0). */
function bestIndex(x: number, d: number): number {
  let best = 0;
  let bestErr = Math.abs(fr(KVALUES_MXFP4[0] * d - x));
  for (let i = 1; i < 16; i++) {
    const err = Math.abs(fr(fr(KVALUES_MXFP4[i] * d) - x));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

/** C's (uint8_t) of a float as x86 compiles it (cvttss2si, then the low byte): out-of-range and NaN give 0x80000000 -> 0. */
function toU8(v: number): number {
  return Number.isNaN(v) || Math.abs(v) >= 2 ** 31 ? 0 : Math.trunc(v) & 0xff;
}

function quantizeBlock(src: Float32Array, i: number, dst: Uint8Array, o: number): void {
  let amax = 0;
  for (let j = 0; j < QK; j++) {
    const a = Math.abs(src[i + j]);
    if (amax < a) amax = a; // NaN never wins, as in C
  }
  // floorf(log2f(amax)) - 2 + 127: log2f's f32 rounding matters just below a power of two (log2f(8 - ulp) = 3).
  const e = amax > 0 ? toU8(Math.floor(fr(Math.log2(amax))) - 2 + 127) : 0;
  const d = E8M0_HALF[e];
  dst[o] = e;
  for (let j = 0; j < 16; j++) dst[o + 1 + j] = bestIndex(src[i + j], d) | (bestIndex(src[i + j + 16], d) << 4);
}

export const MXFP4: QuantFormat = blockFormat({ type: 39, name: "MXFP4", blockSize: QK, bytesPerBlock: BLOCK_BYTES, dequantBlock, quantizeBlock });
