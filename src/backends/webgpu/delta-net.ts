// The gated DeltaNet's ops on the WebGPU backend (Qwen3-Next, Qwen3.5: linear-attention layers), each the scalar
// reference's arithmetic (cpu/scalar.ts) in f32: the causal conv1d + SiLU with its rolling state, the gates, and the
// delta rule itself. Its L2 and gated RMS norms are kernels.ts normWgsl's kinds "l2" and "gated".
import { GID, HEAD, MAIN } from "./kernels.js";

/** out[t, c] = silu(Σ_j w[c, j] · win[t + j]) per channel c (one thread), win = state's taps − 1 inputs then x's; state rolls on. */
export const CONV_SILU_WGSL = /* wgsl */ `
struct P { t: u32, c: u32, taps: u32, w_off: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> st: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
${HEAD}
${MAIN}
  let c = ${GID};
  if (c >= p.c) { return; }
  let keep = p.taps - 1u;
  for (var t = 0u; t < p.t; t++) {
    var s = 0.0;
    for (var j = 0u; j < p.taps; j++) {
      let i = t + j;
      let v = select(x[(i - min(i, keep)) * p.c + c], st[c * keep + min(i, keep - 1u)], i < keep);
      s += bitcast<f32>(w[p.w_off + c * p.taps + j]) * v;
    }
    o[t * p.c + c] = s / (1.0 + exp(-s));
  }
  // The last keep inputs: state entries still in the window move down (ascending: each read is ahead of the writes).
  for (var j = 0u; j < keep; j++) {
    let i = p.t + j;
    st[c * keep + j] = select(x[(i - min(i, keep)) * p.c + c], st[c * keep + min(i, keep - 1u)], i < keep);
  }
}`;

/** In place per (row, head): alpha -> g = softplus(alpha + dt[h]) · a[h] (softplus linear past 20, as ggml), betaRaw -> sigmoid. */
export const DELTA_GATES_WGSL = /* wgsl */ `
struct P { nh: u32, rows: u32, dt_off: u32, a_off: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dt: array<u32>;
@group(0) @binding(2) var<storage, read> av: array<u32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> beta: array<f32>;
${HEAD}
${MAIN}
  let i = ${GID};
  if (i >= p.rows * p.nh) { return; }
  let h = i % p.nh;
  let z = g[i] + bitcast<f32>(dt[p.dt_off + h]);
  let sp = select(log(1.0 + exp(z)), z, z > 20.0);
  g[i] = sp * bitcast<f32>(av[p.a_off + h]);
  beta[i] = 1.0 / (1.0 + exp(-beta[i]));
}`;

/**
 * The gated delta rule, one thread per (value head j, value row i) owning row i of M_j (in the state buffer) over all
 * tokens in order: mk = M k; delta = (v − exp(g)·mk)·β; M ← exp(g)·M + delta kᵀ; out = (M q) / sqrt(S).
 */
export const DELTA_NET_WGSL = /* wgsl */ `
struct P { t: u32, nk: u32, nv: u32, s: u32, interleave: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
@group(0) @binding(6) var<storage, read_write> m: array<f32>;
@group(0) @binding(7) var<storage, read_write> o: array<f32>;
${HEAD}
${MAIN}
  let id = ${GID};
  if (id >= p.nv * p.s) { return; }
  let j = id / p.s;
  let i = id % p.s;
  let rep = p.nv / p.nk;
  let hk = select(j % p.nk, j / rep, p.interleave != 0u);
  let r = (j * p.s + i) * p.s;
  let scale = 1.0 / sqrt(f32(p.s));
  for (var t = 0u; t < p.t; t++) {
    let qb = (t * p.nk + hk) * p.s;
    let vb = (t * p.nv + j) * p.s;
    let decay = exp(g[t * p.nv + j]);
    let b = beta[t * p.nv + j];
    var mk = 0.0;
    for (var c = 0u; c < p.s; c++) { mk += m[r + c] * k[qb + c]; }
    let delta = (v[vb + i] - decay * mk) * b;
    var mq = 0.0;
    for (var c = 0u; c < p.s; c++) {
      let nm = m[r + c] * decay + delta * k[qb + c];
      m[r + c] = nm;
      mq += nm * q[qb + c];
    }
    o[vb + i] = mq * scale;
  }
}`;
