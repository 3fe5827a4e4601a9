// Seeded PRNG for sampling: xoshiro128** (Blackman & Vigna), 128 bits of state as four uint32 words,
// seeded from a 53-bit integer through splitmix64 so nearby seeds give unrelated streams.
// The state is plain numbers, so a session can save it (getState) and resume the exact stream (setState).
import { UsageError } from "../util/errors.js";

const MASK64 = (1n << 64n) - 1n;

/** splitmix64 expansion of `seed` into four uint32 words (never all zero). */
function seedWords(seed: number): number[] {
  let s = BigInt(seed) & MASK64;
  const out: number[] = [];
  for (let i = 0; i < 2; i++) {
    s = (s + 0x9e3779b97f4a7c15n) & MASK64;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    z = z ^ (z >> 31n);
    out.push(Number(z & 0xffffffffn), Number(z >> 32n));
  }
  if ((out[0] | out[1] | out[2] | out[3]) === 0) out[0] = 1; // xoshiro's one forbidden state
  return out;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** `seed`: a non-negative safe integer. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new UsageError("SAMPLER_BAD_OPTION", `seed must be a non-negative safe integer, got ${String(seed)}`);
    }
    this.setState(seedWords(seed));
  }

  /** Next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const s0 = this.s0, s1 = this.s1;
    let s2 = this.s2, s3 = this.s3;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    this.s1 = s1 ^ s2;
    this.s0 = s0 ^ s3;
    this.s2 = s2 ^ t;
    this.s3 = rotl(s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits (two 32-bit draws). */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992; // (hi * 2^26 + lo) / 2^53
  }

  /** The four uint32 state words; pass them to setState (on this or another Rng) to continue the same stream. */
  getState(): number[] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  setState(state: readonly number[]): void {
    if (!Array.isArray(state) || state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
      throw new UsageError("SAMPLER_BAD_STATE", `rng state must be an array of 4 uint32 integers, got ${JSON.stringify(state)}`);
    }
    if (state.every((w) => w === 0)) {
      throw new UsageError("SAMPLER_BAD_STATE", "rng state must not be all zero");
    }
    this.s0 = state[0] | 0;
    this.s1 = state[1] | 0;
    this.s2 = state[2] | 0;
    this.s3 = state[3] | 0;
  }
}

/** A fresh random seed (for when the caller gives none): 53 bits from the OS's CSPRNG. */
export function randomSeed(): number {
  const w = new Uint32Array(2);
  globalThis.crypto.getRandomValues(w);
  return (w[0] >>> 11) * 4294967296 + w[1];
}
