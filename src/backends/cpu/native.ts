// The fast CPU backend: matmul, rmsNorm (f32 weights), rope, attention (sinks and sliding windows included), add,
// swiglu (and gpt-oss's clamped one), bias rows, scatter-add, the gated delta rule and the fused expert FFN run in
// the native addon (SIMD dot products on a persistent thread pool, reading weights and activations in place); embed, kvStore and gatherRows are row copies and stay in TypeScript. Owned Q4_K / Q8_0
// weights are repacked in place into 8-row interleaved layouts, and weight memory comes on huge pages (allocHost).
// Buffers and weights are the scalar backend's (f32 arrays, host bytes), so the two mix freely.
import { availableParallelism } from "node:os";
import type { AttentionParams, Buf, CopyParams, DeltaNetParams, ExpertRows, HostWeight, OpName, RopeOptions, Weight } from "../backend.js";
import { DelegatingBackend, heads3d, ropeByGather, ropeIsPlain, ropeTable, weightDims } from "../backend.js";
import { ScalarBackend } from "./scalar.js";
import { loadNativeAddon, nativeAddonError, type NativeAddon } from "./native-addon.js";
import { Q4_K, Q8_0 } from "../../quant/index.js";

/**
 * Q4_K rows repacked in place into groups of 8 interleaved rows (native/src/k_quants.c): a private type id, not
 * ggml's. Only the native matmul, expertFfn, moeFfn and embed read it.
 */
export const Q4_K_R8 = 1012;
/** Q8_0 rows repacked in place into groups of 8 interleaved rows (native/src/q8_0.c), likewise private. */
export const Q8_0_R8 = 1008;

const HUGE_PAGE = 2 << 20;
const F32_TYPE = 0;

/** ggml types the native matmul takes: F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, the
 *  i-quants (IQ2_XXS 16 .. IQ4_XS 23, IQ1_M 29), BF16, MXFP4 (39), and the private Q4_K_R8 and Q8_0_R8; weights of other types
 *  are handed to the scalar reference. */
const NATIVE_MATMUL_TYPES = new Set([0, 1, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 29, 30, 39, Q4_K_R8, Q8_0_R8]);

export interface NativeBackendOptions {
  /** Threads for matmul, the calling thread included (default os.availableParallelism()). The pool is process-wide. */
  threads?: number;
}

/** Whether the native addon is built and loads on this machine. */
export function nativeAvailable(): boolean {
  return loadNativeAddon() !== undefined;
}

/** The Float32Array behind a scalar-backend buffer. */
function f32(b: Buf): Float32Array {
  const data = (b as { data?: unknown }).data;
  if (!(data instanceof Float32Array)) throw new TypeError("native backend: buffer was not allocated by the native or scalar backend");
  return data;
}

/**
 * The layout the kernels read: a repacked weight keeps its ggml type in `type` (what models and supports()
 * see) and its private 8-row layout here, so the layout never leaves this backend.
 */
export function nativeLayout(w: Weight): number {
  return (w as { layout?: number }).layout ?? w.type;
}

/** The host bytes behind a weight uploaded by this (or the scalar) backend. */
function hostBytes(w: Weight): Uint8Array {
  const bytes = (w as { bytes?: unknown }).bytes;
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`native backend: weight '${w.name}' was not uploaded by the native or scalar backend`);
  return bytes;
}

/** Q4_K_R8 block of 8 rows (native/src/k_quants.c): d[8], dmin[8] (f16), scale bytes 0-3, 4-7, 8-11 of each row, then qs. */
const R8 = { D: 0, DMIN: 16, U0: 32, U1: 64, U2: 96, QS: 128, BLOCK: 1152 } as const;

/** Row r of a Q4_K_R8 matrix of k values per row, back in plain Q4_K blocks (the inverse of the repack). */
export function q4kR8Row(bytes: Uint8Array, k: number, r: number, out: Uint8Array): void {
  const nb = k / Q4_K.blockSize, rr = r & 7, base = (r >> 3) * 8 * nb * Q4_K.bytesPerBlock;
  for (let i = 0; i < nb; i++) {
    const o = base + i * R8.BLOCK, b = i * Q4_K.bytesPerBlock; // block_q4_K: d, dmin, scales[12], qs[128]
    out.set(bytes.subarray(o + R8.D + 2 * rr, o + R8.D + 2 * rr + 2), b);
    out.set(bytes.subarray(o + R8.DMIN + 2 * rr, o + R8.DMIN + 2 * rr + 2), b + 2);
    out.set(bytes.subarray(o + R8.U0 + 4 * rr, o + R8.U0 + 4 * rr + 4), b + 4);
    out.set(bytes.subarray(o + R8.U1 + 4 * rr, o + R8.U1 + 4 * rr + 4), b + 8);
    out.set(bytes.subarray(o + R8.U2 + 4 * rr, o + R8.U2 + 4 * rr + 4), b + 12);
    for (let v = 0; v < 32; v++) {
      const at = o + R8.QS + 32 * v + 4 * rr;
      out.set(bytes.subarray(at, at + 4), b + 16 + 4 * v);
    }
  }
}

/** Row r of a Q8_0_R8 matrix of k values per row, back in plain Q8_0 blocks: d[8] (f16), then 4-byte chunks of 8 rows. */
export function q80R8Row(bytes: Uint8Array, k: number, r: number, out: Uint8Array): void {
  const nb = k / Q8_0.blockSize, rr = r & 7, base = (r >> 3) * 8 * nb * Q8_0.bytesPerBlock;
  for (let i = 0; i < nb; i++) {
    const o = base + i * 8 * Q8_0.bytesPerBlock, b = i * Q8_0.bytesPerBlock; // block_q8_0: d, qs[32]
    out.set(bytes.subarray(o + 2 * rr, o + 2 * rr + 2), b);
    for (let v = 0; v < 8; v++) {
      const at = o + 16 + 32 * v + 4 * rr;
      out.set(bytes.subarray(at, at + 4), b + 2 + 4 * v);
    }
  }
}

export class NativeBackend extends DelegatingBackend {
  readonly name = "native";
  readonly threads: number;
  private readonly addon: NativeAddon;
  /** Repack owned Q4_K / Q8_0 weights (upload): only where this CPU has SIMD kernels for the 8-row layouts (x86
   *  AVX2 / AVX-512; the portable C kernels other CPUs would run are correct but slower than their plain dots). */
  private readonly repackR8: boolean;

  constructor(opts: NativeBackendOptions = {}) {
    super(new ScalarBackend()); // buffers, host weights, and embed / kvStore / gatherRows / zero (row copies)
    const addon = loadNativeAddon();
    if (!addon) throw new Error(`native backend unavailable: ${nativeAddonError()}`);
    this.addon = addon;
    const want = opts.threads ?? availableParallelism();
    if (!Number.isInteger(want) || want < 1) throw new RangeError(`native backend: threads must be a positive integer, got ${want}`);
    this.threads = addon.setThreads(want);
    this.repackR8 = addon.kernelLevels().some((l) => l === "avx2" || l === "avx512");
  }

  /** The SIMD kernel set in use ("avx512", "avx2", "neon" or "scalar"). */
  get kernels(): string {
    return this.addon.kernelLevel();
  }

  override supports(op: OpName, type?: number): boolean {
    if (op === "expert_ffn" || op === "moe_ffn") return type === undefined || NATIVE_MATMUL_TYPES.has(type);
    return this.ref.supports(op, type);
  }

  delegates(op: OpName, type?: number): boolean {
    return (op === "matmul" || op === "matmul_heads") && type !== undefined && !NATIVE_MATMUL_TYPES.has(type);
  }

  /**
   * One expert's FFN on nRows rows of x[nRows, D]: out = down(silu(gate x) * up x), gate/up of shape [D, F] and
   * down [F, D] (any of F32, F16, BF16, Q8_0, Q4_K, Q6_K). x is quantised once for gate and up, the intermediate
   * once for down. Weights of other types run as the separate ops.
   */
  expertFfn(out: Buf, x: Buf, gate: Weight, up: Weight, down: Weight, nRows: number): void {
    const g = weightDims(gate), u = weightDims(up), dn = weightDims(down);
    if (u.k !== g.k || u.n !== g.n || dn.k !== g.n || dn.n !== g.k)
      throw new RangeError(`native expertFfn: shapes gate [${gate.shape}] up [${up.shape}] down [${down.shape}] do not chain`);
    const D = g.k, F = g.n;
    if (![gate, up, down].every((w) => NATIVE_MATMUL_TYPES.has(nativeLayout(w)))) {
      const ge = this.alloc(nRows * F), ue = this.alloc(nRows * F);
      this.matmul(ge, gate, x, nRows);
      this.matmul(ue, up, x, nRows);
      this.swiglu(ge, ge, ue, nRows * F);
      this.matmul(out, down, ge, nRows);
      this.free(ge);
      this.free(ue);
      return;
    }
    this.addon.expertFfn(nativeLayout(gate), hostBytes(gate), nativeLayout(up), hostBytes(up), nativeLayout(down), hostBytes(down), f32(x), f32(out), D, F, nRows);
  }

  /** q, k and v (or any weights sharing x) in one pool run, x quantised once per activation format. */
  matmulSet(outs: readonly Buf[], ws: readonly Weight[], x: Buf, nTokens: number): void {
    if (!ws.every((w) => NATIVE_MATMUL_TYPES.has(nativeLayout(w)))) {
      ws.forEach((w, i) => this.matmul(outs[i], w, x, nTokens));
      return;
    }
    const K = weightDims(ws[0]).k;
    const dims = ws.map((w) => weightDims(w));
    if (dims.some((d) => d.k !== K)) throw new RangeError(`native matmulSet: weights of different K: ${ws.map((w) => `[${w.shape}]`).join(" ")}`);
    const o = outs.map((b, i) => f32(b).subarray(0, nTokens * dims[i].n));
    this.addon.matmulSet(Int32Array.from(ws, nativeLayout), ws.map(hostBytes), o, f32(x), K, nTokens);
  }

  /** All of a layer's routed experts in one pool run (every gate/up chunk, then every down chunk) instead of two runs per expert. */
  moeFfn(out: Buf, x: Buf, experts: readonly ExpertRows[]): void {
    const a = this.moeArgs(out, x, experts);
    if (a) this.addon.moeFfn(...a);
  }
  /**
   * How long the pool's threads spin after wake() (µs; 0: wake() does nothing). A split tier wakes them as it
   * waits for a layer's routing: they sleep after 200 µs idle, and the GPU's round trip between two layers' host
   * experts takes longer, so each layer's run waited for 11 threads to wake. Here (2 threads, a3b's experts, a run
   * each ms) the run took 0.76 ms poked 0.3 ms before against 1.17 not.
   */
  wakeSpinUs = 2000;
  wake(): void {
    if (this.wakeSpinUs > 0) this.addon.poke?.(this.wakeSpinUs);
  }
  /**
   * A job of at most this many token rows (a decode token's host experts: a few) is begun on the pool's worker
   * threads and joined by this thread once it goes idle (setImmediate), its share computed there: no libuv thread
   * to wake and no completion to come back through the event loop. A larger one (a prompt's) runs from a libuv
   * thread, so the event loop is never blocked for long. 0: always the latter.
   */
  joinRowsMax = 16;
  /** moeFfn while the JS thread goes on (recording a GPU's share meanwhile): begun and joined, or from a libuv thread. */
  async moeFfnAsync(out: Buf, x: Buf, experts: readonly ExpertRows[]): Promise<void> {
    const a = this.moeArgs(out, x, experts);
    if (!a) return;
    const { moeFfnBegin, moeFfnJoin } = this.addon;
    if (!moeFfnBegin || !moeFfnJoin || a[4].length > this.joinRowsMax) return this.addon.moeFfnAsync(...a);
    const ticket = moeFfnBegin(...a);
    // The closure holds a (rows, scales: made here) until the join; a later native run on this thread joins first.
    await new Promise<void>((resolve, reject) =>
      setImmediate(() => {
        try {
          moeFfnJoin(ticket, a);
          resolve();
        } catch (e) {
          reject(e);
        }
      }),
    );
  }
  private moeArgs(out: Buf, x: Buf, experts: readonly ExpertRows[]): Parameters<NativeAddon["moeFfn"]> | undefined {
    if (experts.length === 0) return undefined;
    const { k: D, n: F } = weightDims(experts[0].gate);
    const types = new Int32Array(3 * experts.length);
    const weights: Uint8Array[] = [];
    const offsets = new Int32Array(experts.length + 1);
    experts.forEach((e, i) => {
      const g = weightDims(e.gate), u = weightDims(e.up), dn = weightDims(e.down);
      if (g.k !== D || g.n !== F || u.k !== D || u.n !== F || dn.k !== F || dn.n !== D)
        throw new RangeError(`native moeFfn: expert ${i} shapes gate [${e.gate.shape}] up [${e.up.shape}] down [${e.down.shape}] do not chain as [${D}, ${F}]`);
      if (e.rows.length !== e.scales.length) throw new RangeError(`native moeFfn: expert ${i} has ${e.rows.length} rows and ${e.scales.length} scales`);
      types.set([nativeLayout(e.gate), nativeLayout(e.up), nativeLayout(e.down)], 3 * i);
      weights.push(hostBytes(e.gate), hostBytes(e.up), hostBytes(e.down));
      offsets[i + 1] = offsets[i] + e.rows.length;
    });
    const rows = new Int32Array(offsets[experts.length]);
    const scales = new Float32Array(rows.length);
    experts.forEach((e, i) => {
      rows.set(e.rows, offsets[i]);
      scales.set(e.scales, offsets[i]);
    });
    return [types, weights, f32(x), f32(out), rows, offsets, scales, D, F];
  }

  /**
   * Keeps the host bytes; the addon reads them in place. A Q4_K or Q8_0 matrix whose bytes the upload owns
   * (w.owned) and whose rows come in groups of 8 is first repacked in place into Q4_K_R8 / Q8_0_R8 (same size,
   * no copy), which only the native matmul / expertFfn / moeFfn and embed read (token_embd too: a tied output
   * matmul is a tenth of a decode step's bytes on a3b, and embed rebuilds the few rows it needs).
   * Only on CPUs with SIMD kernels for them (see repackR8).
   */
  override upload(w: HostWeight): Weight {
    const [k, n] = w.shape;
    const to = w.type === Q4_K.type && k % Q4_K.blockSize === 0 ? Q4_K_R8 : w.type === Q8_0.type && k % Q8_0.blockSize === 0 ? Q8_0_R8 : 0;
    if (this.repackR8 && to && w.owned && w.shape.length === 2 && n % 8 === 0 && n > 0) {
      this.addon.repackR8(w.type, w.bytes, k, n);
      return { name: w.name, type: w.type, layout: to, shape: w.shape, bytes: w.bytes } as Weight; // the scalar handle's shape (hostBytes) plus the layout
    }
    return this.ref.upload(w);
  }
  hostCopyBytes(dst: Uint8Array, src: Uint8Array): void {
    this.addon.copyBytes(dst, src);
  }
  /** A repacked weight's bytes back in plain Q4_K / Q8_0 blocks, in place (upload's repack undone). */
  disown(w: Weight): void {
    const layout = nativeLayout(w);
    if (layout !== Q4_K_R8 && layout !== Q8_0_R8) return;
    const { k, n } = weightDims(w);
    this.addon.repackR8(w.type, hostBytes(w), k, n, 1);
  }
  /**
   * Weight memory on transparent huge pages (Linux, THP "madvise" or "always"): a decode step streams every
   * weight once, and with 4 KiB pages the page walks cost matvecs up to a fifth of their DRAM bandwidth here.
   * Small requests, or no THP: a plain array.
   */
  allocHost(bytes: number): Uint8Array {
    if (bytes < HUGE_PAGE) return new Uint8Array(bytes);
    const raw = new Uint8Array(bytes + HUGE_PAGE); // zeroed and not yet touched: advised pages fault in huge
    const at = this.addon.adviseHugePages(raw);
    return at < 0 || at + bytes > raw.length ? raw.subarray(0, bytes) : raw.subarray(at, at + bytes);
  }

  /** Rows of a repacked table (Q4_K_R8, Q8_0_R8) are rebuilt as plain blocks and dequantised; others as the scalar backend does. */
  override embed(out: Buf, table: Weight, ids: Int32Array): void {
    const layout = nativeLayout(table);
    const plain = layout === Q4_K_R8 ? { f: Q4_K, row: q4kR8Row } : layout === Q8_0_R8 ? { f: Q8_0, row: q80R8Row } : undefined;
    if (!plain) return this.ref.embed(out, table, ids);
    const { k, n } = weightDims(table);
    const o = f32(out), bytes = hostBytes(table), row = new Uint8Array((k / plain.f.blockSize) * plain.f.bytesPerBlock);
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t];
      if (id < 0 || id >= n) throw new RangeError(`token id ${id} out of range [0, ${n})`);
      plain.row(bytes, k, id, row);
      plain.f.dequantRow(row, o.subarray(t * k, (t + 1) * k), k);
    }
  }

  override matmul(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    const layout = nativeLayout(w);
    if (!NATIVE_MATMUL_TYPES.has(layout)) return this.ref.matmul(out, w, x, nTokens);
    const { k, n } = weightDims(w);
    this.addon.matmul(layout, hostBytes(w), f32(x), f32(out), k, n, nTokens);
  }

  /** Every head in one pool run (3-D weights are never repacked); an older addon: the matmul head by head. */
  override matmulHeads(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    const layout = nativeLayout(w);
    if (!NATIVE_MATMUL_TYPES.has(layout)) return this.ref.matmulHeads(out, w, x, nTokens);
    const [k, n, nHead] = heads3d(w);
    if (this.addon.matmulHeads) return this.addon.matmulHeads(layout, hostBytes(w), f32(x), f32(out), k, n, nHead, nTokens);
    const bytes = hostBytes(w), perHead = bytes.byteLength / nHead;
    const xs = f32(x), o = f32(out);
    const xh = new Float32Array(nTokens * k), oh = new Float32Array(nTokens * n);
    for (let h = 0; h < nHead; h++) {
      for (let t = 0; t < nTokens; t++) xh.set(xs.subarray((t * nHead + h) * k, (t * nHead + h + 1) * k), t * k);
      this.addon.matmul(layout, bytes.subarray(h * perHead, (h + 1) * perHead), xh, oh, k, n, nTokens);
      for (let t = 0; t < nTokens; t++) o.set(oh.subarray(t * n, (t + 1) * n), (t * nHead + h) * n);
    }
  }

  override rmsNorm(out: Buf, x: Buf, w: Weight, eps: number, rowLen: number, nRows: number): void {
    if (w.type !== 0) return this.ref.rmsNorm(out, x, w, eps, rowLen, nRows); // norm weights are F32 in practice
    this.addon.rmsNorm(f32(out), f32(x), hostBytes(w), eps, rowLen, nRows);
  }
  override rope(x: Buf, pos: Int32Array, nHead: number, headDim: number, freqBase: number, nRot = headDim, opts?: RopeOptions): void {
    if (!ropeIsPlain(opts)) {
      // NORM / offset / YaRN: the reference's angles (ropeAngles), rotated natively; what the reference refuses, it refuses.
      const off = opts?.offset ?? 0;
      if (!this.addon.ropeTable || nRot % 2 !== 0 || nRot < 2 || off < 0 || off + nRot > headDim) return this.ref.rope(x, pos, nHead, headDim, freqBase, nRot, opts);
      return this.addon.ropeTable(f32(x), ropeTable(pos, nRot, freqBase, opts?.yarn), nHead, headDim, nRot, off, opts?.mode === "norm" ? 1 : 0);
    }
    if (nRot === headDim) return this.addon.rope(f32(x), pos, nHead, headDim, freqBase);
    if (nRot % 2 !== 0 || nRot < 2 || nRot > headDim) return this.ref.rope(x, pos, nHead, headDim, freqBase, nRot); // which refuses it
    ropeByGather(f32(x), pos.length * nHead, headDim, nRot, (y) => this.addon.rope(y, pos, nHead, nRot, freqBase));
  }
  override attention(out: Buf, q: Buf, kCache: Buf, vCache: Buf, p: AttentionParams): void {
    if (p.sinks || p.window !== undefined) {
      // gpt-oss: sinks and a sliding window (f16 probabilities or not); f32 sinks (their type in real files), else the reference.
      const sinks = p.sinks === undefined || p.sinks instanceof Float32Array ? p.sinks : p.sinks.type === F32_TYPE ? hostBytes(p.sinks) : undefined;
      const badWindow = p.window !== undefined && !(Number.isInteger(p.window) && p.window >= 1); // the reference refuses it
      if (!this.addon.attentionMasked || p.nTokens === 0 || (p.sinks && !sinks) || badWindow) return this.ref.attention(out, q, kCache, vCache, p);
      return this.addon.attentionMasked(f32(out), f32(q), f32(kCache), f32(vCache), p.nTokens, p.startPos, p.nHead, p.nHeadKv, p.headDim, p.vDim ?? p.headDim,
        p.scale, p.f16Probs ? 1 : 0, sinks ?? null, p.window ?? 0);
    }
    if ((p.vDim !== undefined && p.vDim !== p.headDim) || p.f16Probs) {
      // MLA: V heads narrower than K heads, f16 probabilities.
      if (!this.addon.attentionExt || p.nTokens === 0) return this.ref.attention(out, q, kCache, vCache, p);
      return this.addon.attentionExt(f32(out), f32(q), f32(kCache), f32(vCache), p.nTokens, p.startPos, p.nHead, p.nHeadKv, p.headDim, p.vDim ?? p.headDim, p.scale, p.f16Probs ? 1 : 0);
    }
    this.addon.attention(f32(out), f32(q), f32(kCache), f32(vCache), p.nTokens, p.startPos, p.nHead, p.nHeadKv, p.headDim, p.scale);
  }
  override add(out: Buf, a: Buf, b: Buf, n: number): void {
    this.addon.add(f32(out), f32(a), f32(b), n);
  }
  override swiglu(out: Buf, gate: Buf, up: Buf, n: number): void {
    this.addon.swiglu(f32(out), f32(gate), f32(up), n);
  }
  override swigluOai(out: Buf, gate: Buf, up: Buf, n: number, alpha: number, limit: number): void {
    if (!this.addon.swigluOai) return this.ref.swigluOai(out, gate, up, n, alpha, limit);
    this.addon.swigluOai(f32(out), f32(gate), f32(up), n, alpha, limit);
  }
  override addRows(out: Buf, bias: Weight, rowLen: number, nRows: number): void {
    // Biases are F32 in real files; another type (or a shape that does not match, which the reference refuses) goes there.
    if (!this.addon.addRows || bias.type !== F32_TYPE || bias.shape.reduce((a, v) => a * v, 1) !== rowLen) return this.ref.addRows(out, bias, rowLen, nRows);
    this.addon.addRows(f32(out), hostBytes(bias), rowLen, nRows);
  }
  override scatterAddRows(out: Buf, x: Buf, rows: Int32Array, scales: Float32Array, rowLen: number): void {
    this.addon.scatterAddRows(f32(out), f32(x), rows, scales, rowLen);
  }
  override copy(out: Buf, x: Buf, p: CopyParams): void {
    if (!this.addon.copyRows) return this.ref.copy(out, x, p);
    this.addon.copyRows(f32(out), f32(x), p.rows, p.n, p.src.offset, p.src.stride, p.dst.offset, p.dst.stride, p.roundF16 ? 1 : 0);
  }
  override convSilu(out: Buf, x: Buf, state: Buf, w: Weight, nTokens: number, channels: number): void {
    // Conv weights are F32 in real files; another type goes to the reference, which dequantises it.
    const { k: taps, n } = weightDims(w);
    if (!this.addon.convSilu || w.type !== F32_TYPE || n !== channels) return this.ref.convSilu(out, x, state, w, nTokens, channels);
    this.addon.convSilu(f32(out), f32(x), f32(state), hostBytes(w), nTokens, channels, taps);
  }
  override l2Norm(out: Buf, x: Buf, eps: number, rowLen: number, nRows: number): void {
    if (!this.addon.l2Norm) return this.ref.l2Norm(out, x, eps, rowLen, nRows);
    this.addon.l2Norm(f32(out), f32(x), eps, rowLen, nRows);
  }
  override deltaGates(g: Buf, beta: Buf, alpha: Buf, betaRaw: Buf, dtBias: Weight, a: Weight, nHead: number, nRows: number): void {
    if (!this.addon.deltaGates || dtBias.type !== F32_TYPE || a.type !== F32_TYPE) return this.ref.deltaGates(g, beta, alpha, betaRaw, dtBias, a, nHead, nRows);
    this.addon.deltaGates(f32(g), f32(beta), f32(alpha), f32(betaRaw), hostBytes(dtBias), hostBytes(a), nHead, nRows);
  }
  override rmsNormGated(out: Buf, x: Buf, w: Weight, gate: Buf, eps: number, rowLen: number, nRows: number): void {
    if (!this.addon.rmsNormGated || w.type !== F32_TYPE) return this.ref.rmsNormGated(out, x, w, gate, eps, rowLen, nRows);
    this.addon.rmsNormGated(f32(out), f32(x), hostBytes(w), f32(gate), eps, rowLen, nRows);
  }
  override sigmoidMul(out: Buf, x: Buf, gate: Buf, n: number): void {
    if (!this.addon.sigmoidMul) return this.ref.sigmoidMul(out, x, gate, n);
    this.addon.sigmoidMul(f32(out), f32(x), f32(gate), n);
  }
  override gatedDeltaNet(out: Buf, q: Buf, k: Buf, v: Buf, g: Buf, beta: Buf, state: Buf, stateOut: Buf, p: DeltaNetParams): void {
    if (!this.addon.gatedDeltaNet) return this.ref.gatedDeltaNet(out, q, k, v, g, beta, state, stateOut, p); // an addon built before the kernel
    this.addon.gatedDeltaNet(f32(out), f32(q), f32(k), f32(v), f32(g), f32(beta), f32(state), f32(stateOut), p.nTokens, p.nHeadK, p.nHeadV, p.headDim, p.kvMap === "tile" ? 1 : 0);
  }
}
