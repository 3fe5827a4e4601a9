// Small numeric helpers shared by tests: a seeded PRNG and comparisons against a reference.
import assert from "node:assert/strict";

/** mulberry32: small, fast, seeded; values in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Normalised mean squared error of a against ref: sum (a - ref)^2 / sum ref^2 (the plain sum when ref is all zeros). */
export function nmse(a: Float32Array, ref: Float32Array): number {
  assert.equal(a.length, ref.length);
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return den === 0 ? num : num / den;
}

export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
