// Q4_K (ggml type 12): super-blocks of 256 values, 144 bytes:
//   f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) pairs for 8 sub-blocks of 32, 128 bytes of 4-bit quants.
//   value = d*sc[j]*q - dmin*m[j]. Quants of sub-blocks 2k and 2k+1 share bytes 32k..32k+31 (low, high nibble).
// quantizeRow reproduces ggml's quantize_row_q4_K_ref (make_qkx2_quants with rmin -1, rdelta 0.1, 20 steps)
// bit for bit (k-common.ts); test/quant/ggml-exact.test.ts holds it to ggml's own library.
// A ggml built with FMA contraction (-march=native) rounds differently in a few % of blocks.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { MN, SC, quantizeScaleMin8, unpackScaleMin, type Qkx2Params } from "./k-common.js";
import { F16_TO_F32 } from "../util/f16.js";

const QK_K = 256;
const BLOCK_BYTES = 144;
const fr = Math.fround;
const PARAMS: Qkx2Params = { n: 32, nmax: 15, rmin: -1, rdelta: fr(0.1), nstep: 20, useMad: false };

const L = new Uint8Array(QK_K);

function quantizeBlock(x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  quantizeScaleMin8(PARAMS, x, xo, y, o, L);
  const qo = o + 16;
  for (let j = 0; j < QK_K; j += 64) {
    const q = qo + (j >> 1);
    for (let l = 0; l < 32; l++) y[q + l] = L[j + l] | (L[j + l + 32] << 4);
  }
}

/** Decode one super-block at byte offset o of src into out[at..at+256). */
function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  const dmin = F16_TO_F32[src[o + 2] | (src[o + 3] << 8)];
  unpackScaleMin(src, o + 4);
  let q = o + 16;
  let y = at;
  for (let j = 0; j < 8; j += 2) {
    const d1 = fr(d * SC[j]);
    const m1 = fr(dmin * MN[j]);
    const d2 = fr(d * SC[j + 1]);
    const m2 = fr(dmin * MN[j + 1]);
    for (let l = 0; l < 32; l++) out[y + l] = fr(d1 * (src[q + l] & 0xf)) - m1;
    for (let l = 0; l < 32; l++) out[y + 32 + l] = fr(d2 * (src[q + l] >> 4)) - m2;
    q += 32;
    y += 64;
  }
}

export const Q4_K: QuantFormat = blockFormat({
  type: 12,
  name: "Q4_K",
  blockSize: QK_K,
  bytesPerBlock: BLOCK_BYTES,
  dequantBlock,
  quantizeBlock,
});
