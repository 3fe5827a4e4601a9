// Attention on the WebGPU backend, one workgroup per (query row, head): scores, their softmax and the weighted sum
// of V, causal, grouped-query, with gpt-oss's sinks and sliding windows, f16-rounded probabilities, and MLA's V as a
// prefix of each K row. Two kernels share the bindings, the row's preamble and the softmax: scalar loads, and vec4
// loads for head dims that are whole vec4s.
import { HEAD, MAIN, ROUND_F16, SUM64 } from "./kernels.js";

/** Attention's parameters and bindings, q, k, v and out as arrays of `elem` (f32, or vec4f for whole vec4 heads). */
const attentionBindings = (elem: string) => /* wgsl */ `struct P { t0: u32, t: u32, start: u32, nh: u32, nkv: u32, hd: u32, scale: f32, lmax: u32, win: u32, sink: u32, sink_off: u32, f16p: u32, vd: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<${elem}>;
@group(0) @binding(2) var<storage, read> kc: array<${elem}>;
@group(0) @binding(3) var<storage, read> vc: array<${elem}>;
@group(0) @binding(4) var<storage, read_write> o: array<${elem}>;
@group(0) @binding(5) var<storage, read_write> sc: array<f32>;
@group(0) @binding(6) var<storage, read> sk: array<u32>;
${HEAD}
${ROUND_F16}
var<workgroup> red: array<f32, 64>;`;
/**
 * The workgroup's (query row, head): token t, head h, its KV head, the keys [j0, nk) it sees (causal; a sliding
 * window of p.win keys when p.win > 0), and its sink logit sink_l (gpt-oss; when p.sink, else none: -3e38).
 */
const ATTENTION_ROW = /* wgsl */ `let idx = wid(wg, nw);
  if (idx >= p.t * p.nh) { return; }
  let t = p.t0 + idx / p.nh;
  let h = idx % p.nh;
  let kvh = h / (p.nh / p.nkv);
  let nk = p.start + t + 1u;
  let j0 = select(0u, nk - min(nk, p.win), p.win > 0u);
  let sink_l = select(-3.0e38, bitcast<f32>(sk[p.sink_off + h]), p.sink != 0u);`;
/**
 * Attention's softmax over a row's scores sc[sbase + j], j0 <= j < nk, each thread holding the max of its own (mx):
 * the scores become exp(s - max) in place and `tot` their sum (a 64-thread tree in `red` for each); a sink joins the
 * max and the sum (thread 0 starts from its share) and weights no value. With p.f16p the scores become the
 * probabilities rounded to f16 and tot 1.
 */
const SOFTMAX_SCORES = /* wgsl */ `red[li] = mx;
  workgroupBarrier();
  for (var st = 32u; st > 0u; st >>= 1u) {
    if (li < st) { red[li] = max(red[li], red[li + st]); }
    workgroupBarrier();
  }
  let m = max(red[0], sink_l);
  workgroupBarrier();
  var sum = select(0.0, exp(sink_l - m), li == 0u && p.sink != 0u);
  for (var j = j0 + li; j < nk; j += 64u) {
    let e = exp(sc[sbase + j] - m);
    sc[sbase + j] = e;
    sum += e;
  }
  red[li] = sum;
  storageBarrier();
  workgroupBarrier();
  for (var st = 32u; st > 0u; st >>= 1u) {
    if (li < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }
  var tot = red[0];
  if (p.f16p != 0u) {
    // llama.cpp's V product over an f16 cache: the probabilities rounded to f16, then no division.
    for (var j = j0 + li; j < nk; j += 64u) { sc[sbase + j] = round_f16(sc[sbase + j] / tot); }
    tot = 1.0;
    storageBarrier();
    workgroupBarrier();
  }`;

/**
 * Causal grouped-query attention, one workgroup per (query row, head): scores to `sc` (row stride lmax), max and
 * sum reduced over the workgroup, then each thread weights V for its values of the head.
 */
export const ATTENTION_WGSL = /* wgsl */ `
${attentionBindings("f32")}
${MAIN}
${ATTENTION_ROW}
  let kvd = p.nkv * p.hd;
  let qb = (t * p.nh + h) * p.hd;
  let sbase = idx * p.lmax;
  var mx = -3.0e38;
  for (var j = j0 + li; j < nk; j += 64u) {
    let kb = j * kvd + kvh * p.hd;
    var s = 0.0;
    for (var i = 0u; i < p.hd; i++) { s += q[qb + i] * kc[kb + i]; }
    s *= p.scale;
    sc[sbase + j] = s;
    mx = max(mx, s);
  }
  ${SOFTMAX_SCORES}
  // V: the first p.vd values of each head's row (MLA reads V as a prefix view of its K rows); out rows of p.vd.
  let ob = (t * p.nh + h) * p.vd;
  for (var d = li; d < p.vd; d += 64u) {
    var acc = 0.0;
    for (var j = j0; j < nk; j++) { acc += sc[sbase + j] * vc[j * kvd + kvh * p.hd + d]; }
    o[ob + d] = acc / tot;
  }
}`;

/**
 * WGSL: s += q·k over a head's h4 vec4s, 4 loads of k issued before their adds (in order: the same sum as one at a
 * time); q(i) and k(i) name vec4 i of each (k: the cached key row at kb unless given).
 */
const keyDot = (q: (i: string) => string, k = (i: string) => `kc[kb + ${i}]`) => /* wgsl */ `var i = 0u;
    for (; i + 4u <= h4; i += 4u) {
      let k0 = ${k("i")}; let k1 = ${k("i + 1u")}; let k2 = ${k("i + 2u")}; let k3 = ${k("i + 3u")};
      s += dot(${q("i")}, k0); s += dot(${q("i + 1u")}, k1); s += dot(${q("i + 2u")}, k2); s += dot(${q("i + 3u")}, k3);
    }
    for (; i < h4; i++) { s += dot(${q("i")}, ${k("i")}); }`;

/**
 * WGSL: the probabilities' weighted sum of the cached V rows of keys [j0, end), split over 64 / h4 groups of keys
 * (group kg takes keys j0 + kg, + groups, ...), each thread a vec4 lane of the head; `last` adds the group's
 * key `end` where it has one; the groups' sums added in group order into o[ob + lane] / tot.
 */
const valueSum = (end: string, ob: string, last = "") => /* wgsl */ `let groups = 64u / h4;
  let lane = li % h4;
  let kg = li / h4;
  var a = vec4f(0.0);
  if (kg < groups) {
    // Keys 4 at a time, their loads issued before the adds, which keep key order (the same bits as one at a time).
    let vb = kvh * h4 + lane;
    var j = j0 + kg;
    for (; j + 3u * groups < ${end}; j += 4u * groups) {
      let s0 = sc[sbase + j]; let s1 = sc[sbase + j + groups]; let s2 = sc[sbase + j + 2u * groups]; let s3 = sc[sbase + j + 3u * groups];
      let v0 = vc[j * kvd4 + vb]; let v1 = vc[(j + groups) * kvd4 + vb]; let v2 = vc[(j + 2u * groups) * kvd4 + vb]; let v3 = vc[(j + 3u * groups) * kvd4 + vb];
      a += s0 * v0; a += s1 * v1; a += s2 * v2; a += s3 * v3;
    }
    for (; j < ${end}; j += groups) { a += sc[sbase + j] * vc[j * kvd4 + vb]; }
    ${last}
  }
  acc4[li] = a;
  workgroupBarrier();
  if (li < h4) {
    var r = acc4[li];
    for (var g = 1u; g < groups; g++) { r += acc4[g * h4 + li]; }
    o[${ob} + li] = r / tot;
  }`;

/**
 * ATTENTION_WGSL for head dims that are whole vec4s (at most 256): q·k over vec4 loads, and the weighted sum of V
 * split over 64 / (hd / 4) groups of keys, each thread a vec4 of the output, the groups' sums added in group order.
 * (The scalar loops took 27 µs a decode step at hd 128 on an H100, 2026-12-06.)
 */
export const ATTENTION4_WGSL = /* wgsl */ `
${attentionBindings("vec4f")}
var<workgroup> acc4: array<vec4f, 64>;
${MAIN}
${ATTENTION_ROW}
  let h4 = p.hd / 4u;
  let kvd4 = p.nkv * h4;
  let qb = (t * p.nh + h) * h4;
  let sbase = idx * p.lmax;
  var mx = -3.0e38;
  for (var j = j0 + li; j < nk; j += 64u) {
    let kb = j * kvd4 + kvh * h4;
    var s = 0.0;
    ${keyDot((i) => `q[qb + ${i}]`)}
    s *= p.scale;
    sc[sbase + j] = s;
    mx = max(mx, s);
  }
  ${SOFTMAX_SCORES}
  ${valueSum("nk", "qb")}
}`;

/** A thread's value slots of a head (hd <= 256 over 64 threads): preload and normRope below. */
const M4 = [0, 1, 2, 3];

/**
 * One decode token's q/k norms, rope, KV store and attention in one dispatch (NORM_ROPE_STORE_WGSL then
 * ATTENTION4_WGSL's arithmetic, in the same order): a workgroup per query head norms and ropes its head of the raw
 * q and its KV head's k, takes its v row, and the first head of each KV group stores both at p.start. The keys
 * before p.start come from the caches, the token's own from workgroup memory, so no workgroup reads a row another
 * writes. Heads of whole vec4s, at most 256 values; no sinks, window or f16 rounding.
 */
export const NORM_ROPE_ATTENTION_WGSL = /* wgsl */ `
struct P { t0: u32, t: u32, start: u32, nh: u32, nkv: u32, hd: u32, scale: f32, lmax: u32, win: u32, sink: u32, sink_off: u32, f16p: u32, vd: u32, half: u32, eps: f32, qn: u32, kn: u32, tb: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> kc: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> vc: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> o: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> sc: array<f32>;
@group(0) @binding(6) var<storage, read> k: array<f32>;
@group(0) @binding(7) var<storage, read> v: array<vec4f>;
@group(0) @binding(8) var<storage, read> wn: array<u32>;
@group(0) @binding(9) var<storage, read> tab: array<f32>;
${HEAD}
${ROUND_F16}
${SUM64}
var<workgroup> hv: array<f32, 256>;
var<workgroup> qh: array<vec4f, 64>;
var<workgroup> kh: array<vec4f, 64>;
var<workgroup> vh: array<vec4f, 64>;
var<workgroup> acc4: array<vec4f, 64>;
${MAIN}
  let h = wid(wg, nw);
  if (h >= p.nh) { return; }
  let kvh = h / (p.nh / p.nkv);
  let h4 = p.hd / 4u;
  let kvd4 = p.nkv * h4;
  let nk = p.start + 1u;
  let j0 = 0u;
  let sink_l = -3.0e38;
  let lead = h % (p.nh / p.nkv) == 0u;
  ${preload("k", "kvh * p.hd", "p.kn", true)}
  ${preload("q", "h * p.hd", "p.qn")}
  var vv = vec4f(0.0);
  if (li < h4) { vv = v[kvh * h4 + li]; }
  ${normRope("k", "kh")}
  if (li < h4) {
    vh[li] = vv;
    if (lead) {
      kc[p.start * kvd4 + kvh * h4 + li] = kh[li];
      vc[p.start * kvd4 + kvh * h4 + li] = vh[li];
    }
  }
  ${normRope("q", "qh")}
  let sbase = h * p.lmax;
  var mx = -3.0e38;
  for (var j = j0 + li; j < nk; j += 64u) {
    var s = 0.0;
    if (j == p.start) {
      ${keyDot((i) => `qh[${i}]`, (i) => `kh[${i}]`)}
    } else {
      let kb = j * kvd4 + kvh * h4;
      ${keyDot((i) => `qh[${i}]`)}
    }
    s *= p.scale;
    sc[sbase + j] = s;
    mx = max(mx, s);
  }
  ${SOFTMAX_SCORES}
  // The cached keys as ATTENTION4_WGSL sums them, then the token's own in its group's turn (the last key).
  ${valueSum("p.start", "h * h4", "if (j == p.start) { a += sc[sbase + j] * vh[lane]; }")}
}`;

/**
 * WGSL: a thread's (at most 4, hd <= 256) values of one head of `src` from `base` and their norm weights (word `w`
 * of wn) into registers `${src}x${m}`, `${src}w${m}`, and the rope's cos/sin for them (`rc${m}`, `rs${m}`, the same
 * for q and k) when `tab` is set: every load of the kernel issued at its start, not one round trip per phase.
 */
function preload(src: string, base: string, w: string, tab = false): string {
  return M4.map((m) => `let ${src}i${m} = min(li + ${64 * m}u, p.hd - 1u); let ${src}x${m} = ${src}[${base} + ${src}i${m}]; let ${src}w${m} = bitcast<f32>(wn[${w} + ${src}i${m}]);` +
    (tab ? ` var rc${m} = 0.0; var rs${m} = 0.0; if (p.half > 0u) { let rj = (li + ${64 * m}u) % p.half; rc${m} = tab[p.tb + 2u * rj]; rs${m} = tab[p.tb + 2u * rj + 1u]; }` : "")).join("\n  ");
}

/**
 * WGSL: RMS-norm one head (preload's registers of `src`), rope it over its first 2·p.half values, into vec4
 * workgroup array `dst`: NORM_ROPE_STORE_WGSL's arithmetic in its order.
 */
function normRope(src: string, dst: string): string {
  const on = (m: number) => `li + ${64 * m}u < p.hd`;
  return /* wgsl */ `{
    var ss = 0.0;
    ${M4.map((m) => `if (${on(m)}) { ss += ${src}x${m} * ${src}x${m}; }`).join(" ")}
    let inv = 1.0 / sqrt(sum64(ss, li) / f32(p.hd) + p.eps);
    ${M4.map((m) => `if (${on(m)}) { hv[li + ${64 * m}u] = ${src}x${m} * inv * ${src}w${m}; }`).join(" ")}
    workgroupBarrier();
    // Each thread's values roped into registers first: rope reads values other threads rope.
    ${M4.map((m) => `var r${m} = 0.0;
    if (${on(m)}) {
      let i = li + ${64 * m}u;
      r${m} = hv[i];
      if (i < 2u * p.half) {
        let j = i % p.half;
        let a = hv[j];
        let bb = hv[j + p.half];
        r${m} = select(a * rs${m} + bb * rc${m}, a * rc${m} - bb * rs${m}, i < p.half);
      }
    }`).join("\n    ")}
    workgroupBarrier();
    ${M4.map((m) => `if (${on(m)}) { hv[li + ${64 * m}u] = r${m}; }`).join(" ")}
    workgroupBarrier();
    if (li < h4) { ${dst}[li] = vec4f(hv[4u * li], hv[4u * li + 1u], hv[4u * li + 2u], hv[4u * li + 3u]); }
    workgroupBarrier();
  }`;
}
