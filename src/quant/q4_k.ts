// Q4_K (ggml type 12): super-blocks of 256 values, 144 bytes:
//   f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) pairs for 8 sub-blocks of 32, 128 bytes of 4-bit quants.
//   value = d*sc[j]*q - dmin*m[j]. Quants of sub-blocks 2k and 2k+1 share bytes 32k..32k+31 (low, high nibble).
// quantizeRow reproduces ggml's quantize_row_q4_K_ref (make_qkx2_quants with rmin -1, rdelta 0.1, 20 steps)
// bit for bit: every float operation of the C code is rounded to f32 here (Math.fround) in the same order.
// Verified equal to ggml's C (built with plain f32 operations, no FMA contraction, as ggml-base is on x86-64)
// on millions of values; a ggml built with FMA contraction (-march=native) rounds differently in a few % of blocks.
// Two exact shortcuts keep it fast (see makeQkx2Quants): trials whose quants repeat the previous trial are
// skipped, and the error sum stops once it can no longer beat the best.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { RND, nearestIntC } from "./nearest-int.js";
import { F16_TO_F32, f32ToF16 } from "../util/f16.js";

const QK_K = 256;
const BLOCK_BYTES = 144;
const fr = Math.fround;
const RDELTA = fr(0.1);

// Scratch, reused across calls (quantization is synchronous, so sharing is safe).
const L = new Uint8Array(QK_K);
const Laux = new Uint8Array(32);
const W = new Float32Array(32);
const XM = new Float32Array(32); // x - min
const scales = new Float32Array(8);
const mins = new Float32Array(8);
const sc = new Uint8Array(8);
const mn = new Uint8Array(8);


let qkx2Min = 0;

/**
 * ggml's make_qkx2_quants(32, 15, x+xo, W, L+lo, &the_min, Laux, -1.f, 0.1f, 20, false).
 * Returns the scale; the (negated) min is left in qkx2Min.
 */
function makeQkx2Quants(x: Float32Array, xo: number, lo: number): number {
  const n = 32;
  const nmax = 15;
  let min = x[xo];
  let max = x[xo];
  let sumW = W[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = W[i];
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    qkx2Min = -min;
    return 0;
  }
  // Note: min (and so max - min and x - min) changes when a trial improves the error; like the C code,
  // later trials use the updated min.
  let range = fr(max - min);
  let iscale = fr(nmax / range);
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xm = fr(x[xo + i] - min);
    XM[i] = xm;
    let l = (fr(iscale * xm) + RND - RND);
    l = l < 0 ? 0 : l > nmax ? nmax : l;
    L[lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - x[xo + i]);
    bestError = fr(bestError + fr(W[i] * fr(diff * diff)));
  }
  for (let is = 0; is <= 20; is++) {
    iscale = fr(fr(fr(-1 + fr(RDELTA * is)) + nmax) / range);
    // A trial whose quants equal the previous trial's has the same sums, scale, min and error (none of them
    // depends on the current min), so its outcome is already decided: skip it.
    let changed = is === 0;
    for (let i = 0; i < n; i++) {
      let l = (fr(iscale * XM[i]) + RND - RND);
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      if (Laux[i] !== l) {
        Laux[i] = l;
        changed = true;
      }
    }
    if (!changed) continue;
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Laux[i];
      const wl = fr(W[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      // Every term is >= 0 (weights are >= 0), so the f32 running sum never decreases: once it reaches
      // bestError this trial cannot win and the rest of the sum is skipped (exact: same decision as ggml).
      let curError = 0;
      let i = 0;
      for (; i < n; i++) {
        const diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        curError = fr(curError + fr(W[i] * fr(diff * diff)));
        if (curError >= bestError) break;
      }
      if (i === n && curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i];
        bestError = curError;
        scale = thisScale;
        if (thisMin !== min) {
          min = thisMin;
          range = fr(max - min);
          for (let i = 0; i < n; i++) XM[i] = fr(x[xo + i] - min);
        }
      }
    }
  }
  qkx2Min = -min;
  return scale;
}

/** Unpack the 8 (scale, min) 6-bit pairs of the 12 bytes at q[o..o+12) (ggml's get_scale_min_k4). */
function unpackScales(q: Uint8Array, o: number): void {
  for (let j = 0; j < 4; j++) {
    sc[j] = q[o + j] & 63;
    mn[j] = q[o + j + 4] & 63;
  }
  for (let j = 4; j < 8; j++) {
    sc[j] = (q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4);
    mn[j] = (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4);
  }
}

function quantizeBlock(x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const b = xo + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) {
      const v = x[b + l];
      sumX2 = fr(sumX2 + fr(v * v));
    }
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) W[l] = avX + Math.abs(x[b + l]); // stored as f32: fr(av_x + fabsf(x))
    const scale = makeQkx2Quants(x, b, 32 * j);
    scales[j] = scale;
    if (scale > maxScale) maxScale = scale;
    const m = qkx2Min;
    mins[j] = m;
    if (m > maxMin) maxMin = m;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const so = o + 4;
  for (let j = 0; j < 12; j++) y[so + j] = 0;
  for (let j = 0; j < 8; j++) {
    let ls = ((fr(invScale * scales[j]) + RND - RND)) & 255;
    let lm = ((fr(invMin * mins[j]) + RND - RND)) & 255;
    if (ls > 63) ls = 63;
    if (lm > 63) lm = 63;
    if (j < 4) {
      y[so + j] = ls;
      y[so + j + 4] = lm;
    } else {
      y[so + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      y[so + j - 4] |= (ls >> 4) << 6;
      y[so + j] |= (lm >> 4) << 6;
    }
  }
  const hd = f32ToF16(fr(maxScale / 63));
  const hm = f32ToF16(fr(maxMin / 63));
  y[o] = hd & 0xff;
  y[o + 1] = hd >>> 8;
  y[o + 2] = hm & 0xff;
  y[o + 3] = hm >>> 8;
  const dAll = F16_TO_F32[hd];
  const mAll = F16_TO_F32[hm];
  unpackScales(y, so);
  for (let j = 0; j < 8; j++) {
    const d = fr(dAll * sc[j]);
    if (d === 0) continue;
    const dm = fr(mAll * mn[j]);
    const b = xo + 32 * j;
    for (let ii = 0; ii < 32; ii++) {
      let l = nearestIntC(fr(fr(x[b + ii] + dm) / d)); // d may be tiny: out-of-range like C
      l = l < 0 ? 0 : l > 15 ? 15 : l;
      L[32 * j + ii] = l;
    }
  }
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
  unpackScales(src, o + 4);
  let q = o + 16;
  let y = at;
  for (let j = 0; j < 8; j += 2) {
    const d1 = fr(d * sc[j]);
    const m1 = fr(dmin * mn[j]);
    const d2 = fr(d * sc[j + 1]);
    const m2 = fr(dmin * mn[j + 1]);
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
