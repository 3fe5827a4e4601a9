// Q2_K (ggml type 10): super-blocks of 256 values, 84 bytes:
//   scales[16] (low nibble: 4-bit scale, high nibble: 4-bit min, one pair per 16 values), qs[64] (2-bit quants),
//   f16 d, f16 dmin. value = d*(sc & 15)*q - dmin*(sc >> 4), q in 0..3.
//   Values 128h + 32s + l (s = 0..3, l < 32) sit in bits 2s..2s+1 of qs[32h + l].
// quantizeRow reproduces ggml's quantize_row_q2_K_ref (make_qkx2_quants on 16 values with weights |x|, nmax 3,
// rmin -0.5, rdelta 0.1, 15 steps, absolute error) bit for bit; test/quant/ggml-exact.test.ts holds it to ggml.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { makeQkx2Quants, qkx2Min, type Qkx2Params } from "./k-common.js";
import { nearestIntC } from "./nearest-int.js";
import { F16_TO_F32, f32ToF16 } from "../util/f16.js";

const QK_K = 256;
const BLOCK_BYTES = 84;
const fr = Math.fround;
const PARAMS: Qkx2Params = { n: 16, nmax: 3, rmin: -0.5, rdelta: fr(0.1), nstep: 15, useMad: true };

const L = new Uint8Array(QK_K);
const W = new Float32Array(16);
const scales = new Float32Array(16);
const mins = new Float32Array(16);

function quantizeBlock(x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 16; j++) {
    for (let l = 0; l < 16; l++) W[l] = Math.abs(x[xo + 16 * j + l]);
    const s = makeQkx2Quants(PARAMS, x, xo + 16 * j, W, L, 16 * j);
    scales[j] = s;
    mins[j] = qkx2Min;
    if (s > maxScale) maxScale = s;
    if (qkx2Min > maxMin) maxMin = qkx2Min;
  }
  let hd = 0;
  let hm = 0;
  if (maxScale > 0) {
    const iscale = fr(15 / maxScale);
    for (let j = 0; j < 16; j++) y[o + j] = nearestIntC(fr(iscale * scales[j])) & 255;
    hd = f32ToF16(fr(maxScale / 15));
  } else {
    for (let j = 0; j < 16; j++) y[o + j] = 0;
  }
  if (maxMin > 0) {
    const iscale = fr(15 / maxMin);
    for (let j = 0; j < 16; j++) y[o + j] |= (nearestIntC(fr(iscale * mins[j])) << 4) & 255;
    hm = f32ToF16(fr(maxMin / 15));
  }
  y[o + 80] = hd & 0xff;
  y[o + 81] = hd >>> 8;
  y[o + 82] = hm & 0xff;
  y[o + 83] = hm >>> 8;
  const dAll = F16_TO_F32[hd];
  const mAll = F16_TO_F32[hm];
  for (let j = 0; j < 16; j++) {
    const sc = y[o + j];
    const d = fr(dAll * (sc & 0xf));
    if (d === 0) continue;
    const dm = fr(mAll * (sc >> 4));
    const b = xo + 16 * j;
    for (let ii = 0; ii < 16; ii++) {
      let l = nearestIntC(fr(fr(x[b + ii] + dm) / d)); // d may be tiny: out-of-range like C
      l = l < 0 ? 0 : l > 3 ? 3 : l;
      L[16 * j + ii] = l;
    }
  }
  for (let j = 0; j < QK_K; j += 128) {
    const q = o + 16 + (j >> 2);
    for (let l = 0; l < 32; l++) y[q + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
  }
}

/** Decode one super-block at byte offset o of src into out[at..at+256). */
function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o + 80] | (src[o + 81] << 8)];
  const min = F16_TO_F32[src[o + 82] | (src[o + 83] << 8)];
  let y = at;
  let is = o;
  for (let h = 0; h < 2; h++) {
    const q = o + 16 + 32 * h;
    for (let shift = 0; shift < 8; shift += 2) {
      for (let half = 0; half < 32; half += 16) {
        const sc = src[is++];
        const dl = fr(d * (sc & 0xf));
        const ml = fr(min * (sc >> 4));
        for (let l = 0; l < 16; l++) out[y++] = fr(dl * ((src[q + half + l] >> shift) & 3)) - ml;
      }
    }
  }
}

export const Q2_K: QuantFormat = blockFormat({
  type: 10,
  name: "Q2_K",
  blockSize: QK_K,
  bytesPerBlock: BLOCK_BYTES,
  dequantBlock,
  quantizeBlock,
});
