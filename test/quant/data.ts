// Deterministic test data for the quant tests: integer PRNG and only + - * / (no Math.log/cos, whose last bits may
// differ between engines), so the same f32 inputs are produced everywhere and golden bytes stay valid.

/** xorshift32 stream of uniforms in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** Approximately standard normal: Irwin-Hall sum of 12 uniforms minus 6 (mean 0, variance 1). */
export function gaussian(u: () => number): number {
  let s = 0;
  for (let i = 0; i < 12; i++) s += u();
  return s - 6;
}

/** n gaussian values times `scale`. */
export function gaussianRow(n: number, seed: number, scale = 1): Float32Array {
  const u = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = gaussian(u) * scale;
  return x;
}

/** Named 256-value edge-case blocks (256 = one K-quant super-block = 8 Q8_0 blocks). */
export function specialBlocks(): Array<[string, Float32Array]> {
  const u = rng(7);
  const mk = (f: (i: number) => number): Float32Array => {
    const x = new Float32Array(256);
    for (let i = 0; i < 256; i++) x[i] = f(i);
    return x;
  };
  return [
    ["zeros", mk(() => 0)],
    ["constant", mk(() => 0.5)],
    ["negative-only", mk(() => -Math.abs(gaussian(u)) * 0.1 - 0.01)],
    ["outlier", mk((i) => (i === 37 ? 10 : gaussian(u) * 0.01))],
    ["ramp", mk((i) => i / 256)],
    ["tiny", mk(() => gaussian(u) * 1e-8)],
    ["half-zero", mk((i) => (i % 64 < 32 ? 0 : gaussian(u) * 0.03))],
    ["huge", mk(() => gaussian(u) * 1e7)],
  ];
}

/** 256 super-blocks of varied shape (gaussian, heavy-tailed, sparse, offset), each with its own scale 2^-8..2^2. */
export function mixedScaleRow(): Float32Array {
  const u = rng(12345);
  const x = new Float32Array(256 * 256);
  for (let b = 0; b < 256; b++) {
    const scale = 2 ** (-8 + (b % 11));
    const shape = b % 4;
    for (let i = 0; i < 256; i++) {
      const g = gaussian(u);
      const v = shape === 0 ? g : shape === 1 ? g * g * g : shape === 2 ? (u() < 0.2 ? g : 0) : g + 1.5;
      x[b * 256 + i] = v * scale;
    }
  }
  return x;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}
