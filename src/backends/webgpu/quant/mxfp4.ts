// MXFP4 on the WebGPU backend (gpt-oss's experts). ggml's 17-byte block (an E8M0 scale byte, 16 bytes of 4-bit
// E2M1 codes: low nibbles values 0..15, high 16..31) is only byte-aligned, so a bound weight is repacked in place
// into the 16-byte bodies of all its blocks (4 words each), then the blocks' scale bytes (4 a word): 17 bytes a
// block still, so the repack fits in place.
// value = KV[q] · 2^(e − 128): KV holds the E2M1 values doubled, as src/quant/mxfp4.ts and ggml.
import type { GpuQuant } from "./types.js";

const KV = /* wgsl */ `
var<private> KV: array<f32, 16> = array<f32, 16>(0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0);
// Block blk's scale 2^(e − 128) from the scale bytes after the bodies at word sb.
fn mx_scale(sb: u32, blk: u32) -> f32 {
  let e = (w[sb + (blk >> 2u)] >> (8u * (blk & 3u))) & 0xffu;
  return ldexp(1.0, i32(e) - 128);
}
fn mx4(q: u32) -> vec4f { return vec4f(KV[q & 0xfu], KV[(q >> 8u) & 0xfu], KV[(q >> 16u) & 0xfu], KV[(q >> 24u) & 0xfu]); }`;

export const MXFP4_GPU: GpuQuant = {
  type: 39,
  repack: { rawBytes: 17, bodyAt: 1, bodyBytes: 16, scaleAt: 0, blockValues: 32, scaleBytes: 1 },
  chunkValues: 128,
  // Chunk = 4 blocks (16 body words): thread t reads words 2(t & 1) and 2(t & 1) + 1 of block 4c + t / 2: values
  // 4w.. (low nibbles) and 16 + 4w.. (high nibbles) of each word w.
  piece: /* wgsl */ `${KV}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let nbr = k / 32u;
  let ok = 4u * c + (t >> 1u) < nbr; // else the row's first block again, giving 0 (loads with no branch)
  let j = select(0u, 4u * c + (t >> 1u), ok);
  let blk = row * nbr + j;
  let wi = 2u * (t & 1u);
  let q0 = w[wb + blk * 4u + wi];
  let q1 = w[wb + blk * 4u + wi + 1u];
  let x0 = xb + 8u * j + wi;
  let s = dot(mx4(q0), x4[x0]) + dot(mx4(q1), x4[x0 + 1u]) + dot(mx4(q0 >> 4u), x4[x0 + 4u]) + dot(mx4(q1 >> 4u), x4[x0 + 5u]);
  return select(0.0, mx_scale(wb + n * nbr * 4u, blk) * s, ok);
}`,
  wgsl: /* wgsl */ `${KV}
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let nb = p.n * (p.k / 32u);
  let blk = row * (p.k / 32u) + u;
  let d = mx_scale(p.w_off + nb * 4u, blk);
  let b = p.w_off + blk * 4u;
  for (var i = 0u; i < 4u; i++) {
    let q = w[b + i];
    for (var l = 0u; l < 4u; l++) {
      o[4u * i + l] = KV[(q >> (8u * l)) & 0xfu] * d;
      o[16u + 4u * i + l] = KV[(q >> (8u * l + 4u)) & 0xfu] * d;
    }
  }
  return o;
}`,
};
