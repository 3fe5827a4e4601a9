// The WebGPU backend's matrix-vector kernels, built around each quant type's `piece` reader (quant/types.ts): a
// group of G threads (8 to 64, by row length) walks a weight row in chunks, 8 threads per chunk reading
// consecutive words, so a warp's loads are whole 32-byte sectors; each thread keeps one partial sum per row of its
// R rows (x is read once for all of them), and the group's partials meet in workgroup memory once per workgroup.
// Three shells share that loop: the plain matvec (optionally adding into its output), and over a table of
// (expert, row) pairs the MoE's gate and up with SwiGLU applied, and its down projection. The pair tables come from
// the host (streamed experts) or from the routing kernel (resident ones); neither depends on where the experts sit.
import { HEAD } from "./kernels.js";
import { F16_AT, type GpuQuant } from "./quant/types.js";

/** Threads per row and rows per group for rows of k values of this type (n rows in all); sg: subgroup sums. */
export interface MatvecShape {
  readonly g: number;
  readonly r: number;
  readonly sg: boolean;
  /** Chunks a thread reads per loop turn (1-4): their loads are issued together, not one round trip each. */
  readonly u: number;
}
export function matvecShape(q: Pick<GpuQuant, "chunkValues">, k: number, n: number, sg = false, rows?: number, lanes = 64): MatvecShape {
  const pieces = Math.ceil(k / q.chunkValues) * 8;
  let g = 8;
  while (g < Math.min(64, lanes) && g < pieces) g *= 2;
  const groups = Math.ceil(n / (64 / g));
  // More rows per group share x, but on an H100 (session 13's profile) one row a group was faster for every decode
  // matvec of a3b (q/k/v 26 -> 18 µs, MoE gate+up 32 -> 24, down 25 -> 19) but the output's 151936 rows (224 vs 198 µs).
  const r = rows ?? (groups >= 16384 ? 4 : 1);
  return { g, r, sg, u: Math.min(4, Math.ceil(pieces / g)) };
}
/** The pipeline key's part for a shape. */
export const shapeKey = (s: MatvecShape) => `${s.g}/${s.r}${s.sg ? "/sg" : ""}${s.u > 1 ? `/u${s.u}` : ""}`;

/** Workgroups of a matvec of n rows in this shape. */
export function matvecGroups(n: number, s: { g: number; r: number }): number {
  return Math.ceil(n / ((64 / s.g) * s.r));
}

/** Accumulator names: `${a}${r}` for each of the R rows (unrolled here: no private arrays indexed at run time). */
const accs = (a: string, R: number) => Array.from({ length: R }, (_, r) => `${a}${r}`);

/**
 * The loop over a row's chunks in shape s: `parts` are [accumulator prefix, weight word base, reader, x's base], each
 * over rows row0 + r (reader `piece` and x base `xb` when not given). Each turn reads U chunks (pc, pc + G, ...) before
 * adding any, so their loads are in flight together; the adds keep the one-chunk-a-turn order (a chunk past the
 * row adds 0 read from the row's last chunk), so every U gives the same bits.
 */
function chunkLoop(q: GpuQuant, s: MatvecShape, parts: readonly [string, string, string?, string?][], k: string, n: string): string {
  const R = s.r, xload = !!q.xload;
  const U = Math.max(1, Math.min(s.u, Math.floor(16 / (parts.length * R))));
  const us = Array.from({ length: U }, (_, j) => j);
  const decl = parts.flatMap(([a]) => accs(a, R).map((v) => `var ${v} = 0.0;`)).join(" ");
  // With an x loader, x's share of each chunk is loaded once a turn (per x row) and given to every piece over it.
  const xbs = [...new Set(parts.map(([, , , xb]) => xb ?? "xb"))];
  const xarg = (xb: string, j: number) => (xload ? `xs${j}_${xbs.indexOf(xb)}` : xb);
  const xloads = xload ? us.flatMap((j) => xbs.map((xb) => `let ${xarg(xb, j)} = xload(c${j}, t${j}, ${xb});`)).join(" ") : "";
  // A row past the last reads the last (its sums are never written): no branch around the loads, so every load
  // of a turn, over all R rows, can be in flight at once.
  const row = (r: number) => {
    const reads = us.flatMap((j) => parts.map(([a, wb, fn, xb]) => `let ${a}${r}_${j} = ${fn ?? "piece"}(${wb}, ${n}, ${k}, min(row0 + ${r}u, ${n} - 1u), c${j}, t${j}, ${xarg(xb ?? "xb", j)});`));
    const adds = parts.flatMap(([a]) => us.map((j) => (j === 0 ? `${a}${r} += ${a}${r}_0;` : `${a}${r} += select(0.0, ${a}${r}_${j}, ok${j});`)));
    return `${reads.join(" ")} ${adds.join(" ")}`;
  };
  const turn = us.map((j) => (j === 0 ? "let c0 = pc / 8u; let t0 = pc % 8u;" : `let ok${j} = pc + ${j}u * G < np; let p${j} = select(pc, pc + ${j}u * G, ok${j}); let c${j} = p${j} / 8u; let t${j} = p${j} % 8u;`)).join("\n    ");
  return /* wgsl */ `${decl}
  let np = ((${k} + CV - 1u) / CV) * 8u;
  for (var pc = lane; pc < np; pc += ${U}u * G) {
    ${turn}
    ${xloads}
    ${Array.from({ length: R }, (_, r) => row(r)).join("\n    ")}
  }`;
}

/**
 * Sums each accumulator (names `vs`, j-th at red row j) over the G lanes of each group; total(j) then gives group
 * grp's sum. With subgroups: subgroupAdd (groups of whole subgroups) or xor shuffles (smaller groups), and one
 * barrier; else a barrier tree.
 */
function reduce(vs: readonly string[], sg: boolean): string {
  const tree = /* wgsl */ `${vs.map((v, j) => `red[${j}u * 64u + li] = ${v};`).join(" ")}
    workgroupBarrier();
    for (var st = G / 2u; st > 0u; st >>= 1u) {
      if (lane < st) {
        for (var j = 0u; j < M; j++) { red[j * 64u + li] += red[j * 64u + li + st]; }
      }
      workgroupBarrier();
    }`;
  if (!sg) return tree;
  // Groups smaller than a subgroup: a butterfly of xor shuffles within each group's G lanes (every lane ends with
  // the same bits: each step adds the same two values), lane 0 keeping the group's sum where the tree leaves it.
  return /* wgsl */ `if (sg_whole) {
    ${vs.map((v, j) => `let s${j} = subgroupAdd(${v});`).join(" ")}
    if (sgi == 0u) { ${vs.map((_, j) => `red[${j}u * 64u + li / sgs] = s${j};`).join(" ")} }
    workgroupBarrier();
  } else {
    ${vs.map((v, j) => `var s${j} = ${v};`).join(" ")}
    for (var m = 1u; m < G; m <<= 1u) { ${vs.map((_, j) => `s${j} += subgroupShuffleXor(s${j}, m);`).join(" ")} }
    if (lane == 0u) { ${vs.map((_, j) => `red[${j}u * 64u + li] = s${j};`).join(" ")} }
    workgroupBarrier();
  }`;
}

/** total(j, grp, ...): group grp's sum of accumulator j after reduce(). */
const TOTAL = /* wgsl */ `
fn total(j: u32, grp: u32, sg_whole: bool, sg_size: u32) -> f32 {
  if (!sg_whole) { return red[j * 64u + grp * G]; }
  let per = G / sg_size;
  var s = 0.0;
  for (var q = 0u; q < per; q++) { s += red[j * 64u + grp * per + q]; }
  return s;
}`;

/**
 * The reader over another binding: `w[` becomes `${name}[`, and the functions and private variables it defines get
 * the suffix `_${name}` (so a kernel can read two weights that may sit in different buffers).
 */
export function readerOver(code: string, name: string): string {
  const fns = [...code.matchAll(/\bfn (\w+)\(/g)].map((m) => m[1]);
  const vars = [...code.matchAll(/\b(?:var<private>|const) (\w+)\s*:/g)].map((m) => m[1]); // tables (MXFP4's, the i-quants' grids): a copy each
  let out = code.replace(/\bw\[/g, `${name}[`);
  for (const f of fns) out = out.replace(new RegExp(`\\b${f}\\(`, "g"), `${f}_${name}(`);
  for (const v of vars) out = out.replace(new RegExp(`\\b${v}\\b`, "g"), `${v}_${name}`);
  return out;
}

/** A reader's WGSL (F16_AT's helpers read `w` as words: not for vec4 readers). */
const readerCode = (q: GpuQuant) => (q.vec4 ? "" : F16_AT) + q.piece;
/** x's binding for this reader: f32 vec4s, or words of x quantised to 8 bits (QUANT_X_WGSL). */
const xbind = (q: GpuQuant) => (q.intX ? "xq: array<vec4u>" : "x4: array<vec4f>");
/** x's row stride in the reader's units (vec4s, or words of the quantised row). */
const xrow = (q: GpuQuant) => (q.intX ? "(p.k / 4u + p.k / 16u)" : "(p.k / 4u)");
/** The WGSL type a weight binding has for this reader. */
const wt = (q: GpuQuant) => (q.vec4 ? "array<vec4u>" : "array<u32>");

function head(q: GpuQuant, s: MatvecShape, m: number, params: string, binds: string, readers = readerCode(q)): string {
  return /* wgsl */ `${s.sg ? "enable subgroups;\n" : ""}${params}
${binds}
${HEAD}
${readers}
${q.xload ?? ""}
const G = ${s.g}u;
const R = ${s.r}u;
const M = ${m}u;
const CV = ${q.chunkValues}u;
var<workgroup> red: array<f32, ${64 * m}>;
${TOTAL}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) li: u32${s.sg ? ", @builtin(subgroup_size) sgs: u32, @builtin(subgroup_invocation_id) sgi: u32" : ""}) {
  let sg_whole = ${s.sg ? "sgs <= G" : "false"};
  let sg_size = ${s.sg ? "sgs" : "1u"};
  let lane = li % G;
  let grp = li / G;`;
}

const ROW0 = "let row0 = (wid(wg, nw) * (64u / G) + grp) * R;";

/**
 * o[t, p.o_row0 + n] (rows of p.o_n) = Σ_k x[t, k] · W[n, k], token t = workgroup z (o_n = n and o_row0 = 0 but for
 * a run of a weight's rows: arena.ts's GpuSplitWeight).
 */
export function matvecWgsl(q: GpuQuant, s: MatvecShape): string {
  return /* wgsl */ `${head(q, s, s.r, "struct P { w_off: u32, k: u32, n: u32, t: u32, o_n: u32, o_row0: u32 }", `@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: ${wt(q)};
@group(0) @binding(2) var<storage, read> ${xbind(q)};
@group(0) @binding(3) var<storage, read_write> o: array<f32>;`)}
  ${ROW0}
  let tok = wg.z;
  let xb = tok * ${xrow(q)};
  ${chunkLoop(q, s, [["a", "p.w_off"]], "p.k", "p.n")}
  ${reduce(accs("a", s.r), s.sg)}
  if (lane < R && row0 + lane < p.n) {
    let v = total(lane, grp, sg_whole, sg_size);
    o[tok * p.o_n + p.o_row0 + row0 + lane] = v;
  }
}`;
}

/**
 * The MoE's gate and up with SwiGLU, over pairs: pair z is words [gate, up, xrow, orow] at tb[mp.tab + 4z]:
 * o[orow, n] = silu(gate[n] · x[xrow]) · (up[n] · x[xrow]), gate read from `w`, up from `wu` (the same buffer
 * when they are parts of one record).
 */
export function moeGateUpWgsl(q: GpuQuant, s: MatvecShape): string {
  return /* wgsl */ `${head(q, s, 2 * s.r, "struct P { k: u32, n: u32, tab: u32 }", `@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: ${wt(q)};
@group(0) @binding(2) var<storage, read> wu: ${wt(q)};
@group(0) @binding(3) var<storage, read> tb: array<u32>;
@group(0) @binding(4) var<storage, read> ${xbind(q)};
@group(0) @binding(5) var<storage, read_write> o: array<f32>;`, readerCode(q) + readerOver(readerCode(q), "wu"))}
  ${ROW0}
  let e = p.tab + 4u * wg.z;
  let xb = tb[e + 2u] * ${xrow(q)};
  let gb = tb[e];
  let ub = tb[e + 1u];
  ${chunkLoop(q, s, [["a", "gb"], ["b", "ub", "piece_wu"]], "p.k", "p.n")}
  ${reduce([...accs("a", s.r), ...accs("b", s.r)], s.sg)}
  if (lane < R && row0 + lane < p.n) {
    let g = total(lane, grp, sg_whole, sg_size);
    let u = total(R + lane, grp, sg_whole, sg_size);
    o[tb[e + 3u] * p.n + row0 + lane] = g / (1.0 + exp(-g)) * u;
  }
}`;
}

/**
 * The MoE's down projection over pairs: pair z is words [down, arow, orow] at tb[mp.tab + 3z]:
 * o[orow, n] = down[n] · a[arow]. Each token's experts are then added in a fixed order by the scatter-add.
 */
export function moeDownWgsl(q: GpuQuant, s: MatvecShape): string {
  return /* wgsl */ `${head(q, s, s.r, "struct P { k: u32, n: u32, tab: u32 }", `@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: ${wt(q)};
@group(0) @binding(2) var<storage, read> tb: array<u32>;
@group(0) @binding(3) var<storage, read> ${xbind(q)};
@group(0) @binding(4) var<storage, read_write> o: array<f32>;`)}
  ${ROW0}
  let e = p.tab + 3u * wg.z;
  let xb = tb[e + 1u] * ${xrow(q)};
  let wb = tb[e];
  ${chunkLoop(q, s, [["a", "wb"]], "p.k", "p.n")}
  ${reduce(accs("a", s.r), s.sg)}
  if (lane < R && row0 + lane < p.n) { o[tb[e + 2u] * p.n + row0 + lane] = total(lane, grp, sg_whole, sg_size); }
}`;
}

/**
 * Up to three matvecs over the same x in one dispatch (attention's q, k, v): weights of one type in bindings w0..,
 * outputs o0..; workgroups [first_i, first_i + groups_i) run weight i. Each row's sum is the plain matvec's (the
 * lanes of a row, G, depend on k only), so the outputs equal three matvecs bit for bit.
 */
export function matvecSetWgsl(q: GpuQuant, s: MatvecShape, count: number): string {
  const ids = Array.from({ length: count }, (_, i) => i);
  const binds = [
    "@group(0) @binding(0) var<uniform> p: P;",
    ...ids.map((i) => `@group(0) @binding(${1 + i}) var<storage, read> w${i}: ${wt(q)};`),
    `@group(0) @binding(${1 + count}) var<storage, read> ${xbind(q)};`,
    ...ids.map((i) => `@group(0) @binding(${2 + count + i}) var<storage, read_write> o${i}: array<f32>;`),
  ].join("\n");
  const readers = ids.map((i) => readerOver(readerCode(q), `w${i}`)).join("\n");
  const body = (i: number) => /* wgsl */ `{
    let row0 = ((wid(wg, nw) - p.first${i}) * (64u / G) + grp) * R;
    ${chunkLoop(q, s, [["a", `p.off${i}`, `piece_w${i}`]], "p.k", `p.n${i}`)}
    ${reduce(accs("a", s.r), s.sg)}
    if (lane < R && row0 + lane < p.n${i}) { o${i}[tok * p.n${i} + row0 + lane] = total(lane, grp, sg_whole, sg_size); }
  }`;
  const fields = ids.map((i) => `off${i}: u32, n${i}: u32, first${i}: u32`).join(", ");
  const branches = ids.map((i) => (i === count - 1 ? body(i) : `if (wid(wg, nw) < p.first${i + 1}) ${body(i)} else `)).join("");
  return /* wgsl */ `${head(q, s, s.r, `struct P { k: u32, ${fields} }`, binds, readers)}
  let tok = wg.z;
  let xb = tok * ${xrow(q)};
  ${branches}
}`;
}

/**
 * The MoE's down projection and weighted sum for tokens of exactly `k` consecutive pairs (the device routing's
 * tables), token = workgroup z: pair q = z·k + j is words [down, arow, _] at tb[p.tab + 3q], its weight the f32 at
 * tb[p.scales + q]; o[z, n] = Σ_j weight_j · (down_j[n] · a[arow_j]) summed from 0 in j order. Each down row is
 * reduced as moeDownWgsl reduces it, so this equals moe_down and the combine kernel bit for bit, in one dispatch.
 * `acc`: o[z, n] += that sum instead (a split layer's device experts, into the sum the host's are added to).
 */
export function moeDownSumWgsl(q: GpuQuant, s: MatvecShape, k: number, acc = false): string {
  const js = Array.from({ length: k }, (_, j) => j);
  const parts = js.map((j) => [`a${j}_`, `w${j}`, "piece", `xb${j}`] as [string, string, string, string]);
  const names = js.flatMap((j) => accs(`a${j}_`, s.r));
  return /* wgsl */ `${head(q, s, k * s.r, "struct P { k: u32, n: u32, tab: u32, scales: u32 }", `@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: ${wt(q)};
@group(0) @binding(2) var<storage, read> tb: array<u32>;
@group(0) @binding(3) var<storage, read> ${xbind(q)};
@group(0) @binding(4) var<storage, read_write> o: array<f32>;`)}
  ${ROW0}
  let q0 = wg.z * ${k}u;
  ${js.map((j) => `let w${j} = tb[p.tab + 3u * (q0 + ${j}u)]; let xb${j} = tb[p.tab + 3u * (q0 + ${j}u) + 1u] * ${xrow(q)};`).join("\n  ")}
  ${chunkLoop(q, s, parts, "p.k", "p.n")}
  ${reduce(names, s.sg)}
  if (lane < R && row0 + lane < p.n) {
    var v = 0.0;
    for (var j = 0u; j < ${k}u; j++) { v += bitcast<f32>(tb[p.scales + q0 + j]) * total(j * R + lane, grp, sg_whole, sg_size); }
    o[wg.z * p.n + row0 + lane] = ${acc ? "o[wg.z * p.n + row0 + lane] + " : ""}v;
  }
}`;
}

/**
 * A decode token's routing and its experts' gate and up in one dispatch: every workgroup routes the token itself
 * (route.ts: softmax top-k of `lg`, the same arithmetic as the routing kernel) and runs pair z, the z-th selected
 * expert in ascending id order, at the word offsets `offs` gives; workgroup 0 of pair 0 also writes the routing's
 * words to `rt` as the routing kernel would. Equal to that kernel then moeGateUpWgsl, bit for bit.
 */
export function moeGateUpRoutedWgsl(q: GpuQuant, s: MatvecShape, routeFns: string): string {
  return /* wgsl */ `${head(q, s, 2 * s.r, "struct P { k: u32, n: u32, ne: u32, topk: u32, norm: u32 }", `@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: ${wt(q)};
@group(0) @binding(2) var<storage, read> wu: ${wt(q)};
@group(0) @binding(3) var<storage, read> lg: array<f32>;
@group(0) @binding(4) var<storage, read> offs: array<u32>;
@group(0) @binding(5) var<storage, read> ${xbind(q)};
@group(0) @binding(6) var<storage, read_write> o: array<f32>;
@group(0) @binding(7) var<storage, read_write> rt: array<u32>;`, readerCode(q) + readerOver(readerCode(q), "wu") + routeFns)}
  ${ROW0}
  route_token(0u, p.ne, p.topk, li);
  let ex = sel[asc[wg.z]];
  let gb = offs[3u * ex];
  let ub = offs[3u * ex + 1u];
  let xb = 0u;
  ${chunkLoop(q, s, [["a", "gb"], ["b", "ub", "piece_wu"]], "p.k", "p.n")}
  ${reduce([...accs("a", s.r), ...accs("b", s.r)], s.sg)}
  if (lane < R && row0 + lane < p.n) {
    let g = total(lane, grp, sg_whole, sg_size);
    let u = total(R + lane, grp, sg_whole, sg_size);
    o[wg.z * p.n + row0 + lane] = g / (1.0 + exp(-g)) * u;
  }
  if (wid(wg, nw) == 0u && wg.z == 0u) { write_route(0u, p.topk, 0u, p.topk, p.norm, 1u, li); }
}`;
}
