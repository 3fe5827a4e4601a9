// ggml's legacy 32-value block types Q4_0, Q4_1, Q5_0, Q5_1 (one module each uses this codec):
//   _0: f16 d, [qh u32 for 5 bits], qs[16]; value = d * (q - 8 | 16), d = max / -8 | -16 (max: the value of largest |x|).
//   _1: f16 d, f16 m, [qh u32], qs[16];      value = d * q + m,        d = (max - min) / 15 | 31, m = min.
//   Value j (< 16) is the low nibble of qs[j], value j + 16 the high nibble; in 5-bit types bit j of qh is value j's 5th bit.
// quantizeRow reproduces ggml's quantize_row_q{4,5}_{0,1}_ref bit for bit (f32 arithmetic, truncating conversions).
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { F16_TO_F32, f32ToF16 } from "../util/f16.js";

const QK = 32;
const fr = Math.fround;
const FLT_MAX = 3.4028234663852886e38;

export interface LegacySpec {
  type: number;
  name: string;
  bits: 4 | 5;
  /** _1 types: an f16 min after d, unsigned quants; _0 types: symmetric, quants offset by 2^(bits-1). */
  withMin: boolean;
}

export function legacyFormat(s: LegacySpec): QuantFormat {
  const { bits, withMin } = s;
  const qmax = (1 << bits) - 1;
  const half = 1 << (bits - 1);
  const qh = withMin ? 4 : 2; // byte offset of qh (5-bit) or qs (4-bit)
  const qs = qh + (bits === 5 ? 4 : 0);
  const bytes = qs + 16;

  function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
    const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
    const m = withMin ? F16_TO_F32[src[o + 2] | (src[o + 3] << 8)] : 0;
    const h = bits === 5 ? (src[o + qh] | (src[o + qh + 1] << 8) | (src[o + qh + 2] << 16) | (src[o + qh + 3] << 24)) >>> 0 : 0;
    for (let j = 0; j < 16; j++) {
      const b = src[o + qs + j];
      let x0 = b & 0xf;
      let x1 = b >> 4;
      if (bits === 5) {
        x0 |= ((h >>> j) << 4) & 0x10;
        x1 |= (h >>> (j + 12)) & 0x10;
      }
      if (withMin) {
        out[at + j] = fr(x0 * d) + m;
        out[at + j + 16] = fr(x1 * d) + m;
      } else {
        out[at + j] = (x0 - half) * d;
        out[at + j + 16] = (x1 - half) * d;
      }
    }
  }

  function quantizeBlock(x: Float32Array, i: number, dst: Uint8Array, o: number): void {
    let d: number;
    let min = 0;
    let add: number; // rounding offset: C's (int8_t)(x0 + half + 0.5f) for _0, (x0 + 0.5f) for _1
    if (withMin) {
      min = FLT_MAX;
      let max = -FLT_MAX;
      for (let j = 0; j < QK; j++) {
        const v = x[i + j];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      d = fr(fr(max - min) / qmax);
      add = 0.5;
    } else {
      let amax = 0;
      let max = 0;
      for (let j = 0; j < QK; j++) {
        const v = x[i + j];
        if (amax < Math.abs(v)) {
          amax = Math.abs(v);
          max = v;
        }
      }
      d = fr(max / -half);
      add = half + 0.5;
    }
    const id = d !== 0 ? fr(1 / d) : 0;
    const hd = f32ToF16(d);
    dst[o] = hd & 0xff;
    dst[o + 1] = hd >>> 8;
    if (withMin) {
      const hm = f32ToF16(min);
      dst[o + 2] = hm & 0xff;
      dst[o + 3] = hm >>> 8;
    }
    let h = 0;
    for (let j = 0; j < 16; j++) {
      const a = withMin ? fr(fr(x[i + j] - min) * id) : fr(x[i + j] * id);
      const b = withMin ? fr(fr(x[i + j + 16] - min) * id) : fr(x[i + j + 16] * id);
      // (int8_t)/(uint8_t) of a float truncates toward zero; Q5_1 alone has no MIN() (its quants cannot exceed 31).
      let q0 = Math.trunc(fr(a + add)) & 0xff;
      let q1 = Math.trunc(fr(b + add)) & 0xff;
      if (!(withMin && bits === 5)) {
        q0 = Math.min(qmax, (q0 << 24) >> 24);
        q1 = Math.min(qmax, (q1 << 24) >> 24);
      }
      dst[o + qs + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      if (bits === 5) h |= (((q0 & 0x10) >> 4) << j) | (((q1 & 0x10) >> 4) << (j + 16));
    }
    if (bits === 5) {
      dst[o + qh] = h & 0xff;
      dst[o + qh + 1] = (h >>> 8) & 0xff;
      dst[o + qh + 2] = (h >>> 16) & 0xff;
      dst[o + qh + 3] = h >>> 24;
    }
  }

  return blockFormat({ type: s.type, name: s.name, blockSize: QK, bytesPerBlock: bytes, dequantBlock, quantizeBlock });
}
