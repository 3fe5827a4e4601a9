// Pieces ggml's K-quant reference quantisers share (ggml-quants.c): make_qkx2_quants (an affine scale + min per
// sub-block, searched over a few trial scales), and the 6-bit (scale, min) packing of Q4_K and Q5_K.
// Every float operation is rounded to f32 (Math.fround) in the C code's order, so results are bit-exact with
// ggml-base built without FMA contraction (as node-llama-cpp's x86-64 build is).
import { RND, nearestIntC } from "./nearest-int.js";
import { F16_TO_F32, f32ToF16 } from "../util/f16.js";

const fr = Math.fround;

/** ggml's GROUP_MAX_EPS: below it a group (or super-block) counts as all zeros. */
export const GROUP_MAX_EPS = fr(1e-15);

/**
 * The value of largest magnitude in x[xo..xo+n) (the first on ties), or 0 when every |x| < 1e-15 (ggml's
 * GROUP_MAX_EPS: an "all zero" group), as make_qx_quants and make_q3_quants begin.
 */
export function groupMax(x: Float32Array, xo: number, n: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  return amax < GROUP_MAX_EPS ? 0 : max;
}

export interface Qkx2Params {
  /** Values per sub-block (16 or 32) and the largest quant (3, 15, 31). */
  n: number;
  nmax: number;
  /** Trial scales are (rmin + rdelta * is + nmax) / (max - min) for is = 0..nstep. */
  rmin: number;
  rdelta: number;
  nstep: number;
  /** Error is w * |diff| (true, Q2_K) or w * diff^2. */
  useMad: boolean;
}

const Laux = new Uint8Array(32);
const XM = new Float32Array(32); // x - min

/** The negated min of the last makeQkx2Quants call (ggml's *the_min). */
export let qkx2Min = 0;

/**
 * ggml's make_qkx2_quants(n, nmax, x+xo, w, L+lo, &the_min, Laux, rmin, rdelta, nstep, use_mad).
 * Returns the scale; the negated min is left in qkx2Min. Two exact shortcuts keep it fast: a trial whose quants
 * repeat the previous trial's is skipped (its sums, scale, min and error are the same, so its outcome is already
 * decided), and the error sum stops once it reaches the best (every term is >= 0, so the f32 sum never decreases).
 */
export function makeQkx2Quants(p: Qkx2Params, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number): number {
  const { n, nmax, useMad } = p;
  let min = x[xo];
  let max = x[xo];
  let sumW = w[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    sumW = fr(sumW + w[i]);
    sumX = fr(sumX + fr(w[i] * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    qkx2Min = -min;
    return 0;
  }
  // Like the C code, later trials use the min of the best trial so far (it changes range and x - min).
  let range = fr(max - min);
  let iscale = fr(nmax / range);
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xm = fr(x[xo + i] - min);
    XM[i] = xm;
    let l = fr(iscale * xm) + RND - RND;
    l = l < 0 ? 0 : l > nmax ? nmax : l;
    L[lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - x[xo + i]);
    bestError = fr(bestError + fr(w[i] * (useMad ? Math.abs(diff) : fr(diff * diff))));
  }
  for (let is = 0; is <= p.nstep; is++) {
    iscale = fr(fr(fr(p.rmin + fr(p.rdelta * is)) + nmax) / range);
    let changed = is === 0;
    for (let i = 0; i < n; i++) {
      let l = fr(iscale * XM[i]) + RND - RND;
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
      const wl = fr(w[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
    let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = fr(sumXL / sumL2);
    }
    let curError = 0;
    let i = 0;
    for (; i < n; i++) {
      const diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - x[xo + i]);
      curError = fr(curError + fr(w[i] * (useMad ? Math.abs(diff) : fr(diff * diff))));
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
  qkx2Min = -min;
  return scale;
}

/** Unpacked 6-bit scales and mins of the last unpackScaleMin call. */
export const SC = new Uint8Array(8);
export const MN = new Uint8Array(8);

/** Unpack the 8 (scale, min) 6-bit pairs of the 12 bytes at q[o..o+12) into SC, MN (ggml's get_scale_min_k4). */
export function unpackScaleMin(q: Uint8Array, o: number): void {
  for (let j = 0; j < 4; j++) {
    SC[j] = q[o + j] & 63;
    MN[j] = q[o + j + 4] & 63;
  }
  for (let j = 4; j < 8; j++) {
    SC[j] = (q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4);
    MN[j] = (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4);
  }
}

const W = new Float32Array(32);
const scales = new Float32Array(8);
const mins = new Float32Array(8);

/**
 * The shared part of quantize_row_q4_K_ref and quantize_row_q5_K_ref for one super-block of 256 at x[xo..]:
 * per sub-block of 32, weights av_x + |x| and make_qkx2_quants; then d, dmin and the 12 packed scale bytes at
 * y[o..o+16); then every quant re-derived from the stored scales into L[0..256) (0..p.nmax).
 */
export function quantizeScaleMin8(p: Qkx2Params, x: Float32Array, xo: number, y: Uint8Array, o: number, L: Uint8Array): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const b = xo + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[b + l] * x[b + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) W[l] = avX + Math.abs(x[b + l]); // stored as f32: fr(av_x + fabsf(x))
    const scale = makeQkx2Quants(p, x, b, W, L, 32 * j);
    scales[j] = scale;
    if (scale > maxScale) maxScale = scale;
    mins[j] = qkx2Min;
    if (qkx2Min > maxMin) maxMin = qkx2Min;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const so = o + 4;
  for (let j = 0; j < 12; j++) y[so + j] = 0;
  for (let j = 0; j < 8; j++) {
    let ls = (fr(invScale * scales[j]) + RND - RND) & 255;
    let lm = (fr(invMin * mins[j]) + RND - RND) & 255;
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
  unpackScaleMin(y, so);
  const nmax = p.nmax;
  for (let j = 0; j < 8; j++) {
    const d = fr(dAll * SC[j]);
    if (d === 0) continue;
    const dm = fr(mAll * MN[j]);
    const b = xo + 32 * j;
    for (let ii = 0; ii < 32; ii++) {
      let l = nearestIntC(fr(fr(x[b + ii] + dm) / d)); // d may be tiny: out-of-range like C
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      L[32 * j + ii] = l;
    }
  }
}
