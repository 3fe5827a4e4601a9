// ggml's quantize_row_iq4_nl_impl without an importance matrix (weights x^2), shared by IQ4_NL (one 32-value
// block, no scale search: ntry -1) and IQ4_XS (8 sub-blocks under a 6-bit scale each, ntry 7). Every float
// operation is rounded to f32 in the C code's order (ggml-base on x86-64 is built without FMA contraction).
import { KVALUES_IQ4NL as V } from "./iq-tables.js";
import { nearestIntC } from "./nearest-int.js";
import { f32ToF16 } from "../util/f16.js";

const fr = Math.fround;
const GROUP_MAX_EPS = fr(1e-15);
const L = new Uint8Array(256); // like the C stack array: a zero IQ4_NL block keeps the previous block's indices
const W = new Float32Array(32);
const scales = new Float32Array(8);

/** ggml's best_index_int8(16, kvalues_iq4nl, x): the nearest table entry (ties to the upper one by the C test). */
function bestIndex(x: number): number {
  if (x <= V[0]) return 0;
  if (x >= V[15]) return 15;
  let ml = 0, mu = 15;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < V[mav]) mu = mav;
    else ml = mav;
  }
  return fr(x - V[mu - 1]) < fr(V[mu] - x) ? mu - 1 : mu;
}

/** One 32-value sub-block's scale search; leaves its indices in L[lo..lo+32). */
function subBlockScale(x: Float32Array, xo: number, lo: number, ntry: number): number {
  let amax = 0, max = 0;
  for (let j = 0; j < 32; j++) {
    const v = x[xo + j];
    W[j] = fr(v * v);
    const ax = Math.abs(v);
    if (ax > amax) {
      amax = ax;
      max = v;
    }
  }
  if (amax < GROUP_MAX_EPS) return 0;
  let d = ntry > 0 ? fr(-max / V[0]) : fr(max / V[0]);
  let id = fr(1 / d);
  let sumqx = 0, sumq2 = 0;
  for (let j = 0; j < 32; j++) {
    const l = bestIndex(fr(id * x[xo + j]));
    L[lo + j] = l;
    const wq = fr(W[j] * V[l]);
    sumqx = fr(sumqx + fr(wq * x[xo + j]));
    sumq2 = fr(sumq2 + fr(wq * V[l]));
  }
  d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
  let best = fr(d * sumqx);
  for (let itry = -ntry; itry <= ntry; itry++) {
    id = fr((itry + V[0]) / max);
    sumqx = sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const q = V[bestIndex(fr(id * x[xo + j]))];
      const wq = fr(W[j] * q);
      sumqx = fr(sumqx + fr(wq * x[xo + j]));
      sumq2 = fr(sumq2 + fr(wq * q));
    }
    if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
      d = fr(sumqx / sumq2);
      best = fr(d * sumqx);
    }
  }
  return d;
}

function putF16(y: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  y[o] = h & 255;
  y[o + 1] = h >> 8;
}

function packNibbles(y: Uint8Array, qo: number, n: number): void {
  for (let i = 0; i < n / 32; i++) {
    for (let j = 0; j < 16; j++) y[qo + 16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4);
  }
}

/** quantize_row_iq4_nl_ref for one block: 32 values at x[xo..], 18 bytes at y[o..]. */
export function quantizeIq4NlBlock(x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  putF16(y, o, subBlockScale(x, xo, 0, -1));
  packNibbles(y, o + 2, 32);
}

/** quantize_row_iq4_xs_ref for one super-block: 256 values at x[xo..], 136 bytes at y[o..]. */
export function quantizeIq4XsBlock(x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  let maxScale = 0, amaxScale = 0;
  for (let ib = 0; ib < 8; ib++) {
    const d = subBlockScale(x, xo + 32 * ib, 32 * ib, 7);
    scales[ib] = d;
    if (Math.abs(d) > amaxScale) {
      amaxScale = Math.abs(d);
      maxScale = d;
    }
  }
  const d = fr(-maxScale / 32);
  putF16(y, o, d);
  const id = d ? fr(1 / d) : 0; // the f32 d, not its f16 rounding, as in C
  let sh = 0;
  for (let ib = 0; ib < 8; ib++) {
    let l = nearestIntC(fr(id * scales[ib]));
    l = Math.max(-32, Math.min(31, l));
    const dl = fr(d * l);
    const idl = dl ? fr(1 / dl) : 0;
    for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndex(fr(idl * x[xo + 32 * ib + j]));
    l += 32;
    if (ib % 2 === 0) y[o + 4 + (ib >> 1)] = l & 15;
    else y[o + 4 + (ib >> 1)] |= (l & 15) << 4;
    sh |= (l >> 4) << (2 * ib);
  }
  y[o + 2] = sh & 255;
  y[o + 3] = sh >> 8;
  packNibbles(y, o + 8, 256);
}
