// BF16 (ggml type 30): bfloat16 (top half of an f32), little-endian, 2 bytes per value;
// encoding rounds to nearest even and forces NaNs quiet, as ggml_compute_fp32_to_bf16.
import type { QuantFormat } from "./types.js";
import { f32ToBf16 } from "../util/f16.js";

const f = new Float32Array(1);
const u = new Uint32Array(f.buffer);

export const BF16: QuantFormat = {
  type: 30,
  name: "BF16",
  blockSize: 1,
  bytesPerBlock: 2,
  dequantRow(src: Uint8Array, dst: Float32Array, n: number): void {
    const du = new Uint32Array(dst.buffer, dst.byteOffset, n);
    for (let i = 0, o = 0; i < n; i++, o += 2) du[i] = ((src[o] << 16) | (src[o + 1] << 24)) >>> 0;
  },
  quantizeRow(src: Float32Array, dst: Uint8Array, n: number): void {
    for (let i = 0, o = 0; i < n; i++, o += 2) {
      const h = f32ToBf16(src[i]);
      dst[o] = h & 0xff;
      dst[o + 1] = h >>> 8;
    }
  },
  dot(src: Uint8Array, x: Float32Array, n: number): number {
    let s = 0;
    for (let i = 0, o = 0; i < n; i++, o += 2) {
      u[0] = ((src[o] << 16) | (src[o + 1] << 24)) >>> 0;
      s += f[0] * x[i];
    }
    return s;
  },
};
