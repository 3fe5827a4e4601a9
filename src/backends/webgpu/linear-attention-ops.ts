/// <reference types="@webgpu/types" />
// The WebGPU backend's ops of the gated DeltaNet layers (Qwen3-Next, Qwen3.5): the short causal convolution, the
// norms, the gates and the delta rule over a recurrent state; their WGSL is delta-net.ts's and kernels.ts's.
import type { Buf, DeltaNetParams, Weight } from "../backend.js";
import { weightDims } from "../backend.js";
import { F32, GpuBuf, gbuf, gw, f32Word as f } from "./buffers.js";
import { CONV_SILU_WGSL, DELTA_GATES_WGSL, DELTA_NET_WGSL } from "./delta-net.js";
import { normShape, normWgsl } from "./kernels.js";
import type { WebGpuBackend } from "./webgpu.js";

export class GpuLinearAttention {
  constructor(private readonly be: WebGpuBackend) {}

  convSilu(out: Buf, x: Buf, state: Buf, w: Weight, nTokens: number, channels: number): void {
    const g = gw(w, "convSilu");
    const { k: taps, n } = weightDims(g);
    if (g.type !== F32) throw new RangeError(`webgpu convSilu: weight '${g.name}' must be F32`);
    if (n !== channels || taps < 2) throw new RangeError(`convSilu: weight '${g.name}' has ${n} channels of ${taps} taps, expected ${channels} of at least 2`);
    const o = gbuf(out), xs = gbuf(x), st = gbuf(state);
    if (o === xs) throw new RangeError("webgpu convSilu: out may not alias x");
    if (xs.length < nTokens * channels || o.length < nTokens * channels || st.length < channels * (taps - 1)) throw new RangeError(`convSilu: ${nTokens} tokens of ${channels} channels overrun its buffers`);
    this.be.rec.dispatch("conv_silu", () => CONV_SILU_WGSL, [nTokens, channels, taps, g.wordOffset], [g.buffer, xs.buffer, st.buffer, o.buffer], Math.ceil(channels / 64));
  }
  l2Norm(out: Buf, x: Buf, eps: number, rowLen: number, nRows: number): void {
    const o = this.inPlaceFrom(out, x, rowLen * nRows, "l2Norm");
    const { threads, per } = normShape(rowLen);
    this.be.rec.dispatch(`l2_norm/${threads}/${per}`, () => normWgsl("l2", threads, per), [rowLen, nRows, 0, f(eps)], [o.buffer], nRows);
  }
  rmsNormGated(out: Buf, x: Buf, w: Weight, gate: Buf, eps: number, rowLen: number, nRows: number): void {
    const g = gw(w, "rmsNormGated");
    if (g.type !== F32 || g.shape[0] < rowLen) throw new RangeError(`webgpu rmsNormGated: weight '${g.name}' must be F32 of ${rowLen} values`);
    const gt = gbuf(gate);
    if (gt.length < rowLen * nRows) throw new RangeError(`rmsNormGated: the gate holds ${gt.length} values, needs ${rowLen * nRows}`);
    if (gt === gbuf(out)) throw new RangeError("webgpu rmsNormGated: out may not alias the gate");
    const o = this.inPlaceFrom(out, x, rowLen * nRows, "rmsNormGated");
    const { threads, per } = normShape(rowLen);
    this.be.rec.dispatch(`rmsnorm_gated/${threads}/${per}`, () => normWgsl("gated", threads, per), [rowLen, nRows, g.wordOffset, f(eps)], [o.buffer, g.buffer, gt.buffer], nRows);
  }
  deltaGates(g: Buf, beta: Buf, alpha: Buf, betaRaw: Buf, dtBias: Weight, a: Weight, nHead: number, nRows: number): void {
    const dt = gw(dtBias, "deltaGates"), av = gw(a, "deltaGates");
    if (dt.type !== F32 || av.type !== F32 || dt.shape[0] < nHead || av.shape[0] < nHead) throw new RangeError(`webgpu deltaGates: '${dt.name}' and '${av.name}' must be F32 of ${nHead} values`);
    const go = this.inPlaceFrom(g, alpha, nHead * nRows, "deltaGates"), bo = this.inPlaceFrom(beta, betaRaw, nHead * nRows, "deltaGates");
    if (go === bo) throw new RangeError("webgpu deltaGates: g and beta are one buffer");
    this.be.rec.dispatch("delta_gates", () => DELTA_GATES_WGSL, [nHead, nRows, dt.wordOffset, av.wordOffset], [dt.buffer, av.buffer, go.buffer, bo.buffer], Math.ceil((nHead * nRows) / 64));
  }
  gatedDeltaNet(out: Buf, q: Buf, k: Buf, v: Buf, g: Buf, beta: Buf, state: Buf, stateOut: Buf, p: DeltaNetParams): void {
    const { nTokens: T, nHeadK, nHeadV, headDim: S } = p;
    if (nHeadV % nHeadK !== 0) throw new RangeError(`gatedDeltaNet: ${nHeadV} value heads not a multiple of ${nHeadK} key heads`);
    const m = this.inPlaceFrom(stateOut, state, nHeadV * S * S, "gatedDeltaNet");
    const o = gbuf(out);
    if (o.length < T * nHeadV * S || gbuf(q).length < T * nHeadK * S || gbuf(v).length < T * nHeadV * S) throw new RangeError(`gatedDeltaNet: ${T} tokens overrun its buffers`);
    this.be.rec.dispatch("delta_net", () => DELTA_NET_WGSL, [T, nHeadK, nHeadV, S, p.kvMap === "interleave" ? 1 : 0], [gbuf(q).buffer, gbuf(k).buffer, gbuf(v).buffer, gbuf(g).buffer, gbuf(beta).buffer, m.buffer, o.buffer], Math.ceil((nHeadV * S) / 64));
  }
  /** `out` holding x's first n values (copied unless they are one buffer), for a kernel that works in place. */
  private inPlaceFrom(out: Buf, x: Buf, n: number, what: string): GpuBuf {
    const o = gbuf(out), xs = gbuf(x);
    if (o.length < n || xs.length < n) throw new RangeError(`webgpu ${what}: ${n} values overrun its buffers`);
    if (o !== xs) this.be.rec.copyBytes(xs.buffer, 0, o.buffer, 0, 4 * n);
    return o;
  }
}
