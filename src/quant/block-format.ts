// A QuantFormat from its two per-block functions: every block type loops over rows the same way.
import type { QuantFormat } from "./types.js";

export interface BlockCodec {
  type: number;
  name: string;
  blockSize: number;
  bytesPerBlock: number;
  /** Decode the block at byte offset o of src into out[at, at + blockSize). */
  dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void;
  /** Encode src[i, i + blockSize) into the block at byte offset o of dst; absent for a dequantise-only type. */
  quantizeBlock?(src: Float32Array, i: number, dst: Uint8Array, o: number): void;
}

export function blockFormat(c: BlockCodec): QuantFormat {
  const { blockSize: bs, bytesPerBlock: bb } = c;
  const blk = new Float32Array(bs); // dot's scratch; calls are synchronous, so sharing is safe
  const checkN = (n: number) => {
    if (n % bs !== 0) throw new Error(`${c.name}: row length ${n} is not a multiple of ${bs}`);
  };
  const quantizeBlock = c.quantizeBlock;
  return {
    type: c.type,
    name: c.name,
    blockSize: bs,
    bytesPerBlock: bb,
    ...(quantizeBlock ? {} : { dequantOnly: true }),
    dequantRow(src, dst, n) {
      checkN(n);
      for (let i = 0, o = 0; i < n; i += bs, o += bb) c.dequantBlock(src, o, dst, i);
    },
    quantizeRow(src, dst, n) {
      if (!quantizeBlock) throw new Error(`${c.name}: moestream decodes this type only (ggml's quantiser for it needs an importance matrix)`);
      checkN(n);
      for (let i = 0, o = 0; i < n; i += bs, o += bb) quantizeBlock(src, i, dst, o);
    },
    dot(src, x, n) {
      checkN(n);
      let s = 0;
      for (let i = 0, o = 0; i < n; i += bs, o += bb) {
        c.dequantBlock(src, o, blk, 0);
        for (let j = 0; j < bs; j++) s += blk[j] * x[i + j];
      }
      return s;
    },
  };
}
