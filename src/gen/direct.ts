// Random weights sampled straight in a quantised format: uniform quants under fixed-pattern scales, chosen so
// the decoded values have mean 0 and the asked-for standard deviation. Exact ggml quantisation of 29 billion
// values (the a3b preset) takes hours in JS; this writes the same kind of random matrix at memory speed.
// Only for expert tensors of bench-scale models (option expertSynthesis: "direct"): the quantisers themselves
// are exercised by the default "quantize" path and the quant tests.
import { f32ToF16 } from "../util/f16.js";
import { MXFP4, Q2_K, Q4_K, Q6_K, Q8_0 } from "../quant/index.js";
import type { Stream } from "./random.js";
import { directFillIq, hasDirectIq, randomBytes } from "./direct-iq.js";

function putF16(out: Uint8Array, at: number, v: number): void {
  const h = f32ToF16(v);
  out[at] = h & 255;
  out[at + 1] = h >> 8;
}

/** Types with a direct sampler; others must be quantised. */
export function hasDirect(type: number): boolean {
  return type === Q8_0.type || type === Q2_K.type || type === Q4_K.type || type === Q6_K.type || type === MXFP4.type || hasDirectIq(type);
}

/** Encoded random matrix of `nValues` values (whole blocks) with decoded std `std`. */
export function directFill(type: number, nValues: number, std: number, s: Stream): Uint8Array {
  switch (type) {
    case Q8_0.type: {
      // value = d * q, q uniform in [-128, 127]: std(q) = 73.9.
      const nb = nValues / 32, out = new Uint8Array(nb * 34);
      randomBytes(s, out);
      const d = std / 73.9;
      for (let b = 0; b < nb; b++) putF16(out, b * 34, d);
      return out;
    }
    case Q4_K.type: {
      // value = d*sc*q - dmin*m with q uniform 0..15 (std 4.61); m = sc and dmin = 7.5 d make the mean 0.
      const nb = nValues / 256, out = new Uint8Array(nb * 144);
      randomBytes(s, out);
      for (let b = 0; b < nb; b++) {
        const o = b * 144;
        const sc = 24 + (out[o + 4] & 15); // one scale per block, 24..39, reusing a random byte
        const d = std / (sc * 4.61);
        putF16(out, o, d);
        putF16(out, o + 2, 7.5 * d);
        // 8 (scale, min) pairs all equal to sc (< 64): the low 6 bits of bytes 0..7, nibbles of bytes 8..11.
        for (let j = 0; j < 4; j++) {
          out[o + 4 + j] = (sc & 63) | ((sc >> 4) << 6);
          out[o + 8 + j] = (sc & 63) | ((sc >> 4) << 6);
          out[o + 12 + j] = (sc & 15) | ((sc & 15) << 4);
        }
      }
      return out;
    }
    case Q2_K.type: {
      // value = d*sc*q - dmin*m with q uniform 0..3 (std 1.118, mean 1.5); m = sc and dmin = 1.5 d make the mean 0.
      // Block: 16 scale bytes (scale low nibble, min high), 64 bytes of 2-bit quants, d, dmin.
      const nb = nValues / 256, out = new Uint8Array(nb * 84);
      randomBytes(s, out);
      for (let b = 0; b < nb; b++) {
        const o = b * 84;
        const sc = 8 + (out[o] & 7); // one scale per block, 8..15, reusing a random byte
        out.fill(sc | (sc << 4), o, o + 16);
        const d = std / (sc * 1.118);
        putF16(out, o + 80, d);
        putF16(out, o + 82, 1.5 * d);
      }
      return out;
    }
    case Q6_K.type: {
      // value = d * sc * (q - 32), q uniform 0..63 (std 18.47, mean -0.5), sc an int8 scale per 16 values
      // with a random sign, so the -0.5 bias cancels across groups.
      const nb = nValues / 256, out = new Uint8Array(nb * 210);
      randomBytes(s, out);
      for (let b = 0; b < nb; b++) {
        const o = b * 210;
        const sc = 16 + (out[o + 192] & 15);
        for (let j = 0; j < 16; j++) out[o + 192 + j] = out[o + 192 + j] & 128 ? 256 - sc : sc;
        putF16(out, o + 208, std / (sc * 18.47));
      }
      return out;
    }
    case MXFP4.type: {
      // value = k * 2^(e - 128), k uniform over the 16 E2M1 codes (doubled: 0, +-1 .. +-12; mean 0, E[k^2] = 34.25).
      // Scales are powers of two: a fraction p of blocks gets 2^(e0-128), the rest twice that, p chosen so the
      // mean variance is std^2 (per-block pattern: the golden-ratio sequence, spread evenly).
      const nb = nValues / 32, out = new Uint8Array(nb * 17);
      randomBytes(s, out);
      const e0 = Math.floor(Math.log2(std / Math.sqrt(34.25))) + 128;
      const r = std ** 2 / (34.25 * 4 ** (e0 - 128)); // in [1, 4)
      const p = (4 - r) / 3;
      for (let b = 0; b < nb; b++) out[b * 17] = (b * 0.6180339887498949) % 1 < p ? e0 : e0 + 1;
      return out;
    }
    default:
      if (hasDirectIq(type)) return directFillIq(type, nValues, std, s);
      throw new Error(`no direct sampler for ggml type ${type}`);
  }
}
