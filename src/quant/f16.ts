// F16 (ggml type 1): IEEE half precision, little-endian, 2 bytes per value; encoding rounds to nearest even.
import type { QuantFormat } from "./types.js";
import { F16_TO_F32, f32ToF16 } from "../util/f16.js";

export const F16: QuantFormat = {
  type: 1,
  name: "F16",
  blockSize: 1,
  bytesPerBlock: 2,
  dequantRow(src: Uint8Array, dst: Float32Array, n: number): void {
    const t = F16_TO_F32;
    for (let i = 0, o = 0; i < n; i++, o += 2) dst[i] = t[src[o] | (src[o + 1] << 8)];
  },
  quantizeRow(src: Float32Array, dst: Uint8Array, n: number): void {
    for (let i = 0, o = 0; i < n; i++, o += 2) {
      const h = f32ToF16(src[i]);
      dst[o] = h & 0xff;
      dst[o + 1] = h >>> 8;
    }
  },
  dot(src: Uint8Array, x: Float32Array, n: number): number {
    const t = F16_TO_F32;
    let s = 0;
    for (let i = 0, o = 0; i < n; i++, o += 2) s += t[src[o] | (src[o + 1] << 8)] * x[i];
    return s;
  },
};
