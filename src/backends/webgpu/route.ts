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
 * WGSL over binding `lg` (the logits): route_token(base, ne, k, li) picks token's top k into `sel` (score order) and
 * leaves the softmax's max and sum in rmx, rtot; write_route(...) (one thread) writes the words above for it.
 * Called from uniform control flow by all 64 threads of a workgroup (it has barriers).
 */
export const ROUTE_FNS = /* wgsl */ `
var<workgroup> rv: array<f32, 64>;
var<workgroup> ri: array<u32, 64>;
var<workgroup> taken: array<u32, ${ROUTE_MAX_EXPERTS / 32}>;
var<workgroup> sel: array<u32, ${ROUTE_MAX_K}>;
var<workgroup> rmx: f32;
var<workgroup> rtot: f32;
fn is_taken(e: u32) -> bool { return ((taken[e >> 5u] >> (e & 31u)) & 1u) != 0u; }
fn route_token(base: u32, ne: u32, k: u32, li: u32) {
  var m = -3.4e38;
  for (var e = li; e < ne; e += 64u) { m = max(m, lg[base + e]); }
  rv[li] = m;
  workgroupBarrier();
  for (var st = 32u; st > 0u; st >>= 1u) {
    if (li < st) { rv[li] = max(rv[li], rv[li + st]); }
    workgroupBarrier();
  }
  let mx = rv[0];
  workgroupBarrier();
  var s = 0.0;
  for (var e = li; e < ne; e += 64u) { s += exp(lg[base + e] - mx); }
  rv[li] = s;
  if (li < ${ROUTE_MAX_EXPERTS / 32}u) { taken[li] = 0u; }
  workgroupBarrier();
  for (var st = 32u; st > 0u; st >>= 1u) {
    if (li < st) { rv[li] += rv[li + st]; }
    workgroupBarrier();
  }
  if (li == 0u) {
    rmx = mx;
    rtot = rv[0];
  }
  workgroupBarrier();
  for (var j = 0u; j < k; j++) {
    var bv = 0.0;
    var bi = 0xffffffffu;
    for (var e = li; e < ne; e += 64u) {
      let v = lg[base + e];
      if (!is_taken(e) && (bi == 0xffffffffu || v > bv)) { bv = v; bi = e; }
    }
    rv[li] = bv;
    ri[li] = bi;
    workgroupBarrier();
    for (var st = 32u; st > 0u; st >>= 1u) {
      if (li < st) {
        let ov = rv[li + st];
        let oi = ri[li + st];
        // A thread with no candidate (bi unset) loses; otherwise the larger logit, ties to the lower id.
        if (oi != 0xffffffffu && (ri[li] == 0xffffffffu || ov > rv[li] || (ov == rv[li] && oi < ri[li]))) { rv[li] = ov; ri[li] = oi; }
      }
      workgroupBarrier();
    }
    if (li == 0u) {
      sel[j] = ri[0];
      taken[ri[0] >> 5u] |= 1u << (ri[0] & 31u);
    }
    workgroupBarrier();
  }
}
/** The j-th smallest of the k selected ids (its index in sel): ascending order, as a host table lists experts. */
fn nth_ascending(k: u32, j: u32) -> u32 {
  var last = -1;
  var bj = 0u;
  for (var n = 0u; n <= j; n++) {
    var be = 0xffffffffu;
    for (var i = 0u; i < k; i++) {
      if (i32(sel[i]) > last && sel[i] < be) { be = sel[i]; bj = i; }
    }
    last = i32(be);
  }
  return bj;
}
/** One thread: token t's words of rt (P pairs in all), the tables too when tables != 0. */
fn write_route(t: u32, P: u32, base: u32, k: u32, norm: u32, tables: u32) {
  let q0 = t * k;
  var sum = 0.0;
  for (var j = 0u; j < k; j++) { sum += exp(lg[base + sel[j]] - rmx) / rtot; }
  let div = select(1.0, sum, norm != 0u);
  for (var j = 0u; j < k; j++) {
    rt[q0 + j] = sel[j];
    rt[P + q0 + j] = bitcast<u32>(exp(lg[base + sel[j]] - rmx) / rtot / div);
  }
  if (tables == 0u) { return; }
  for (var j = 0u; j < k; j++) {
    let bj = nth_ascending(k, j);
    let be = sel[bj];
    let q = q0 + j;
    rt[2u * P + q] = t;
    rt[3u * P + 4u * q] = offs[3u * be];
    rt[3u * P + 4u * q + 1u] = offs[3u * be + 1u];
    rt[3u * P + 4u * q + 2u] = t;
    rt[3u * P + 4u * q + 3u] = q;
    rt[7u * P + 3u * q] = offs[3u * be + 2u];
    rt[7u * P + 3u * q + 1u] = q;
    rt[7u * P + 3u * q + 2u] = q;
    rt[10u * P + q] = rt[P + q0 + bj];
  }
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
  if (li == 0u) { write_route(t, p.t * p.k, t * p.ne, p.k, p.norm, p.tables); }
}`;
