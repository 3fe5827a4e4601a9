// ggml's nearest_int(f), shared by the K-quant quantisers. It adds 1.5*2^23 in f32 and reads the mantissa:
// round half to even, for |f| < 2^22.

/** Adding 1.5*2^52 in f64 to the (already f32) argument rounds the same way with one f32 rounding less: (f + RND) - RND. */
export const RND = 6755399441055744;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** nearest_int exactly as compiled C computes it, also outside its asserted range |f| <= 4194303 (f is f32). */
export function nearestIntC(f: number): number {
  f32[0] = f + 12582912;
  return (u32[0] & 0x7fffff) - 0x400000;
}
