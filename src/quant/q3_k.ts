// Q3_K (ggml type 11): super-blocks of 256 values, 110 bytes:
//   hmask[32] (the 3rd bits), qs[64] (low 2 bits), 12 bytes of packed 6-bit signed scales (one per 16 values,
//   stored + 32), f16 d. value = d*(sc - 32)*(q - 4), q in 0..7 (a clear hmask bit subtracts 4).
//   Values 128h + 32s + l sit in bits 2s..2s+1 of qs[32h + l]; their high bit is bit 4h + s of hmask[l].
// quantizeRow reproduces ggml's quantize_row_q3_K_ref (make_q3_quants with nmax 4 and its rmse refinement) bit for
// bit; test/quant/ggml-exact.test.ts holds it to ggml's own library.
import type { QuantFormat } from "./types.js";
import { blockFormat } from "./block-format.js";
import { groupMax } from "./k-common.js";
import { nearestIntC } from "./nearest-int.js";
import { F16_TO_F32, f32ToF16 } from "../util/f16.js";

const QK_K = 256;
const BLOCK_BYTES = 110;
const fr = Math.fround;

const L = new Int8Array(QK_K);
const scales = new Float32Array(16);
const SCALES = new Int8Array(16); // unpacked scales - 32

/** ggml's make_q3_quants(16, 4, x+xo, L+lo, true): returns the scale, leaves L[lo..lo+16) = l + 4 (or 0s). */
function makeQ3Quants(x: Float32Array, xo: number, lo: number): number {
  const n = 16;
  const nmax = 4;
  const max = groupMax(x, xo, n);
  if (max === 0) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nearestIntC(fr(iscale * xi));
    l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
    L[lo + i] = l;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let nChanged = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const w = fr(xi * xi);
      const li = L[lo + i];
      let slx = fr(sumlx - fr(fr(w * xi) * li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * li) * li));
        let newL = nearestIntC(fr(fr(xi * sl2) / slx));
        newL = newL < -nmax ? -nmax : newL > nmax - 1 ? nmax - 1 : newL;
        if (newL !== li) {
          slx = fr(slx + fr(fr(w * xi) * newL));
          sl2 = fr(sl2 + fr(fr(w * newL) * newL));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[lo + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            nChanged++;
          }
        }
      }
    }
    if (nChanged === 0) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] += nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/** The 16 scales of the 12 bytes at q[o..o+12), minus 32, into SCALES. */
function unpackScales(q: Uint8Array, o: number): void {
  for (let j = 0; j < 16; j++) {
    const low = j < 8 ? q[o + j] & 0xf : q[o + j - 8] >> 4;
    SCALES[j] = (low | (((q[o + 8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
  }
}

function quantizeBlock(x: Float32Array, xo: number, y: Uint8Array, o: number): void {
  let maxScale = 0;
  let amax = 0;
  for (let j = 0; j < 16; j++) {
    const s = makeQ3Quants(x, xo + 16 * j, 16 * j);
    scales[j] = s;
    const a = Math.abs(s);
    if (a > amax) {
      amax = a;
      maxScale = s;
    }
  }
  const so = o + 96;
  for (let j = 0; j < 12; j++) y[so + j] = 0;
  let hd = 0;
  if (maxScale !== 0) {
    const iscale = fr(-32 / maxScale);
    for (let j = 0; j < 16; j++) {
      let l = (nearestIntC(fr(iscale * scales[j])) << 24) >> 24; // int8_t l = nearest_int(...)
      l = (l < -32 ? -32 : l > 31 ? 31 : l) + 32;
      if (j < 8) y[so + j] = l & 0xf;
      else y[so + j - 8] |= (l & 0xf) << 4;
      y[so + 8 + (j & 3)] |= (l >> 4) << (2 * (j >> 2));
    }
    hd = f32ToF16(fr(1 / iscale));
  }
  y[o + 108] = hd & 0xff;
  y[o + 109] = hd >>> 8;
  const dAll = F16_TO_F32[hd];
  unpackScales(y, so);
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * SCALES[j]);
    if (d === 0) continue;
    const b = xo + 16 * j;
    for (let ii = 0; ii < 16; ii++) {
      let l = nearestIntC(fr(x[b + ii] / d)); // d may be tiny: out-of-range like C
      l = l < -4 ? -4 : l > 3 ? 3 : l;
      L[16 * j + ii] = l + 4;
    }
  }
  for (let j = 0; j < 32; j++) y[o + j] = 0;
  for (let j = 0; j < QK_K; j++) {
    if (L[j] > 3) {
      y[o + (j & 31)] |= 1 << (j >> 5);
      L[j] -= 4;
    }
  }
  for (let j = 0; j < QK_K; j += 128) {
    const q = o + 32 + (j >> 2);
    for (let l = 0; l < 32; l++) y[q + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
  }
}

/** Decode one super-block at byte offset o of src into out[at..at+256). */
function dequantBlock(src: Uint8Array, o: number, out: Float32Array, at: number): void {
  const dAll = F16_TO_F32[src[o + 108] | (src[o + 109] << 8)];
  unpackScales(src, o + 96);
  let y = at;
  let is = 0;
  let m = 1;
  for (let h = 0; h < 2; h++) {
    const q = o + 32 + 32 * h;
    for (let shift = 0; shift < 8; shift += 2, m <<= 1) {
      for (let half = 0; half < 32; half += 16) {
        const dl = fr(dAll * SCALES[is++]);
        for (let l = 0; l < 16; l++) {
          const hi = src[o + half + l] & m ? 0 : 4;
          out[y++] = dl * (((src[q + half + l] >> shift) & 3) - hi);
        }
      }
    }
  }
}

export const Q3_K: QuantFormat = blockFormat({
  type: 11,
  name: "Q3_K",
  blockSize: QK_K,
  bytesPerBlock: BLOCK_BYTES,
  dequantBlock,
  quantizeBlock,
});
