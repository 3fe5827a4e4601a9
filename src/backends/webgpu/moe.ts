// The slot-indexed MoE matmul: one dispatch runs a weight part (gate, up or down) of every selected expert over
// its rows. Each (expert, row) pair reads its expert's record where its slot puts it in the bound arena: the pair
// table (in the submission's staging words) gives the part's word offset, the input row and the output row, so
// the experts need not be contiguous and which slots they sit in changes no arithmetic (streamed == resident).
import { HEAD, MAIN } from "./kernels.js";

/**
 * o[orow, n] = Σ_k x[xrow, k] · W[n, k] for each pair z (workgroup z) of the table at word `tab` of `hd`:
 * [w_off, xrow, orow] per pair. Rows of W are split over `lanes` threads as in matmulWgsl, so a pair's sum is the
 * plain matmul's. The quant type's dq32 reads p.w_off, p.k, p.n: here a private copy set per pair.
 */
export function moeMatmulWgsl(dq: string, lanes: number): string {
  return /* wgsl */ `
struct U { k: u32, n: u32, tab: u32 }
struct P { w_off: u32, k: u32, n: u32 }
@group(0) @binding(0) var<uniform> mp: U;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> hd: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
var<private> p: P;
${HEAD}
${dq}
const L = ${lanes}u;
var<workgroup> red: array<f32, 64>;
${MAIN}
  let e = mp.tab + wg.z * 3u;
  p = P(hd[e], mp.k, mp.n);
  let xb0 = hd[e + 1u] * mp.k;
  let lane = li % L;
  let row = wid(wg, nw) * (64u / L) + li / L;
  var acc = 0.0;
  if (row < mp.n) {
    for (var q = lane; q < mp.k / 32u; q += L) {
      let wv = dq32(row, q);
      let xb = xb0 + q * 32u;
      var s = 0.0;
      for (var j = 0u; j < 32u; j++) { s += wv[j] * x[xb + j]; }
      acc += s;
    }
  }
  if (L > 1u) {
    red[li] = acc;
    workgroupBarrier();
    for (var st = L / 2u; st > 0u; st >>= 1u) {
      if (lane < st) { red[li] += red[li + st]; }
      workgroupBarrier();
    }
    acc = red[li];
  }
  if (lane == 0u && row < mp.n) { o[hd[e + 2u] * mp.n + row] = acc; }
}`;
}
