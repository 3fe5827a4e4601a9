// WGSL of the WebGPU backend's kernels other than the per-type weight readers (quant/*). Every kernel takes its
// parameters as the uniform `p` (binding 0) and runs 64 threads per workgroup; workgroups are numbered over x and
// y (65535 at most per dimension), so `wid` below is the linear workgroup index. Host arrays an op needs (token
// ids, positions' cos/sin, row lists, scales) come in `hd`, the submission's staging buffer, at a word offset.
// Inputs an op may alias with its output (out = x) have an in-place variant: see inPlace().

export const HEAD = /* wgsl */ `
fn wid(wg: vec3u, nw: vec3u) -> u32 { return wg.y * nw.x + wg.x; }
`;
/** The sum of one value per thread over a 64-thread workgroup (a barrier tree in `red`), for every thread. */
export const SUM64 = /* wgsl */ `
var<workgroup> red: array<f32, 64>;
fn sum64(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var st = 32u; st > 0u; st >>= 1u) {
    if (li < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }
  let s = red[0];
  workgroupBarrier();
  return s;
}`;

/** Every kernel's entry point: 64 threads, its workgroup and thread index. */
export const MAIN = "@compute @workgroup_size(64)\nfn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) li: u32) {";
/** The thread's linear index, for kernels of one thread per value. */
export const GID = "wid(wg, nw) * 64u + li";

/** The variant of `src` where binding `name` is the output `o` itself: its declaration dropped, its uses renamed. */
export function inPlace(src: string, name: string): string {
  const decl = new RegExp(`@group\\(0\\) @binding\\((\\d+)\\) var<storage, read> ${name}: array<f32>;\\n`);
  const m = decl.exec(src);
  if (!m) throw new Error(`inPlace: no input binding '${name}'`);
  const dropped = Number(m[1]);
  // Bindings after the dropped one move down by one, so the caller passes the buffers in the same order minus it.
  return src.replace(decl, "").replace(/@binding\((\d+)\)/g, (s, b: string) => (Number(b) > dropped ? `@binding(${Number(b) - 1})` : s)).replace(new RegExp(`\\b${name}\\[`, "g"), "o[");
}

/** What the tiled matmul declares: parameters (and `fields` more), weights (read by `dq`), x and out. */
const matmulHead = (dq: string, fields = "", xType = "f32") => /* wgsl */ `
struct P { w_off: u32, k: u32, n: u32, t: u32${fields} }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<${xType}>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
${HEAD}
${dq}
`;
/**
 * For each [sum, values] pair: sum += values · x[32 values from vec4 xb], x in 16-byte loads (a quarter of the load
 * instructions of one value each; the tiled kernels' x is the same for every thread of a workgroup, so its loads,
 * not the FMAs, bound them), each load feeding every pair.
 */
export function dot32(pairs: readonly (readonly [sum: string, values: string])[]): string {
  const quad = (v: string) => `vec4<f32>(${v}[4u * j], ${v}[4u * j + 1u], ${v}[4u * j + 2u], ${v}[4u * j + 3u])`;
  return /* wgsl */ `for (var j = 0u; j < 8u; j++) {
        let xv = x[xb + j];
        ${pairs.map(([sum, v]) => `${sum} += dot(${quad(v)}, xv);`).join("\n        ")}
      }`;
}

/** Weight rows and tokens of one workgroup of the tiled matmul. */
export const TILE_ROWS = 64, TILE_TOKENS = 16;

/** The tiled matmul's parameters past matmulHead's: out's row length and where this weight's rows go in it (as matvecWgsl's). */
const TILED_FIELDS = ", o_n: u32, o_row0: u32";

/**
 * out[t, n] = Σ_k x[t, k] · W[n, k] for several tokens (prefill, an expert's rows): each thread owns one weight
 * row and dequantises each unit of it once for up to 16 tokens, whose values every thread of the workgroup reads
 * alike (one broadcast load, 16 bytes at a time: dot32). Rows over x/y, token tiles over z. The token loop's bound is not a constant on
 * purpose: unrolled (as is a shared-memory tile with barriers), lavapipe's LLVM takes 5-50 s of CPU per type to
 * compile it; this compiles in ~2 s (Q6_K ~6 s).
 */
export function tiledMatmulWgsl(dq: string, rowsPerThread: 1 | 2 = 1): string {
  if (rowsPerThread === 2) return tiled2(dq);
  return /* wgsl */ `${matmulHead(dq, TILED_FIELDS, "vec4<f32>")}${MAIN}
  let row = wid(wg, nw) * 64u + li;
  let t0 = wg.z * ${TILE_TOKENS}u;
  if (row >= p.n || t0 >= p.t) { return; }
  let nt = min(p.t - t0, ${TILE_TOKENS}u);
  var acc: array<f32, ${TILE_TOKENS}>;
  let nu = p.k / 32u;
  for (var u = 0u; u < nu; u++) {
    let v = dq32(row, u);
    for (var tt = 0u; tt < nt; tt++) {
      let xb = ((t0 + tt) * p.k + u * 32u) / 4u;
      var s = 0.0;
      ${dot32([["s", "v"]])}
      acc[tt] += s;
    }
  }
  for (var tt = 0u; tt < nt; tt++) { o[(t0 + tt) * p.o_n + p.o_row0 + row] = acc[tt]; }
}`;
}

/**
 * The tiled matmul with two rows a thread (rows r and r + 64 of a 128-row workgroup): each x load feeds both, half
 * the loads per FMA again. Each row's sums are the one-row kernel's, in its order: the same bits. A second row past
 * the last reads the first again (no branch around the loads) and is not stored.
 */
function tiled2(dq: string): string {
  return /* wgsl */ `${matmulHead(dq, TILED_FIELDS, "vec4<f32>")}${MAIN}
  let row = wid(wg, nw) * 128u + li;
  let t0 = wg.z * ${TILE_TOKENS}u;
  if (row >= p.n || t0 >= p.t) { return; }
  let has1 = row + 64u < p.n;
  let row1 = select(row, row + 64u, has1);
  let nt = min(p.t - t0, ${TILE_TOKENS}u);
  var acc: array<f32, ${TILE_TOKENS}>;
  var acc1: array<f32, ${TILE_TOKENS}>;
  let nu = p.k / 32u;
  for (var u = 0u; u < nu; u++) {
    let v = dq32(row, u);
    let v1 = dq32(row1, u);
    for (var tt = 0u; tt < nt; tt++) {
      let xb = ((t0 + tt) * p.k + u * 32u) / 4u;
      var s = 0.0;
      var s1 = 0.0;
      ${dot32([["s", "v"], ["s1", "v1"]])}
      acc[tt] += s;
      acc1[tt] += s1;
    }
  }
  for (var tt = 0u; tt < nt; tt++) {
    o[(t0 + tt) * p.o_n + p.o_row0 + row] = acc[tt];
    if (has1) { o[(t0 + tt) * p.o_n + p.o_row0 + row + 64u] = acc1[tt]; }
  }
}`;
}

/** out[t, :] = row ids[t] of the table (n rows of k), for the ids in [row0, row0 + n): the table's rows from row0 (all of them, or a run: arena.ts's GpuSplitWeight). */
export function embedWgsl(dq: string): string {
  return /* wgsl */ `
struct P { w_off: u32, k: u32, n: u32, t: u32, ids: u32, row0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> hd: array<u32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
${HEAD}
${dq}
${MAIN}
  let g = ${GID};
  let nu = p.k / 32u;
  if (g >= p.t * nu) { return; }
  let t = g / nu;
  let u = g % nu;
  let r = hd[p.ids + t] - p.row0; // wraps past n for an id before row0
  if (r >= p.n) { return; }
  let v = dq32(r, u);
  for (var j = 0u; j < 32u; j++) { o[t * p.k + u * 32u + j] = v[j]; }
}`;
}

/**
 * In-place repack of nb blocks of rawBytes: copy of the raw bytes in `src`; each block's body (body_words words at
 * byte body_at) goes to word w_off + b·body_words, its scale (scale_bytes at byte scale_at: an f16, or MXFP4's
 * E8M0 byte) to the array of scales after all bodies. One thread per word of scales (the 2 or 4 blocks sharing it);
 * past the last block the word keeps the bytes it had.
 */
export const REPACK_WGSL = /* wgsl */ `
struct P { w_off: u32, nb: u32, raw: u32, body_at: u32, body_words: u32, scale_at: u32, scale_bytes: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> w: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
${HEAD}
fn sb(i: u32) -> u32 { return (src[i >> 2u] >> (8u * (i & 3u))) & 0xffu; }
fn word_at(i: u32) -> u32 { return sb(i) | (sb(i + 1u) << 8u) | (sb(i + 2u) << 16u) | (sb(i + 3u) << 24u); }
fn scale_of(b: u32) -> u32 { let i = b * p.raw + p.scale_at; return sb(i) | (sb(i + 1u) << 8u); }
${MAIN}
  let per = 4u / p.scale_bytes;
  let i = wid(wg, nw) * 64u + li;
  if (per * i >= p.nb) { return; }
  for (var b = per * i; b < min(per * i + per, p.nb); b++) {
    for (var q = 0u; q < p.body_words; q++) { w[p.w_off + b * p.body_words + q] = word_at(b * p.raw + p.body_at + 4u * q); }
  }
  let sw = p.body_words * p.nb + i;
  let bits = 8u * p.scale_bytes;
  let mask = select(0xffffu, 0xffu, p.scale_bytes == 1u);
  var word = 0u;
  for (var s = 0u; s < per; s++) {
    let b = per * i + s;
    word |= select((src[sw] >> (bits * s)) & mask, scale_of(b) & mask, b < p.nb) << (bits * s);
  }
  w[p.w_off + sw] = word;
}`;

/**
 * Attention's per-head RMS norms, NeoX rope and KV store in one dispatch, one workgroup per head row: rows
 * [0, T·nh) are q's heads (normed by qn, roped, in place), [T·nh, T·(nh + nkv)) k's (normed by kn, roped, in place
 * and into kc at position start + t), then v's rows (copied into vc). The norm and rope are normWgsl's (64 threads) and
 * ROPE_WGSL's arithmetic, so the result equals those ops and kvStore bit for bit.
 */
export const NORM_ROPE_STORE_WGSL = /* wgsl */ `
struct P { t: u32, nh: u32, nkv: u32, hd: u32, half: u32, eps: f32, qn: u32, kn: u32, start: u32, tb: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> wq: array<u32>;
@group(0) @binding(2) var<storage, read> wk: array<u32>;
@group(0) @binding(3) var<storage, read> tab: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> k: array<f32>;
@group(0) @binding(6) var<storage, read> v: array<f32>;
@group(0) @binding(7) var<storage, read_write> kc: array<f32>;
@group(0) @binding(8) var<storage, read_write> vc: array<f32>;
${HEAD}
${SUM64}
var<workgroup> hv: array<f32, 512>;
${MAIN}
  let r = wid(wg, nw);
  let nq = p.t * p.nh;
  let nk = p.t * p.nkv;
  if (r >= nq + 2u * nk) { return; }
  if (r >= nq + nk) {
    let vr = r - nq - nk;
    for (var i = li; i < p.hd; i += 64u) { vc[(p.start * p.nkv + vr) * p.hd + i] = v[vr * p.hd + i]; }
    return;
  }
  let isq = r < nq;
  let row = select(r - nq, r, isq);
  let t = row / select(p.nkv, p.nh, isq);
  let b = row * p.hd;
  var ss = 0.0;
  for (var i = li; i < p.hd; i += 64u) {
    let x = select(k[b + i], q[b + i], isq);
    ss += x * x;
  }
  let inv = 1.0 / sqrt(sum64(ss, li) / f32(p.hd) + p.eps);
  for (var i = li; i < p.hd; i += 64u) {
    if (isq) { hv[i] = q[b + i] * inv * bitcast<f32>(wq[p.qn + i]); } else { hv[i] = k[b + i] * inv * bitcast<f32>(wk[p.kn + i]); }
  }
  workgroupBarrier();
  for (var i = li; i < p.hd; i += 64u) {
    var o = hv[i];
    if (i < 2u * p.half) {
      let j = i % p.half;
      let c = tab[p.tb + 2u * (t * p.half + j)];
      let s = tab[p.tb + 2u * (t * p.half + j) + 1u];
      let a = hv[j];
      let bb = hv[j + p.half];
      o = select(a * s + bb * c, a * c - bb * s, i < p.half);
    }
    if (isq) { q[b + i] = o; } else {
      k[b + i] = o;
      kc[p.start * p.nkv * p.hd + b + i] = o;
    }
  }
}`;

/** Rows of at least this many values get 256 threads (normWgsl); shorter ones (per-head norms) 64. */
export const WIDE_NORM_MIN = 257;
/** Threads, and values per thread, of normWgsl for rows of n (its pipeline key). */
export function normShape(n: number): { threads: number; per: number } {
  const threads = n < WIDE_NORM_MIN ? 64 : 256;
  return { threads, per: Math.ceil(n / threads) };
}

/**
 * A row norm, one workgroup of `threads` per row, each thread holding `per` values (li + threads·j) in registers:
 * every load is issued before the first sum, so a row costs one memory round trip, not one per 64 values (a
 * 64-thread loop took 29 µs a 2048-wide row on an H100). rms: out = x / sqrt(mean(x²) + eps) · w (w: n f32 at word
 * w_off; xin may be out: see inPlace); add: x += y first, written back, then h as rms (addRmsNorm); in place, the
 * DeltaNet's: l2, x / sqrt(Σx² + eps); gated, rms · silu(gate). All sum in the same order, so rms and add agree bit
 * for bit; at 64 threads the order is normRopeStore's (values in j order, then sum64's tree), so its norms equal
 * this op's too.
 */
export function normWgsl(kind: NormKind, threads: number, per: number, quant = false): string {
  const key = `${kind}/${threads}/${per}${quant ? "/q" : ""}`;
  let src = NORMS.get(key);
  if (!src) NORMS.set(key, (src = normSource(kind, threads, per, quant)));
  return src;
}
const NORMS = new Map<string, string>();
export type NormKind = "rms" | "add" | "l2" | "gated";
/** Each kind's bindings after the parameters, how thread value j is loaded, and how it is written back. */
// `extra` loads what the store needs besides the value (norm weights, gates) with the row, before the first store:
// a load after a store to another binding waits for it (the bindings may alias), a memory round trip per value.
// `quant`: keeps the output value for the row's quantisation (normWgsl's quant).
const NORM_KINDS: Record<NormKind, { binds: string; load: (i: string) => string; extra?: (j: number, i: string) => string; store: (v: string, i: string, j: number) => string; quant?: (i: string, j: number) => string }> = {
  rms: {
    binds: `@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> xin: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;`,
    load: (i) => `xin[b + ${i}]`,
    extra: (j, i) => `let w${j} = bitcast<f32>(w[p.w_off + min(${i}, p.n - 1u)]);`,
    store: (v, i, j) => `o[b + ${i}] = ${v} * inv * w${j};`,
  },
  add: {
    binds: `@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;`,
    load: (i) => `x[b + ${i}] + y[b + ${i}]`,
    extra: (j, i) => `let w${j} = bitcast<f32>(w[p.w_off + min(${i}, p.n - 1u)]);`,
    store: (v, i, j) => `x[b + ${i}] = ${v}; let h${j} = ${v} * inv * w${j}; h[b + ${i}] = h${j};`,
    quant: (i, j) => `qs[${i}] = h${j};`,
  },
  l2: { binds: "@group(0) @binding(1) var<storage, read_write> x: array<f32>;", load: (i) => `x[b + ${i}]`, store: (v, i) => `x[b + ${i}] = ${v} * inv;` },
  gated: {
    binds: `@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> gt: array<f32>;`,
    load: (i) => `x[b + ${i}]`,
    extra: (j, i) => `let w${j} = bitcast<f32>(w[p.w_off + min(${i}, p.n - 1u)]); let z${j} = gt[b + min(${i}, p.n - 1u)];`,
    store: (v, i, j) => `x[b + ${i}] = ${v} * inv * w${j} * (z${j} / (1.0 + exp(-z${j})));`,
  },
};
function normSource(kind: NormKind, threads: number, per: number, quant: boolean): string {
  if (per > 64) throw new RangeError(`webgpu norm: rows of more than ${threads * 64} values are not supported`);
  const js = Array.from({ length: per }, (_, j) => j);
  const k = NORM_KINDS[kind];
  if (quant && !k.quant) throw new Error(`webgpu norm: no quantised output for '${kind}'`);
  const nb = (k.binds.match(/@binding/g) ?? []).length + 1;
  return /* wgsl */ `
struct P { n: u32, rows: u32, w_off: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
${k.binds}
${quant ? `@group(0) @binding(${nb}) var<storage, read_write> xq: array<u32>;
var<workgroup> qs: array<f32, ${threads * per}>;` : ""}
${HEAD}
var<workgroup> red: array<f32, ${threads}>;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) li: u32) {
  let r = wid(wg, nw);
  if (r >= p.rows) { return; }
  let b = r * p.n;
  ${js.map((j) => `let i${j} = li + ${threads * j}u; var v${j} = 0.0; if (i${j} < p.n) { v${j} = ${k.load(`i${j}`)}; }`).join("\n  ")}
  ${k.extra ? js.map((j) => k.extra!(j, `i${j}`)).join("\n  ") : ""}
  var ss = 0.0;
  ${js.map((j) => `ss += v${j} * v${j};`).join(" ")}
  red[li] = ss;
  workgroupBarrier();
  for (var st = ${threads / 2}u; st > 0u; st >>= 1u) {
    if (li < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }
  let inv = 1.0 / sqrt(red[0]${kind === "l2" ? "" : " / f32(p.n)"} + p.eps);
  ${js.map((j) => `if (i${j} < p.n) { ${k.store(`v${j}`, `i${j}`, j)}${quant ? ` ${k.quant!(`i${j}`, j)}` : ""} }`).join("\n  ")}
  ${quant ? quantRow(threads) : ""}
}`;
}
/**
 * A norm's output row (qs, from workgroup memory) quantised into xq as QUANT_X_WGSL quantises it (the same
 * arithmetic on the same values: the same words), one thread a block of 32 (rows of n % 32 == 0).
 */
function quantRow(threads: number): string {
  return /* wgsl */ `workgroupBarrier();
  let ob = r * (p.n / 4u + p.n / 16u);
  for (var bk = li; bk < p.n / 32u; bk += ${threads}u) {
    ${quantBlock("bk", "p.n", "ob", (j) => `vec4f(qs[32u * bk + 4u * ${j}], qs[32u * bk + 4u * ${j} + 1u], qs[32u * bk + 4u * ${j} + 2u], qs[32u * bk + 4u * ${j} + 3u])`)}
  }`;
}
/** out[i] = f(a[i], b[i]) for i < n. */
export function binaryWgsl(expr: string): string {
  return /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ain: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
${HEAD}
${MAIN}
  let i = wid(wg, nw) * 64u + li;
  if (i >= p.n) { return; }
  let a = ain[i];
  let c = b[i];
  o[i] = ${expr};
}`;
}

/** Rope in place over rows (t, head) of x: 2·half values from p.off in pairs (i, i + half) NeoX or (2i, 2i + 1) NORM, cos/sin of (t, i) from `tab`. */
export const ROPE_WGSL = /* wgsl */ `
struct P { rows: u32, nh: u32, hd: u32, half: u32, off: u32, norm: u32, tb: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> tab: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
${HEAD}
${MAIN}
  let g = ${GID};
  if (g >= p.rows * p.half) { return; }
  let r = g / p.half;
  let i = g % p.half;
  let t = r / p.nh;
  let c = tab[p.tb + 2u * (t * p.half + i)];
  let s = tab[p.tb + 2u * (t * p.half + i) + 1u];
  // Pair i of the rotated values from p.off: (i, i + half) NeoX, (2i, 2i + 1) NORM.
  let ja = r * p.hd + p.off + select(i, 2u * i, p.norm != 0u);
  let jb = ja + select(p.half, 1u, p.norm != 0u);
  let a = o[ja];
  let b = o[jb];
  o[ja] = a * c - b * s;
  o[jb] = a * s + b * c;
}`;

/**
 * Round to nearest even at f16's 10 mantissa bits (pack2x16float's rounding is not specified); outside f16's normal
 * range, pack2x16float's own conversion.
 */
export const ROUND_F16 = /* wgsl */ `fn round_f16(v: f32) -> f32 {
  let b = bitcast<u32>(v);
  let e = (b >> 23u) & 0xffu;
  if (e >= 113u && e < 142u) { return bitcast<f32>((b + 0xfffu + ((b >> 13u) & 1u)) & 0xffffe000u); }
  return unpack2x16float(pack2x16float(vec2f(v, 0.0))).x;
}`;

/** o[i] += the f32 at word p.at + i of the staging words (addLater: host values that came after the recording). */
export const ADD_STAGED_WGSL = /* wgsl */ `
struct P { n: u32, at: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> hd: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
${HEAD}
${MAIN}
  let i = ${GID};
  if (i >= p.n) { return; }
  o[i] = o[i] + bitcast<f32>(hd[p.at + i]);
}`;

/** out[i, :] = x[rows[i], :]. */
export const GATHER_WGSL = /* wgsl */ `
struct P { len: u32, n: u32, rows: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> hd: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
${HEAD}
${MAIN}
  let g = ${GID};
  if (g >= p.n * p.len) { return; }
  let i = g / p.len;
  let c = g % p.len;
  o[g] = x[hd[p.rows + i] * p.len + c];
}`;

/**
 * out[rows[i], :] += scales[i] · x[i, :] for every i, by output row: distinct row u (urows[u]) adds its pairs
 * order[starts[u]..starts[u+1]) in ascending i, so a row listed twice adds twice in list order, as the reference
 * (and the serial loop per column this replaced, 262 µs for a 128-token prompt's 1024 pairs on an H100). One
 * thread per (row, column): workgroup = u · column blocks + block.
 */
export const SCATTER_ADD_WGSL = /* wgsl */ `
struct P { len: u32, nu: u32, urows: u32, starts: u32, order: u32, scales: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> hd: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
${HEAD}
${MAIN}
  let blocks = (p.len + 63u) / 64u;
  let u = wid(wg, nw) / blocks;
  let c = (wid(wg, nw) % blocks) * 64u + li;
  if (u >= p.nu || c >= p.len) { return; }
  let at = hd[p.urows + u] * p.len + c;
  var v = o[at];
  for (var q = hd[p.starts + u]; q < hd[p.starts + u + 1u]; q++) {
    let i = hd[p.order + q];
    v += bitcast<f32>(hd[p.scales + i]) * x[i * p.len + c];
  }
  o[at] = v;
}`;

/**
 * out[t, :] = Σ_j scales[q] · x[q, :] over q = t·k + j, j < k in order, from 0: the MoE's weighted sum for tokens
 * whose pairs are consecutive (the device routing's tables), the same additions as zero and scatterAddRows.
 */
export const COMBINE_WGSL = /* wgsl */ `
struct P { len: u32, t: u32, k: u32, scales: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> hd: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
${HEAD}
${MAIN}
  let g = ${GID};
  if (g >= p.len * p.t) { return; }
  let t = g / p.len;
  let c = g % p.len;
  var v = 0.0;
  for (var j = 0u; j < p.k; j++) {
    let q = t * p.k + j;
    v += bitcast<f32>(hd[p.scales + q]) * x[q * p.len + c];
  }
  o[g] = v;
}`;

/** out[r, :] += bias (len f32 at word w_off) for r < rows. */
export const ADD_ROWS_WGSL = /* wgsl */ `
struct P { len: u32, rows: u32, w_off: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
${HEAD}
${MAIN}
  let g = ${GID};
  if (g >= p.len * p.rows) { return; }
  o[g] += bitcast<f32>(w[p.w_off + g % p.len]);
}`;

/** Strided row copy (CopyParams), optionally rounding each value to f16. */
export const COPY_WGSL = /* wgsl */ `
struct P { rows: u32, n: u32, s_off: u32, s_stride: u32, d_off: u32, d_stride: u32, round: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
${HEAD}
${ROUND_F16}
${MAIN}
  let g = ${GID};
  if (g >= p.rows * p.n) { return; }
  let r = g / p.n;
  let i = g % p.n;
  var v = x[p.s_off + r * p.s_stride + i];
  if (p.round != 0u) { v = round_f16(v); }
  o[p.d_off + r * p.d_stride + i] = v;
}`;

/**
 * x quantised to 8 bits per 32 values for the integer-dot matvec readers (GpuQuant.intX), one thread a block:
 * a token's row of k values becomes k/4 words of int8 (4 a word, little-endian), then k/32 f32 scales d (amax / 127,
 * values round(x / d), ties to even), then k/32 f32 sums d·Σq, as ggml's q8_1 (the k-quants' mins multiply them):
 * the matvec then equals the f32 one over x's quantised values.
 */
export const QUANT_X_WGSL = /* wgsl */ `
struct P { k: u32, t: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> o: array<u32>;
${HEAD}
${MAIN}
  let g = ${GID};
  let nb = p.k / 32u;
  if (g >= p.t * nb) { return; }
  let tok = g / nb;
  let b = g % nb;
  let xb = tok * (p.k / 4u) + 8u * b;
  let ob = tok * (p.k / 4u + p.k / 16u);
  ${quantBlock("b", "p.k", "ob", (j) => `x4[xb + ${j}]`, "o")}
}`;
/**
 * WGSL quantising block `b` of a row of k values (its 8 vec4s from `load(j)`) into words of `o` from word `ob`:
 * 8 words of int8, then its scale at ob + k/4 + b and its scaled sum at ob + k/4 + k/32 + b.
 */
function quantBlock(b: string, k: string, ob: string, load: (j: string) => string, o = "xq"): string {
  return /* wgsl */ `var v: array<vec4f, 8>;
    var amax = 0.0;
    for (var j = 0u; j < 8u; j++) {
      v[j] = ${load("j")};
      let a = abs(v[j]);
      amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
    }
    let d = amax / 127.0;
    let id = select(0.0, 1.0 / d, d > 0.0);
    var s = 0;
    for (var j = 0u; j < 8u; j++) {
      let q = vec4i(round(v[j] * id));
      s += q.x + q.y + q.z + q.w;
      ${o}[${ob} + 8u * ${b} + j] = pack4xI8(q);
    }
    ${o}[${ob} + ${k} / 4u + ${b}] = bitcast<u32>(d);
    ${o}[${ob} + ${k} / 4u + ${k} / 32u + ${b}] = bitcast<u32>(d * f32(s));`;
}
/** Words of one token's row of k values quantised by QUANT_X_WGSL. */
export const quantXWords = (k: number) => k / 4 + k / 16;

/**
 * A 3-D weight applied per head (DeepSeek's attn_k_b / attn_v_b): rows h·nr + r of the [k, nr·nh] matrix times
 * x[t, h, :], one thread per (token, row), each unit of the row dequantised by dq32 (p.n: all nr·nh rows).
 */
export function matmulHeadsWgsl(dq: string): string {
  return /* wgsl */ `${matmulHead(dq, ", nh: u32, nr: u32")}${MAIN}
  let g = ${GID};
  if (g >= p.t * p.n) { return; }
  let tok = g / p.n;
  let row = g % p.n;
  let xb = (tok * p.nh + row / p.nr) * p.k;
  var acc = 0.0;
  for (var u = 0u; u < p.k / 32u; u++) {
    let v = dq32(row, u);
    var s = 0.0;
    for (var j = 0u; j < 32u; j++) { s += v[j] * x[xb + u * 32u + j]; }
    acc += s;
  }
  o[tok * p.n + row] = acc;
}`;
}
