// Q6_K (ggml type 14): super-blocks of 256 values, 210 bytes:
//   ql[128] (low 4 bits), qh[64] (high 2 bits), 16 int8 scales (one per 16 values), f16 d.
//   value = d * scale[j] * (q - 32), q in 0..63.
// quantizeRow reproduces ggml's quantize_row_q6_K_ref (make_qx_quants with nmax 32, rmse_type 1)
// bit for bit: every float operation of the C code is rounded to f32 here (Math.fround) in the same order.
// Verified equal to ggml's C (built with plain f32 operations, no FMA contraction, as ggml-base is on x86-64)
// on millions of values; a ggml built with FMA contraction (-march=native) rounds differently in a few % of blocks.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { GROUP_MAX_EPS, groupMax } from "./k-common.js";
import { RND, nearestIntC } from "./nearest-int.js";
import { F16_TO_F32, f32ToF16 } from "../util/f16.js";

const QK_K = 256;
const BLOCK_BYTES = 210;
const fr = Math.fround;
const F01 = fr(0.1);

const L = new Uint8Array(QK_K);
const LT = new Int8Array(16); // candidate quants of one trial
const WX = new Float32Array(16); // w*x with w = x*x
const WW = new Float32Array(16); // w
const scales = new Float32Array(16);


/** ggml's make_qx_quants(16, 32, x+xo, L+lo, 1, NULL): returns the scale, leaves L[lo..lo+16) = l + 32. */
function makeQxQuants(x: Float32Array, xo: number, lo: number): number {
  const n = 16;
  const nmax = 32;
  const max = groupMax(x, xo, n);
  if (max === 0) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = (fr(iscale * xi) + RND - RND);
    l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
    L[lo + i] = l + nmax;
    const w = fr(xi * xi);
    const wx = fr(w * xi);
    WW[i] = w;
    WX[i] = wx;
    sumlx = fr(sumlx + fr(wx * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(F01 * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      let l = (fr(iscale * x[xo + i]) + RND - RND);
      l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
      LT[i] = l;
      sumlx = fr(sumlx + fr(WX[i] * l));
      suml2 = fr(suml2 + fr(fr(WW[i] * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) L[lo + i] = LT[i] + nmax;
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

function quantizeBlock(x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const scale = makeQxQuants(x, xo + 16 * ib, 16 * ib);
    scales[ib] = scale;
    const a = Math.abs(scale);
    if (a > maxAbsScale) {
      maxAbsScale = a;
      maxScale = scale;
    }
  }
  if (maxAbsScale < GROUP_MAX_EPS) {
    y.fill(0, o, o + BLOCK_BYTES);
    return;
  }
  const iscale = fr(-128 / maxScale);
  const hd = f32ToF16(fr(1 / iscale));
  y[o + 208] = hd & 0xff;
  y[o + 209] = hd >>> 8;
  const dAll = F16_TO_F32[hd];
  const so = o + 192;
  for (let ib = 0; ib < 16; ib++) {
    let s = (fr(iscale * scales[ib]) + RND - RND);
    if (s > 127) s = 127;
    y[so + ib] = s & 0xff;
    const d = fr(dAll * ((s << 24) >> 24));
    if (d === 0) continue;
    const b = xo + 16 * ib;
    for (let ii = 0; ii < 16; ii++) {
      let l = nearestIntC(fr(x[b + ii] / d)); // d may be tiny: out-of-range like C
      l = l < -32 ? -32 : l > 31 ? 31 : l;
      L[16 * ib + ii] = l + 32;
    }
  }
  for (let j = 0; j < QK_K; j += 128) {
    const ql = o + (j >> 1);
    const qh = o + 128 + (j >> 2);
    for (let l = 0; l < 32; l++) {
      const a = L[j + l];
      const b = L[j + l + 32];
      const c = L[j + l + 64];
      const e = L[j + l + 96];
      y[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      y[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      y[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
}

/** Decode one super-block at byte offset o of src into out[at..at+256). */
function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const d = F16_TO_F32[src[o + 208] | (src[o + 209] << 8)];
  for (let half = 0; half < 2; half++) {
    const ql = o + 64 * half;
    const qh = o + 128 + 32 * half;
    const sc = o + 192 + 8 * half;
    const y = at + 128 * half;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = src[qh + l];
      const lo0 = src[ql + l];
      const lo1 = src[ql + l + 32];
      const q1 = ((lo0 & 0xf) | ((h & 3) << 4)) - 32;
      const q2 = ((lo1 & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((lo0 >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((lo1 >> 4) | (((h >> 6) & 3) << 4)) - 32;
      out[y + l] = fr(d * ((src[sc + is] << 24) >> 24)) * q1;
      out[y + l + 32] = fr(d * ((src[sc + is + 2] << 24) >> 24)) * q2;
      out[y + l + 64] = fr(d * ((src[sc + is + 4] << 24) >> 24)) * q3;
      out[y + l + 96] = fr(d * ((src[sc + is + 6] << 24) >> 24)) * q4;
    }
  }
}

export const Q6_K: QuantFormat = blockFormat({
  type: 14,
  name: "Q6_K",
  blockSize: QK_K,
  bytesPerBlock: BLOCK_BYTES,
  dequantBlock,
  quantizeBlock,
});
