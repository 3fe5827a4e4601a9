// The MoE's experts over many tokens (a prompt): an expert's tokens in tiles of up to 16, one workgroup per
// (64 weight rows, tile), each thread a row dequantised once per tile (as the tiled matmul, kernels.ts) where the
// matvec kernels would read the expert's weights once per token. A tile is MOE_TILE_WORDS words of a table in the
// submission's staging words: [weight word offset, up's word offset (gate+up) or 0, tokens m, 16 x rows, 16 out rows].
import { dot32, GID, HEAD, MAIN } from "./kernels.js";
import { readerOver } from "./matvec.js";

export const MOE_TILE_TOKENS = 16;
export const MOE_TILE_WORDS = 3 + 2 * MOE_TILE_TOKENS;

/** A dq32 reader (quant/*: wgsl) reading at word offset `off` (a private variable) instead of p.w_off, over binding `name`. */
function dqAt(dq: string, name: string, off: string): string {
  return (name === "w" ? dq : readerOver(dq, name)).replace(/\bp\.w_off\b/g, off);
}

/**
 * parts 2: gate (a, from w) and up (b, from wu) of one row a thread. parts 1: a's row only, or with rows2 also row
 * + 64 of a 128-row workgroup into b (each x load feeding both, as the tiled matmul's tileRows 2; the same bits).
 */
const body = (parts: number, rows2 = false) => /* wgsl */ `
  let row = ${rows2 ? "wid(wg, nw) * 128u + li" : GID};
  let e = p.tab + wg.z * ${MOE_TILE_WORDS}u;
  if (row >= p.n) { return; }
  ${rows2 ? "let has1 = row + 64u < p.n; let row1 = select(row, row + 64u, has1);" : ""}
  off_a = tb[e];
  ${parts === 2 ? "off_b = tb[e + 1u];" : ""}
  let m = tb[e + 2u];
  var a: array<f32, ${MOE_TILE_TOKENS}>;
  ${parts === 2 || rows2 ? `var b: array<f32, ${MOE_TILE_TOKENS}>;` : ""}
  for (var u = 0u; u < p.k / 32u; u++) {
    let va = dq32(row, u);
    ${parts === 2 ? "let vb = dq32_wu(row, u);" : rows2 ? "let vb = dq32(row1, u);" : ""}
    for (var tt = 0u; tt < m; tt++) {
      let xb = (tb[e + 3u + tt] * p.k + u * 32u) / 4u;
      var sa = 0.0;
      ${parts === 2 || rows2 ? "var sb = 0.0;" : ""}
      ${dot32(parts === 2 || rows2 ? [["sa", "va"], ["sb", "vb"]] : [["sa", "va"]])}
      a[tt] += sa;
      ${parts === 2 || rows2 ? "b[tt] += sb;" : ""}
    }
  }`;

/** o[orow] = silu(gate · x[xrow]) · (up · x[xrow]) for each token of tile z (gate from `w`, up from `wu`). */
export function moeTiledGateUpWgsl(dq: string): string {
  return /* wgsl */ `
struct P { k: u32, n: u32, tab: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wu: array<u32>;
@group(0) @binding(3) var<storage, read> tb: array<u32>;
@group(0) @binding(4) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
var<private> off_a: u32;
var<private> off_b: u32;
${HEAD}
${dqAt(dq, "w", "off_a")}
${dqAt(dq, "wu", "off_b")}
${MAIN}
${body(2)}
  for (var tt = 0u; tt < m; tt++) { o[tb[e + ${3 + MOE_TILE_TOKENS}u + tt] * p.n + row] = a[tt] / (1.0 + exp(-a[tt])) * b[tt]; }
}`;
}

/** o[orow] = down · a[arow] for each token of tile z; rows2: two rows a thread (128 a workgroup). */
export function moeTiledDownWgsl(dq: string, rows2 = false): string {
  return /* wgsl */ `
struct P { k: u32, n: u32, tab: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> tb: array<u32>;
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
var<private> off_a: u32;
${HEAD}
${dqAt(dq, "w", "off_a")}
${MAIN}
${body(1, rows2)}
  for (var tt = 0u; tt < m; tt++) {
    let ob = tb[e + ${3 + MOE_TILE_TOKENS}u + tt] * p.n;
    o[ob + row] = a[tt];
    ${rows2 ? "if (has1) { o[ob + row + 64u] = b[tt]; }" : ""}
  }
}`;
}

/** An expert's rows as tiles: [w0, w1, m, xrows.., orows..] of at most 16 tokens each, appended to `tab`. */
export function pushTiles(tab: number[], w0: number, w1: number, xrows: ArrayLike<number>, orow0: number): void {
  for (let s = 0; s < xrows.length; s += MOE_TILE_TOKENS) {
    const m = Math.min(MOE_TILE_TOKENS, xrows.length - s);
    const t = new Array<number>(MOE_TILE_WORDS).fill(0);
    t[0] = w0;
    t[1] = w1;
    t[2] = m;
    for (let i = 0; i < m; i++) {
      t[3 + i] = xrows[s + i];
      t[3 + MOE_TILE_TOKENS + i] = orow0 + s + i;
    }
    tab.push(...t);
  }
}
