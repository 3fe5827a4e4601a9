/// <reference types="@webgpu/types" />
// The WebGPU backend's attention ops: rope, the fused q/k norm + rope + KV store, decode's fused norm + rope +
// attention, the KV store, and attention over the cache (chunked so a prompt's scores fit). Recorded through the
// backend's recorder, as moe.ts's ops are.
import type { AttentionParams, Buf, NormRopeStoreParams, RopeOptions } from "../backend.js";
import { F32, gbuf, gw, f32Word as f } from "./buffers.js";
import { ATTENTION_WGSL, ATTENTION4_WGSL, NORM_ROPE_ATTENTION_WGSL } from "./attention.js";
import { NORM_ROPE_STORE_WGSL, ROPE_WGSL } from "./kernels.js";
import { RopeTables } from "./rope-tables.js";
import type { WebGpuBackend } from "./webgpu.js";

/** Bytes of attention scores one dispatch may use (queries are chunked to fit). */
const SCORE_BYTES = 64 << 20;

export class GpuAttention {
  /** The rope ops' cos/sin tables. */
  private readonly ropeTables: RopeTables;

  constructor(private readonly be: WebGpuBackend) {
    this.ropeTables = new RopeTables(be.device);
  }

  rope(x: Buf, pos: Int32Array, nHead: number, headDim: number, freqBase: number, nRot = headDim, opts?: RopeOptions): void {
    const off = opts?.offset ?? 0;
    if (nRot % 2 !== 0 || nRot < 2 || off < 0 || off + nRot > headDim) throw new RangeError(`rope: nRot ${nRot} must be even, at least 2, and fit headDim ${headDim} from offset ${off}`);
    const half = nRot / 2;
    const { tab, tb } = this.ropeTables.table(pos, half, nRot, freqBase, opts?.yarn);
    this.be.rec.dispatch("rope", () => ROPE_WGSL, [pos.length * nHead, nHead, headDim, half, off, opts?.mode === "norm" ? 1 : 0, tb], [tab, gbuf(x).buffer], Math.ceil((pos.length * nHead * half) / 64));
  }
  normRopeStore(q: Buf, k: Buf, v: Buf, p: NormRopeStoreParams): void {
    const { nHead, nHeadKv, headDim: hd, pos, startPos } = p;
    if (hd > 512) throw new RangeError(`webgpu normRopeStore: heads of ${hd} values (at most 512)`);
    const T = pos.length, { qn, kn, kc, vc, half, tab, tb } = this.normRopeArgs(q, k, v, p, "normRopeStore");
    this.be.rec.dispatch("norm_rope_store", () => NORM_ROPE_STORE_WGSL, [T, nHead, nHeadKv, hd, half, f(p.eps), qn.wordOffset, kn.wordOffset, startPos, tb],
      [qn.buffer, kn.buffer, tab, gbuf(q).buffer, gbuf(k).buffer, gbuf(v).buffer, kc.buffer, vc.buffer], T * (nHead + 2 * nHeadKv));
  }

  normRopeAttention(out: Buf, q: Buf, k: Buf, v: Buf, p: NormRopeStoreParams & { readonly scale: number }): boolean {
    const { nHead, nHeadKv, headDim: hd, pos, startPos } = p;
    // Nine storage bindings, the norms read through one of them, whole vec4 heads the attention kernel's vec4 lanes cover.
    const fusable = this.be.fuseAttention && pos.length === 1 && hd % 4 === 0 && hd <= 256 && this.be.device.limits.maxStorageBuffersPerShaderStage >= 9;
    if (!fusable || gw(p.qNorm, "normRopeAttention").buffer !== gw(p.kNorm, "normRopeAttention").buffer) return false;
    if (nHead % nHeadKv !== 0) throw new RangeError(`attention: ${nHead} heads are not a multiple of ${nHeadKv} KV heads`);
    if (gbuf(out).length < nHead * hd) throw new RangeError(`normRopeAttention: out holds ${gbuf(out).length} values, less than a token's ${nHead * hd}`);
    const { qn, kn, kc, vc, half, tab, tb } = this.normRopeArgs(q, k, v, p, "normRopeAttention");
    const lmax = startPos + 1, scores = this.be.scratchBuf("attn.scores", nHead * lmax);
    const params = [0, 1, startPos, nHead, nHeadKv, hd, f(p.scale), lmax, 0, 0, 0, 0, hd, half, f(p.eps), qn.wordOffset, kn.wordOffset, tb];
    this.be.rec.dispatch("norm_rope_attention", () => NORM_ROPE_ATTENTION_WGSL, params, [gbuf(q).buffer, kc.buffer, vc.buffer, gbuf(out).buffer, scores.buffer, gbuf(k).buffer, gbuf(v).buffer, qn.buffer, tab], nHead);
    return true;
  }

  /** normRopeStore's and normRopeAttention's operands checked (naming `op`): the norms, caches and rope table. */
  private normRopeArgs(q: Buf, k: Buf, v: Buf, p: NormRopeStoreParams, op: string) {
    const { nHead, nHeadKv, headDim: hd, nRot, pos, startPos } = p;
    const T = pos.length, kvDim = nHeadKv * hd;
    const qn = gw(p.qNorm, op), kn = gw(p.kNorm, op);
    if (qn.type !== F32 || kn.type !== F32 || qn.shape[0] !== hd || kn.shape[0] !== hd) throw new RangeError(`webgpu ${op}: norms '${qn.name}', '${kn.name}' must be F32 of ${hd} values`);
    if (nRot % 2 !== 0 || nRot < 2 || nRot > hd) throw new RangeError(`rope: nRot ${nRot} must be even, at least 2, and fit headDim ${hd}`);
    const kc = gbuf(p.kCache), vc = gbuf(p.vCache);
    if ((startPos + T) * kvDim > kc.length || (startPos + T) * kvDim > vc.length) throw new RangeError(`${op}: positions [${startPos}, ${startPos + T}) overrun a cache of ${kc.length / kvDim}`);
    if (gbuf(q).length < T * nHead * hd || gbuf(k).length < T * kvDim || gbuf(v).length < T * kvDim) throw new RangeError(`${op}: q, k or v holds fewer than ${T} tokens' heads`);
    const half = nRot / 2;
    return { qn, kn, kc, vc, half, ...this.ropeTables.table(pos, half, nRot, p.freqBase) };
  }

  kvStore(kCache: Buf, vCache: Buf, k: Buf, v: Buf, startPos: number, nTokens: number, kvDim: number): void {
    const kc = gbuf(kCache), vc = gbuf(vCache);
    if ((startPos + nTokens) * kvDim > kc.length) throw new RangeError(`kvStore: positions [${startPos}, ${startPos + nTokens}) overrun a cache of ${kc.length / kvDim}`);
    if (nTokens === 0) return;
    // A dispatch, not copyBufferToBuffer: a copy ends the compute pass, and a decode step stores every layer.
    const rows = { rows: 1, n: nTokens * kvDim, src: { offset: 0, stride: 0 }, dst: { offset: startPos * kvDim, stride: 0 } };
    this.be.copyRows(kc, k, rows);
    this.be.copyRows(vc, v, rows);
  }

  attention(out: Buf, q: Buf, kCache: Buf, vCache: Buf, p: AttentionParams): void {
    const { nTokens, startPos, nHead, nHeadKv, headDim, scale } = p;
    const vd = p.vDim ?? headDim;
    if (!(Number.isInteger(vd) && vd >= 1 && vd <= headDim)) throw new RangeError(`attention: vDim ${vd} not in [1, headDim ${headDim}]`);
    const win = p.window ?? 0;
    if (p.window !== undefined && !(Number.isInteger(win) && win >= 1)) throw new RangeError(`attention: window ${p.window} is not a positive integer`);
    // Sinks: a weight's words in its buffer, or host values in the staging words (the buffer read after hostData()).
    let sinkBuf: GPUBuffer | undefined, sinkOff = 0;
    if (p.sinks instanceof Float32Array) {
      if (p.sinks.length < nHead) throw new RangeError(`attention: ${p.sinks.length} sinks for ${nHead} heads`);
      sinkOff = this.be.rec.hostData(p.sinks.subarray(0, nHead));
    } else if (p.sinks) {
      const s = gw(p.sinks, "attention");
      if (s.type !== F32 || s.shape[0] < nHead) throw new RangeError(`webgpu attention: sinks '${s.name}' must be F32 of ${nHead} values`);
      [sinkBuf, sinkOff] = [s.buffer, s.wordOffset];
    }
    if (nHead % nHeadKv !== 0) throw new RangeError(`attention: ${nHead} heads are not a multiple of ${nHeadKv} KV heads`);
    const lmax = startPos + nTokens;
    const chunk = Math.max(1, Math.min(nTokens, Math.floor(SCORE_BYTES / (4 * nHead * lmax))));
    const need = chunk * nHead * lmax;
    const scores = this.be.scratchBuf("attn.scores", need);
    const bufs = [gbuf(q).buffer, gbuf(kCache).buffer, gbuf(vCache).buffer, gbuf(out).buffer, scores.buffer, sinkBuf ?? this.be.rec.stageBuf];
    for (let t0 = 0; t0 < nTokens; t0 += chunk) {
      const tc = Math.min(chunk, nTokens - t0);
      const params = [t0, tc, startPos, nHead, nHeadKv, headDim, f(scale), lmax, win, p.sinks ? 1 : 0, sinkOff, p.f16Probs ? 1 : 0, vd];
      if (headDim % 4 === 0 && headDim <= 256 && vd === headDim) this.be.rec.dispatch("attention4", () => ATTENTION4_WGSL, params, bufs, tc * nHead);
      else this.be.rec.dispatch("attention", () => ATTENTION_WGSL, params, bufs, tc * nHead);
    }
  }
}
