// Seeded, order-independent random streams: each tensor gets its own stream from (seed, name), so
// tensors can be produced lazily in any order and a model is the same bytes on every machine.

/** 32-bit FNV-1a of a string, mixed with the seed. */
function hash(seed: number, s: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * xoshiro128** seeded through splitmix32. The state is kept as int32 (`| 0`), not uint32 (`>>> 0`): the bits are the
 * same, but int32 values stay small integers in V8 where uint32 values above 2^31 become heap numbers (gen spent
 * most of its time allocating and collecting them).
 */
export class Stream {
  private a: number; private b: number; private c: number; private d: number;

  constructor(seed: number, name: string) {
    let x = hash(seed >>> 0, name);
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) | 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next() | 1;
  }

  nextU32(): number {
    const b5 = Math.imul(this.b, 5);
    const r = Math.imul((b5 << 7) | (b5 >>> 25), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d;
    this.c ^= t;
    this.d = (this.d << 11) | (this.d >>> 21);
    return r;
  }

  /** Fill with the next out.length 32-bit outputs (the same values nextU32 would return, as int32 bits). */
  fillU32(out: Uint32Array | Int32Array): void {
    let a = this.a, b = this.b, c = this.c, d = this.d;
    for (let i = 0; i < out.length; i++) {
      const b5 = Math.imul(b, 5);
      out[i] = Math.imul((b5 << 7) | (b5 >>> 25), 9);
      const t = b << 9;
      c ^= a; d ^= b; b ^= c; a ^= d;
      c ^= t;
      d = (d << 11) | (d >>> 21);
    }
    this.a = a; this.b = b; this.c = c; this.d = d;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Fill with uniform noise of standard deviation `std` (mean 0): cheap and enough for random weights. */
  fillUniform(out: Float32Array, std: number, offset = 0): void {
    const a = std * Math.sqrt(3) * 2;
    for (let i = 0; i < out.length; i++) out[i] = offset + (this.nextU32() / 4294967296 - 0.5) * a;
  }

  /** Standard normal (Box-Muller); for the few places that want Gaussian tails. */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A random permutation of [0, n). */
  permutation(n: number): Int32Array {
    const p = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.nextU32() % (i + 1);
      const t = p[i]; p[i] = p[j]; p[j] = t;
    }
    return p;
  }
}
