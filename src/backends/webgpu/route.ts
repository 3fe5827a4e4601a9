// Softmax top-k routing on the device (models/routing.ts softmaxTopK is the reference): one workgroup per token.
// The top k are chosen on the logits (the softmax keeps their order), ties to the lower id, as the reference does;
// the weights are the softmax probabilities of those k, renormalised to sum 1 when asked. Output words in `rt`
// (P = tokens · k):
//   [0, P)        each token's ids in score order        [P, 2P)   their weights (f32 bits)
// and, with the experts' word offsets in `offs` (tables = 1), the tables the MoE kernels run from, each token's
// experts in ascending id order (the order a host-built table has, so both give the same bits):
//   [2P, 3P)      the pair's token (the scatter-add's rows) [3P, 7P)  gate/up pairs [gate, up, token, pair]
//   [7P, 10P)     down pairs [down, pair, pair]          [10P, 11P) the pair's weight (the scatter-add's scales)
import { HEAD, MAIN } from "./kernels.js";

/** Most experts a layer may have for routing on the device (a bit each in workgroup memory), and most k. */
export const ROUTE_MAX_EXPERTS = 1024, ROUTE_MAX_K = 64;
/** Words of `rt` for P pairs. */
export const routeWords = (pairs: number) => 11 * pairs;

/**
 * WGSL over binding `lg` (the logits): route_token(base, ne, k, li) picks token's top k into `sel` (score order),
 * their ascending id order into `asc` (asc[j]: the index in sel of the j-th smallest id), and leaves the softmax's
 * max and sum in rmx, rtot; write_route(...) (every thread) writes the words above for it.
 * Called from uniform control flow by all 64 threads of a workgroup (it has barriers).
 */
export const ROUTE_FNS = /* wgsl */ `
var<workgroup> rv: array<f32, 64>;
var<workgroup> lv: array<vec4f, ${ROUTE_MAX_EXPERTS / 4}>;
var<workgroup> sel: array<u32, ${ROUTE_MAX_K}>;
var<workgroup> asc: array<u32, ${ROUTE_MAX_K}>;
var<workgroup> rmx: f32;
var<workgroup> rtot: f32;
fn route_token(base: u32, ne: u32, k: u32, li: u32) {
  var m = -3.4e38;
  for (var e = li; e < ne; e += 64u) {
    let v = lg[base + e];
    lv[e >> 2u][e & 3u] = v;
    m = max(m, v);
  }
  let n4 = (ne + 3u) / 4u;
  if (li < 4u * n4 - ne) { lv[(ne + li) >> 2u][(ne + li) & 3u] = 0.0; } // the last vec4's padding (never counted)
  rv[li] = m;
  if (li < k) { sel[li] = 0u; } // NaN logits rank nowhere: their slots name expert 0, never an id out of range
  workgroupBarrier();
  for (var st = 32u; st > 0u; st >>= 1u) {
    if (li < st) { rv[li] = max(rv[li], rv[li + st]); }
    workgroupBarrier();
  }
  let mx = rv[0];
  workgroupBarrier();
  var s = 0.0;
  for (var e = li; e < ne; e += 64u) { s += exp(lv[e >> 2u][e & 3u] - mx); }
  rv[li] = s;
  workgroupBarrier();
  for (var st = 32u; st > 0u; st >>= 1u) {
    if (li < st) { rv[li] += rv[li + st]; }
    workgroupBarrier();
  }
  if (li == 0u) {
    rmx = mx;
    rtot = rv[0];
  }
  // Each expert's rank among the logits (higher first, ties to the lower id) is its place in the top k: no
  // barrier per pick, as an argmax taken k times needs.
  for (var e = li; e < ne; e += 64u) {
    let v = vec4f(lv[e >> 2u][e & 3u]);
    var r = vec4u(0u);
    for (var f = 0u; f < n4; f++) {
      let u = lv[f];
      let fi = vec4u(4u * f) + vec4u(0u, 1u, 2u, 3u);
      r += select(vec4u(0u), vec4u(1u), (fi < vec4u(ne)) & ((u > v) | ((u == v) & (fi < vec4u(e)))));
    }
    let rank = r.x + r.y + r.z + r.w;
    if (rank < k) { sel[rank] = e; }
  }
  workgroupBarrier();
  // The selected ids in ascending order (a host table's order): asc[j] is the index in sel of the j-th smallest.
  if (li < k) {
    let me = sel[li];
    var r = 0u;
    for (var j = 0u; j < k; j++) { r += select(0u, 1u, sel[j] < me || (sel[j] == me && j < li)); }
    asc[r] = li;
  }
  workgroupBarrier();
}
/**
 * Token t's words of rt (P pairs in all), the tables too when tables != 0: thread j < k writes slot j's. Called by
 * every thread from uniform control flow (a barrier): slots written one after another by one thread waited a memory
 * round trip each (a load after a store to another binding waits for it).
 */
var<workgroup> rpw: array<f32, ${ROUTE_MAX_K}>;
fn write_route(t: u32, P: u32, base: u32, k: u32, norm: u32, tables: u32, li: u32) {
  let q0 = t * k;
  if (li < k) { rpw[li] = exp(lg[base + sel[li]] - rmx) / rtot; }
  workgroupBarrier();
  if (li >= k) { return; }
  var sum = 0.0;
  for (var j = 0u; j < k; j++) { sum += rpw[j]; }
  let div = select(1.0, sum, norm != 0u);
  rt[q0 + li] = sel[li];
  rt[P + q0 + li] = bitcast<u32>(rpw[li] / div);
  if (tables == 0u) { return; }
  let bj = asc[li];
  let be = sel[bj];
  let q = q0 + li;
  let g = offs[3u * be];
  let u = offs[3u * be + 1u];
  let d = offs[3u * be + 2u];
  rt[2u * P + q] = t;
  rt[3u * P + 4u * q] = g;
  rt[3u * P + 4u * q + 1u] = u;
  rt[3u * P + 4u * q + 2u] = t;
  rt[3u * P + 4u * q + 3u] = q;
  rt[7u * P + 3u * q] = d;
  rt[7u * P + 3u * q + 1u] = q;
  rt[7u * P + 3u * q + 2u] = q;
  rt[10u * P + q] = bitcast<u32>(rpw[bj] / div);
}`;

export const ROUTE_WGSL = /* wgsl */ `
struct P { t: u32, ne: u32, k: u32, norm: u32, tables: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> lg: array<f32>;
@group(0) @binding(2) var<storage, read> offs: array<u32>;
@group(0) @binding(3) var<storage, read_write> rt: array<u32>;
${HEAD}
${ROUTE_FNS}
${MAIN}
  let t = wid(wg, nw);
  if (t >= p.t) { return; }
  route_token(t * p.ne, p.ne, p.k, li);
  write_route(t, p.t * p.k, t * p.ne, p.k, p.norm, p.tables, li);
}`;
