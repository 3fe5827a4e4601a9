// Q5_K (ggml type 13): super-blocks of 256 values, 176 bytes:
//   f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) pairs for 8 sub-blocks of 32 (as Q4_K),
//   qh[32] (the 5th bits), qs[128] (low 4 bits). value = d*sc[j]*q - dmin*m[j], q in 0..31.
//   Sub-blocks 2k and 2k+1 share qs bytes 32k..32k+31 (low, high nibble); their 5th bits are bits 2k and 2k+1 of qh.
// quantizeRow reproduces ggml's quantize_row_q5_K_ref (make_qkx2_quants with nmax 31, rmin -0.5, rdelta 0.1,
// 15 steps) bit for bit (k-common.ts); test/quant/ggml-exact.test.ts holds it to ggml's own library.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { MN, SC, quantizeScaleMin8, unpackScaleMin, type Qkx2Params } from "./k-common.js";
import { F16_TO_F32 } from "../util/f16.js";

const QK_K = 256;
const BLOCK_BYTES = 176;
const fr = Math.fround;
const PARAMS: Qkx2Params = { n: 32, nmax: 31, rmin: -0.5, rdelta: fr(0.1), nstep: 15, useMad: false };

const L = new Uint8Array(QK_K);

function quantizeBlock(x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  quantizeScaleMin8(PARAMS, x, xo, y, o, L);
  const qh = o + 16;
  const ql = o + 48;
  for (let j = 0; j < 32; j++) y[qh + j] = 0;
  for (let n = 0, m1 = 1, m2 = 2; n < QK_K; n += 64, m1 <<= 2, m2 <<= 2) {
    const q = ql + (n >> 1);
    for (let j = 0; j < 32; j++) {
      let l1 = L[n + j];
      let l2 = L[n + j + 32];
      if (l1 > 15) {
        l1 -= 16;
        y[qh + j] |= m1;
      }
      if (l2 > 15) {
        l2 -= 16;
        y[qh + j] |= m2;
      }
      y[q + j] = l1 | (l2 << 4);
    }
  }
}

/** Decode one super-block at byte offset o of src into out[at..at+256). */
function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o] | (src[o + 1] << 8)];
  const dmin = F16_TO_F32[src[o + 2] | (src[o + 3] << 8)];
  unpackScaleMin(src, o + 4);
  const qh = o + 16;
  let q = o + 48;
  let y = at;
  for (let j = 0, u1 = 1, u2 = 2; j < 8; j += 2, u1 <<= 2, u2 <<= 2) {
    const d1 = fr(d * SC[j]);
    const m1 = fr(dmin * MN[j]);
    const d2 = fr(d * SC[j + 1]);
    const m2 = fr(dmin * MN[j + 1]);
    for (let l = 0; l < 32; l++) out[y + l] = fr(d1 * ((src[q + l] & 0xf) + (src[qh + l] & u1 ? 16 : 0))) - m1;
    for (let l = 0; l < 32; l++) out[y + 32 + l] = fr(d2 * ((src[q + l] >> 4) + (src[qh + l] & u2 ? 16 : 0))) - m2;
    q += 32;
    y += 64;
  }
}

export const Q5_K: QuantFormat = blockFormat({
  type: 13,
  name: "Q5_K",
  blockSize: QK_K,
  bytesPerBlock: BLOCK_BYTES,
  dequantBlock,
  quantizeBlock,
});
