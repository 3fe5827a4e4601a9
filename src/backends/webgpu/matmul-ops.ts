/// <reference types="@webgpu/types" />
// The WebGPU backend's matmuls: a decode token's matvec (matvec.ts: the reader of the weight's type, its shape by
// row count), a prompt's tiled matmul, q/k/v as one matvec set, and per-head 3-D weights; with the readers that
// take x quantised to 8 bits (intDot) and x's quantisation for them. The knobs (intDot, q4kReader, matvecRows,
// matvecLanes, tileRows, tiledMinGroups) are the backend's, which benches set; dispatches go through its recorder.
import type { Buf, Weight } from "../backend.js";
import { heads3d, weightDims } from "../backend.js";
import { GpuSplitWeight, type GpuWeight } from "./arena.js";
import { gbuf, gw, rowRuns } from "./buffers.js";
import { matmulHeadsWgsl, QUANT_X_WGSL, quantXWords, tiledMatmulWgsl, TILE_ROWS, TILE_TOKENS } from "./kernels.js";
import type { GpuQuant } from "./quant/index.js";
import { Q4_K_GPU, Q4_K_GPU_PAIR, Q4_K_GPU_Q8X, Q4_K_GPU_VEC4 } from "./quant/q4_k.js";
import { Q8_0_GPU_Q8X } from "./quant/q8_0.js";
import { type MatvecShape, matvecGroups, matvecSetWgsl, matvecShape, matvecWgsl, shapeKey } from "./matvec.js";
import type { WebGpuBackend } from "./webgpu.js";

/** A matvec reader's part of its pipeline key. */
const readerKey = (q: GpuQuant) => (q === Q4_K_GPU_PAIR ? "p" : q === Q4_K_GPU_VEC4 ? "v" : q.intX ? "i" : "");
/** The readers against x quantised to 8 bits (WebGpuBackend.intDot), by type. */
const INT_READERS = new Map([Q4_K_GPU_Q8X, Q8_0_GPU_Q8X].map((q) => [q.type, q]));
export const Q4_K_READERS = { word: Q4_K_GPU, pair: Q4_K_GPU_PAIR, vec4: Q4_K_GPU_VEC4 } as const;

/** How a matmul of n rows of k values over t tokens is dispatched (the GPU bench prints it beside its figures). */
export interface MatmulPlan {
  /** matvec: each token re-reads the weights (one token per z); tiled: a row per thread, 16 tokens per weight read. */
  readonly kernel: "matvec" | "tiled";
  /** Workgroups (64 threads each) over x/y, and z deep. */
  readonly workgroups: number;
  readonly z: number;
  readonly threadsPerRow: number;
  readonly rowsPerWorkgroup: number;
  readonly tokensPerWorkgroup: number;
}
export function matmulPlan(k: number, n: number, t: number, q: Pick<GpuQuant, "chunkValues"> = { chunkValues: 256 }, tileRows: 1 | 2 = 1): MatmulPlan {
  // Several tokens: the tiled kernel reads each weight unit once per 16 tokens (see tiledMatmulWgsl for why it is
  // shaped to compile fast on lavapipe). One: the matvec (matvec.ts), each token of z re-reading the weights.
  if (t > 1) return { kernel: "tiled", workgroups: Math.ceil(n / (TILE_ROWS * tileRows)), z: Math.ceil(t / TILE_TOKENS), threadsPerRow: 1, rowsPerWorkgroup: TILE_ROWS * tileRows, tokensPerWorkgroup: TILE_TOKENS };
  const s = matvecShape(q, k, n);
  return { kernel: "matvec", workgroups: matvecGroups(n, s), z: t, threadsPerRow: s.g, rowsPerWorkgroup: (64 / s.g) * s.r, tokensPerWorkgroup: 1 };
}

export class GpuMatmul {
  /** int8Dot: the device has WGSL's packed 8-bit dot products (intDot's readers need them). */
  constructor(private readonly be: WebGpuBackend, private readonly int8Dot: boolean) {}

  /** The matvec reader of a weight's type (its pipeline key's part: readerKey); aligned: every weight read starts at a 16-byte boundary. */
  private reader(q: GpuQuant, aligned: boolean, k: number): GpuQuant {
    const r = (this.be.intDot && this.int8Dot && INT_READERS.get(q.type)) || (q.type === Q4_K_GPU.type ? Q4_K_READERS[this.be.q4kReader] : q);
    return r.vec4 && (!aligned || (r.intX && k % 64 !== 0)) ? r.vec4.fallback : r;
  }
  /** x's first `rows` rows of k as reader q reads them: x itself, or quantised to 8 bits into scratch. */
  /** @internal */
  xFor(q: GpuQuant, x: GPUBuffer, k: number, rows: number): GPUBuffer {
    if (!q.intX) return x;
    const qd = this.be.rec.quantised;
    if (rows === 1 && qd && qd.src === x && qd.k === k) return qd.q;
    const o = this.be.scratchBuf("xq", rows * quantXWords(k));
    this.be.rec.dispatch("quant_x", () => QUANT_X_WGSL, [k, rows], [x, o.buffer], Math.ceil((rows * k) / 32 / 64));
    return o.buffer;
  }
  /** A matvec over weights of w's type (rows of k, n rows): its reader, shape and pipeline key part `type+reader/shape`. */
  /** @internal */
  plan(w: GpuWeight, aligned: boolean, k: number, n: number): { q: GpuQuant; s: MatvecShape; key: string } {
    const q = this.reader(w.quant, aligned, k), s = matvecShape(q, k, n, this.be.subgroups, this.be.matvecRows, this.be.matvecLanes);
    return { q, s, key: `${w.type}${readerKey(q)}/${shapeKey(s)}` };
  }

  matmul(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    const parts = rowRuns(w, "matmul");
    const { k, n } = weightDims(w);
    if (k % 32 !== 0) throw new RangeError(`webgpu matmul: '${w.name}' rows of ${k} values are not whole units of 32`);
    const xs = gbuf(x), o = gbuf(out);
    if (xs.length < nTokens * k || o.length < nTokens * n) throw new RangeError(`webgpu matmul '${w.name}': x has ${xs.length} values, out ${o.length}; need ${nTokens * k} and ${nTokens * n}`);
    // A weight larger than a binding: each run of its rows into its columns of out (rows of n).
    for (const p of parts) this.matmulRaw(o.buffer, p.w, xs.buffer, k, weightDims(p.w).n, nTokens, n, p.row0);
  }
  /** out[t, row0 + r] (rows of outN) = the weight's row r · x[t], for its n rows. */
  private matmulRaw(out: GPUBuffer, w: GpuWeight, x: GPUBuffer, k: number, n: number, nTokens: number, outN = n, row0 = 0): void {
    const m = nTokens > 1 ? matmulPlan(k, n, nTokens, undefined, this.be.tileRows) : undefined;
    if (m && m.workgroups * m.z >= this.be.tiledMinGroups) {
      this.be.rec.dispatch(`matmul/${w.type}/tiled${this.be.tileRows}`, () => tiledMatmulWgsl(w.quant.wgsl, this.be.tileRows), [w.wordOffset, k, n, nTokens, outN, row0], [w.buffer, x, out], m.workgroups, m.z);
      return;
    }
    const { q, s, key } = this.plan(w, w.wordOffset % 4 === 0, k, n);
    const xs = this.xFor(q, x, k, nTokens);
    this.be.rec.dispatch(`matvec/${key}`, () => matvecWgsl(q, s), [w.wordOffset, k, n, nTokens, outN, row0], [w.buffer, xs, out], matvecGroups(n, s), nTokens);
  }

  /** q, k, v (any weights over one x) in one dispatch for a decode token when they are of one type; else one matmul each. */
  matmulSet(outs: readonly Buf[], ws: readonly Weight[], x: Buf, nTokens: number): void {
    if (ws.some((w) => w instanceof GpuSplitWeight)) return ws.forEach((w, i) => this.matmul(outs[i], w, x, nTokens));
    const gs = ws.map((w) => gw(w, "matmulSet"));
    const dims = gs.map((w) => weightDims(w));
    const k = dims[0].k;
    if (nTokens !== 1 || gs.length > 3 || gs.some((w) => w.type !== gs[0].type) || dims.some((d) => d.k !== k)) {
      ws.forEach((w, i) => this.matmul(outs[i], w, x, nTokens));
      return;
    }
    if (k % 32 !== 0) throw new RangeError(`webgpu matmulSet: rows of ${k} values are not whole units of 32`);
    const xs = gbuf(x), os = outs.map(gbuf);
    os.forEach((o, i) => {
      if (o.length < dims[i].n || xs.length < k) throw new RangeError(`webgpu matmulSet '${gs[i].name}': x has ${xs.length} values, out ${o.length}; need ${k} and ${dims[i].n}`);
    });
    const { q, s, key } = this.plan(gs[0], gs.every((w) => w.wordOffset % 4 === 0), k, Math.max(...dims.map((d) => d.n)));
    const params = [k];
    let first = 0;
    for (const [i, w] of gs.entries()) {
      params.push(w.wordOffset, dims[i].n, first);
      first += matvecGroups(dims[i].n, s);
    }
    const xb = this.xFor(q, xs.buffer, k, 1);
    this.be.rec.dispatch(`matvec_set/${key}/${gs.length}`, () => matvecSetWgsl(q, s, gs.length), params, [...gs.map((w) => w.buffer), xb, ...os.map((o) => o.buffer)], first, 1);
  }

  matmulHeads(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    const g = gw(w, "matmulHeads");
    const [k, nr, nh] = heads3d(g);
    if (k % 32 !== 0) throw new RangeError(`webgpu matmulHeads: '${g.name}' rows of ${k} values are not whole units of 32`);
    const xs = gbuf(x), o = gbuf(out);
    if (xs.length < nTokens * nh * k || o.length < nTokens * nh * nr) throw new RangeError(`webgpu matmulHeads '${g.name}': x has ${xs.length} values, out ${o.length}; need ${nTokens * nh * k} and ${nTokens * nh * nr}`);
    this.be.rec.dispatch(`matmul_heads/${g.type}`, () => matmulHeadsWgsl(g.quant.wgsl), [g.wordOffset, k, nr * nh, nTokens, nh, nr], [g.buffer, xs.buffer, o.buffer], Math.ceil((nTokens * nr * nh) / 64));
  }
}
