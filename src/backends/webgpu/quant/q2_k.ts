// Q2_K on the WebGPU backend: ggml's 84-byte block (16 bytes of scales, each a 4-bit scale (low nibble) and a 4-bit
// min (high nibble) for 16 values; 64 bytes of 2-bit quants; f16 d; f16 dmin) is whole words (21), so it is read as
// stored: words 0-3 scales, 4-19 qs, 20 d and dmin. value = d·(sc & 15)·q − dmin·(sc >> 4); values 128h + 32s + l
// (l < 32) sit in bits 2s, 2s + 1 of qs byte 32h + l. Unit u of a row is block u / 8, j = u % 8: h = j / 4, s = j % 4
// (its 32 values take scale bytes 2j and 2j + 1).
import { BYTES4, type GpuQuant } from "./types.js";

export const Q2_K_GPU: GpuQuant = {
  type: 10,
  chunkValues: 256,
  // Chunk = block (21 words): thread t reads qs words t and 8 + t (32 bytes across the 8 threads each), bytes 4t.. of
  // half h: for each shift s, values 128h + 32s + 4t.. with scale byte 8h + 2s + t / 4. The 4 scale words and d/dmin
  // are the same for the 8 threads. Σ (d·sc·q − dmin·m)·x is taken as d·sc·(q·x) − dmin·m·Σx per 4 values.
  piece: /* wgsl */ `
${BYTES4}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let b = wb + (row * (k / 256u) + c) * 21u;
  let dm = unpack2x16float(w[b + 20u]);
  // scale byte 8h + 2s + t/4 is byte 2(s & 1) + t/4 of word 2h + s/2: shift by 8·(t/4) once, then 16·(s & 1)
  let st = 8u * (t / 4u);
  var acc = 0.0;
  for (var h = 0u; h < 2u; h++) {
    let q = w[b + 4u + 8u * h + t];
    let sa = w[b + 2u * h] >> st;
    let sb = w[b + 2u * h + 1u] >> st;
    let x0 = xb + c * 64u + 32u * h + t;
    for (var s = 0u; s < 4u; s++) {
      let sc = ((select(sa, sb, s >= 2u)) >> (16u * (s & 1u))) & 0xffu;
      let xv = x4[x0 + 8u * s];
      acc += dm.x * f32(sc & 0xfu) * dot(bytes4((q >> (2u * s)) & 0x03030303u), xv) - dm.y * f32(sc >> 4u) * dot(xv, vec4f(1.0));
    }
  }
  return acc;
}`,
  wgsl: /* wgsl */ `
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let b = p.w_off + (row * (p.k / 256u) + u / 8u) * 21u;
  let j = u % 8u;
  let dm = unpack2x16float(w[b + 20u]);
  // scale bytes 2j (values 0-15 of the unit) and 2j + 1 (16-31): half-word j % 2 of word j / 2
  let sw = (w[b + j / 2u] >> (16u * (j & 1u))) & 0xffffu;
  let q = b + 4u + 8u * (j / 4u);
  let sh = 2u * (j % 4u);
  for (var half = 0u; half < 2u; half++) {
    let sc = (sw >> (8u * half)) & 0xffu;
    let dl = dm.x * f32(sc & 0xfu);
    let ml = dm.y * f32(sc >> 4u);
    for (var i = 0u; i < 4u; i++) {
      let x = w[q + 4u * half + i] >> sh;
      for (var l = 0u; l < 4u; l++) { o[16u * half + 4u * i + l] = dl * f32((x >> (8u * l)) & 3u) - ml; }
    }
  }
  return o;
}`,
};
