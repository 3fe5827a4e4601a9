// F32 (ggml type 0): plain little-endian IEEE single precision, 4 bytes per value.
import type { QuantFormat } from "./types.js";

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** An f32 view of src's first n values, copying only when src is misaligned (or the host is big-endian). */
function f32View(src: Uint8Array, n: number): Float32Array {
  if (LITTLE_ENDIAN && (src.byteOffset & 3) === 0) return new Float32Array(src.buffer, src.byteOffset, n);
  const out = new Float32Array(n);
  const dv = new DataView(src.buffer, src.byteOffset, n * 4);
  for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

export const F32: QuantFormat = {
  type: 0,
  name: "F32",
  blockSize: 1,
  bytesPerBlock: 4,
  dequantRow(src: Uint8Array, dst: Float32Array, n: number): void {
    dst.set(f32View(src, n).subarray(0, n));
  },
  quantizeRow(src: Float32Array, dst: Uint8Array, n: number): void {
    if (LITTLE_ENDIAN) {
      dst.set(new Uint8Array(src.buffer, src.byteOffset, n * 4));
      return;
    }
    const dv = new DataView(dst.buffer, dst.byteOffset, n * 4);
    for (let i = 0; i < n; i++) dv.setFloat32(i * 4, src[i], true);
  },
  dot(src: Uint8Array, x: Float32Array, n: number): number {
    const w = f32View(src, n);
    let s = 0;
    for (let i = 0; i < n; i++) s += w[i] * x[i];
    return s;
  },
};
