// Q6_K on the WebGPU backend. ggml's 210-byte block (128 bytes low nibbles, 64 bytes high bits, 16 int8 scales,
// f16 d) is only 2-byte aligned: a bound weight is repacked in place into the 208-byte bodies (52 words each)
// followed by the f16 d of every block. Unit u of a row: block u / 8; j = u % 8 picks half j / 4 (128 values)
// and quarter j % 4 of it (ggml's y[l], y[l + 32], y[l + 64], y[l + 96]).
import { F16_AT, WORD_BYTE, type GpuQuant } from "./types.js";

export const Q6_K_GPU: GpuQuant = {
  type: 14,
  repack: { rawBytes: 210, bodyAt: 0, bodyBytes: 208, scaleAt: 208, blockValues: 256 },
  chunkValues: 256,
  // Chunk = block: for each half h, thread t reads ql words 16h + t and 16h + 8 + t and qh word 32 + 8h + t, i.e.
  // ggml's l = 4t.. of that half: values 128h + l + {0, 32, 64, 96}, with scales 8h + t/4 + {0, 2, 4, 6}.
  piece: /* wgsl */ `
fn q6k_sc(b: u32, i: u32) -> f32 { return f32(bitcast<i32>(((w[b + 48u + (i >> 2u)] >> (8u * (i & 3u))) & 0xffu) << 24u) >> 24u); }
fn six4(lo: u32, hi: u32, ls: u32, hs: u32) -> vec4f {
  let v = ((lo >> ls) & 0x0f0f0f0fu) | (((hi >> hs) & 0x03030303u) << 4u);
  return vec4f(f32(v & 63u), f32((v >> 8u) & 63u), f32((v >> 16u) & 63u), f32(v >> 24u)) - 32.0;
}
fn piece(wb: u32, n: u32, k: u32, row: u32, c: u32, t: u32, xb: u32) -> f32 {
  let nbr = k / 256u;
  let blk = row * nbr + c;
  let b = wb + blk * 52u;
  let d = f16_at(wb + n * nbr * 52u, blk);
  var s = 0.0;
  for (var h = 0u; h < 2u; h++) {
    let la = w[b + 16u * h + t];
    let lb = w[b + 16u * h + 8u + t];
    let qh = w[b + 32u + 8u * h + t];
    let is = 8u * h + t / 4u;
    let x0 = xb + c * 64u + 32u * h + t;
    s += d * (q6k_sc(b, is) * dot(six4(la, qh, 0u, 0u), x4[x0]) + q6k_sc(b, is + 2u) * dot(six4(lb, qh, 0u, 2u), x4[x0 + 8u])
      + q6k_sc(b, is + 4u) * dot(six4(la, qh, 4u, 4u), x4[x0 + 16u]) + q6k_sc(b, is + 6u) * dot(six4(lb, qh, 4u, 6u), x4[x0 + 24u]));
  }
  return s;
}`,
  wgsl: F16_AT + /* wgsl */ `
${WORD_BYTE}
fn dq32(row: u32, u: u32) -> array<f32, 32> {
  var o: array<f32, 32>;
  let nb = p.n * (p.k / 256u);
  let blk = row * (p.k / 256u) + u / 8u;
  let d = f16_at(p.w_off + nb * 52u, blk);
  let b = p.w_off + blk * 52u;
  let j = u % 8u;
  let h = j / 4u;
  let qq = j % 4u;
  let ql0 = 64u * h + 32u * (qq & 1u);
  let lsh = 4u * (qq / 2u);
  for (var l = 0u; l < 32u; l++) {
    let lo = (word_byte(b, ql0 + l) >> lsh) & 0xfu;
    let hi = (word_byte(b, 128u + 32u * h + l) >> (2u * qq)) & 3u;
    let sc = f32(bitcast<i32>(word_byte(b, 192u + 8u * h + l / 16u + 2u * qq) << 24u) >> 24u);
    o[l] = d * sc * f32(i32(lo | (hi << 4u)) - 32);
  }
  return o;
}`,
};
