// The pieces architectures share, as llama.cpp's build_attn holds them: attention over a layer's KV state, the
// gated DeltaNet block, the pre-norm decoder stack and the output head, a forward pass's scratch. The routed MoE
// block is moe-block.ts. Each takes one parameter object.
import type { Backend, Buf, DeltaNetParams, OpName, RopeOptions, Weight } from "../backends/backend.js";
import { ropeIsPlain } from "../backends/backend.js";
import type { FullAttentionState, KvRows } from "../kv/full-attention.js";
import { SlidingWindowState } from "../kv/sliding-window.js";
import type { RecurrentState } from "../kv/recurrent.js";
import type { ModelCache } from "../kv/state.js";
import type { ForwardHooks, ForwardOptions } from "./model.js";
import { AbortedError, ModelError } from "../util/errors.js";
import { yieldToEventLoop } from "../util/yield.js";

/** Ops the shared layers run whatever the weights' types (checked once at load). */
export const LAYER_OPS: readonly OpName[] = ["rmsnorm", "rope", "kv_store", "attention", "add", "swiglu", "gather_rows", "scatter_add_rows"];
/** Ops of gated DeltaNet layers and gated attention (Qwen3-Next / Qwen3.5), asked only of models with ssm_* tensors. */
export const LINEAR_ATTENTION_OPS: readonly OpName[] = ["conv_silu", "l2_norm", "delta_gates", "delta_net", "rmsnorm_gated", "sigmoid_mul"];

/**
 * Activation buffers a model reuses across forward calls (one per name, reallocated only when a call
 * needs another size: prefill batches, then decode at one row).
 */
export class Scratch {
  private readonly bufs = new Map<string, Buf>();
  constructor(private readonly be: Backend) {}

  /** The buffer called `name`, exactly `length` floats; its contents are whatever the last user left. */
  get(name: string, length: number): Buf {
    const have = this.bufs.get(name);
    if (have && have.length === length) return have;
    if (have) this.be.free(have);
    const b = this.be.alloc(length);
    this.bufs.set(name, b);
    return b;
  }

  free(): void {
    for (const b of this.bufs.values()) this.be.free(b);
    this.bufs.clear();
  }
}

/**
 * Scratch for forward calls: a call takes one and gives it back, so calls that overlap (two sessions of one
 * model generating at once) never share activation buffers, and calls in turn reuse the same one.
 */
export class ScratchPool {
  private readonly idle: Scratch[] = [];
  constructor(private readonly be: Backend) {}
  take(): Scratch {
    return this.idle.pop() ?? new Scratch(this.be);
  }
  give(s: Scratch): void {
    this.idle.push(s);
  }
}

/** One forward call: the backend, its token rows and positions, scratch, and the caller's hooks. */
export class Pass {
  readonly nTokens: number;
  readonly pos: Int32Array;
  constructor(
    readonly be: Backend,
    readonly scratch: Scratch,
    readonly startPos: number,
    nTokens: number,
    readonly hooks: ForwardHooks | undefined,
    readonly signal?: { readonly aborted: boolean },
  ) {
    this.nTokens = nTokens;
    this.pos = Int32Array.from({ length: nTokens }, (_, t) => startPos + t);
  }

  buf(name: string, length: number): Buf {
    return this.scratch.get(name, length);
  }

  /** The host values the backend takes later (addLater) in this forward, each settled once taken or lost. */
  readonly late: Promise<void>[] = [];
  /** Stop here if the caller asked to (between sub-blocks: one layer's compute at most goes on after). */
  checkAbort(): void {
    if (this.signal?.aborted) throw new AbortedError();
  }

  /**
   * Let the event loop run (timers, I/O) every `be.breatheEvery` layers: a backend that only records work (a GPU)
   * would otherwise hold the thread for a whole token when nothing is read back.
   */
  async breathe(layer: number): Promise<void> {
    const n = this.be.breatheEvery;
    if (n && layer % n === n - 1) await yieldToEventLoop();
  }

  /** Hand a named intermediate to the trace hook (llama.cpp's cb(cur, name, il)). */
  async cb(name: string, layer: number, buf: Buf, rows = this.nTokens): Promise<void> {
    if (this.hooks?.trace) await this.hooks.trace(name, layer, buf, rows);
  }
}

export interface AttentionParams {
  layer: number;
  /** [D, nHead * headDim] (given, with wk and wv, unless wqkv is) */
  wq?: Weight;
  /** [D, nHeadKv * headDim] */
  wk?: Weight;
  wv?: Weight;
  /** Fused attn_qkv [D, qDim + 2 * nHeadKv * headDim]: rows [q (as wq's) ‖ k ‖ v], as llama.cpp's build_qkv splits it; bqkv its bias. */
  wqkv?: Weight;
  bqkv?: Weight;
  /** [nHead * headDim, D] */
  wo: Weight;
  /** Biases added after the q, k, v and output projections, before the q/k norms and rope (gpt-oss, GLM-4.5). */
  bq?: Weight;
  bk?: Weight;
  bv?: Weight;
  bo?: Weight;
  /** Attention sinks [nHead] (gpt-oss): a per-head logit in the softmax denominator that weights no value. */
  sinks?: Weight;
  /**
   * RMSNorm of q and k before rope, over rows of the weight's length: per head ([headDim]; Qwen3) or over the
   * whole projection ([nHead * headDim], [nHeadKv * headDim]; OLMoE).
   */
  qNorm?: Weight;
  kNorm?: Weight;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  /**
   * Rotary embedding over the first nRot values of each head (default the whole head; GLM-4.5: half): NeoX pairs by
   * default; opts: adjacent pairs (mode "norm": Llama, Mixtral), YaRN (gpt-oss).
   */
  rope: { freqBase: number; nRot?: number; opts?: RopeOptions };
  eps: number;
  /** Softmax scale; default 1 / sqrt(headDim). */
  scale?: number;
  /**
   * Gated attention (Qwen3-Next, Qwen3.5): wq gives per head [q (headDim) ‖ gate (headDim)] ([D, nHead * headDim * 2]),
   * and the attention output is multiplied by sigmoid(gate) before wo.
   */
  outputGate?: boolean;
  /**
   * Emulate llama.cpp's f16 KV cache (flash attention off): K and V stored as f16, q rounded to f16 for K·q, the
   * probabilities rounded to f16 for the V product.
   */
  f16Kv?: boolean;
  /** A full KV cache, or a sliding window's (the attention then sees only the window). */
  state: FullAttentionState | SlidingWindowState;
}

/** out[T, D] = attention of the normed rows x[T, D]; this call's keys and values go into p.state at its length. */
export async function attention(f: Pass, out: Buf, x: Buf, p: AttentionParams): Promise<void> {
  f.checkAbort();
  const { be, nTokens: T, pos } = f;
  const { nHead, nHeadKv, headDim: hd, layer: il } = p;
  const qDim = nHead * hd, kvDim = nHeadKv * hd;
  const q = f.buf("attn.q", T * qDim), k = f.buf("attn.k", T * kvDim), v = f.buf("attn.v", T * kvDim), att = f.buf("attn.kqv", T * qDim);
  const qg = p.outputGate ? f.buf("attn.qg", 2 * T * qDim) : q; // [T, nHead, 2 * hd]: q and gate halves per head
  if (p.wqkv) {
    const qgHeads = p.outputGate ? 2 * nHead : nHead, per = qgHeads + 2 * nHeadKv; // rows of hd per token
    const qkv = f.buf("attn.qkv", T * per * hd);
    be.matmul(qkv, p.wqkv, x, T);
    if (p.bqkv) be.addRows(qkv, p.bqkv, per * hd, T);
    splitRows(f, qkv, per, hd, [[qg, 0, qgHeads], [k, qgHeads, nHeadKv], [v, qgHeads + nHeadKv, nHeadKv]]);
  } else {
    if (!p.wq || !p.wk || !p.wv) throw new Error(`attention layer ${il}: needs wq, wk and wv, or wqkv`);
    if (be.matmulSet) be.matmulSet([qg, k, v], [p.wq, p.wk, p.wv], x, T); // one pool run, x quantised once
    else {
      be.matmul(qg, p.wq, x, T);
      be.matmul(k, p.wk, x, T);
      be.matmul(v, p.wv, x, T);
    }
  }
  let gate: Buf | undefined;
  if (p.outputGate) {
    // Rows of headDim: 2r is head r's query, 2r + 1 its gate.
    gate = f.buf("attn.gate", T * qDim);
    const rows = T * nHead;
    be.gatherRows(q, qg, Int32Array.from({ length: rows }, (_, r) => 2 * r), hd);
    be.gatherRows(gate, qg, Int32Array.from({ length: rows }, (_, r) => 2 * r + 1), hd);
  }
  if (p.bq) be.addRows(q, p.bq, qDim, T);
  if (p.bk) be.addRows(k, p.bk, kvDim, T);
  if (p.bv) be.addRows(v, p.bv, kvDim, T);
  const f16 = p.f16Kv ?? false;
  const scale = p.scale ?? 1 / Math.sqrt(hd);
  let kv: KvRows | undefined;
  // Per-head norms, rope and the store as one op where the backend has it (a GPU: one dispatch, not six); a decode
  // token's attention too where nothing reads the normed q and k (no trace) and the backend fuses the shapes.
  const { qNorm, kNorm } = p;
  if (be.normRopeStore && qNorm && kNorm && qNorm.shape[0] === hd && kNorm.shape[0] === hd && ropeIsPlain(p.rope.opts) && !f16 && !(p.state instanceof SlidingWindowState)) {
    const nRot = p.rope.nRot ?? hd;
    const fuse = T === 1 && !p.sinks && !f.hooks?.trace && be.normRopeAttention;
    let attended = false;
    kv = p.state.storeBy(T, (kCache, vCache, startPos) => {
      const a = { qNorm, kNorm, eps: p.eps, pos, nHead, nHeadKv, headDim: hd, freqBase: p.rope.freqBase, nRot, kCache, vCache, startPos };
      attended = !!fuse && be.normRopeAttention!(att, q, k, v, { ...a, scale });
      if (!attended) be.normRopeStore!(q, k, v, a);
    });
    if (attended) return attentionOut(f, out, att, gate, p, T * qDim);
  } else {
    if (qNorm) be.rmsNorm(q, q, qNorm, p.eps, qNorm.shape[0], (T * qDim) / qNorm.shape[0]);
    if (kNorm) be.rmsNorm(k, k, kNorm, p.eps, kNorm.shape[0], (T * kvDim) / kNorm.shape[0]);
    be.rope(q, pos, nHead, hd, p.rope.freqBase, p.rope.nRot, p.rope.opts);
    be.rope(k, pos, nHeadKv, hd, p.rope.freqBase, p.rope.nRot, p.rope.opts);
  }
  await f.cb("Qcur", il, q);
  await f.cb("Kcur", il, k);
  if (!kv) {
    if (p.state instanceof SlidingWindowState) {
      const rows = (p.state.window - 1 + T) * kvDim; // the held window and this call's rows, contiguous
      kv = p.state.store(k, v, T, f.buf("attn.kwin", rows), f.buf("attn.vwin", rows), f16);
    } else kv = p.state.store(k, v, T, f16);
  }
  let qk = q;
  if (f16) {
    qk = f.buf("attn.q16", T * qDim);
    be.copy(qk, q, { rows: 1, n: T * qDim, src: { offset: 0, stride: 0 }, dst: { offset: 0, stride: 0 }, roundF16: true });
  }
  be.attention(att, qk, kv.k, kv.v, {
    nTokens: T, startPos: kv.startPos, nHead, nHeadKv, headDim: hd, scale, sinks: p.sinks, window: kv.window, f16Probs: f16 || undefined,
  });
  return attentionOut(f, out, att, gate, p, T * qDim);
}

/** out[T, D] = the heads' output att (n = T · nHead · headDim values), gated where the layer has a gate, through wo (and bo). */
async function attentionOut(f: Pass, out: Buf, att: Buf, gate: Buf | undefined, p: AttentionParams, n: number): Promise<void> {
  const { be, nTokens: T } = f;
  await f.cb("kqv_out", p.layer, att);
  if (gate) be.sigmoidMul(att, att, gate, n);
  be.matmul(out, p.wo, att, T);
  if (p.bo) be.addRows(out, p.bo, out.length / T, T);
}

export interface DeltaNetLayerParams {
  layer: number;
  /**
   * attn_qkv [D, 2 * keyDim + valueDim] with rows [q ‖ k ‖ v] (keyDim = nHeadK * headDim, valueDim = nHeadV * headDim)
   * and attn_gate [D, valueDim] (z, the output gate); or legacy Qwen3-Next files' one ssm_in [D, 2 * keyDim + 2 * valueDim]
   * with rows per key head [q ‖ k ‖ v of its r value heads ‖ z of them].
   */
  proj: { wqkv: Weight; wz: Weight } | { ssmIn: Weight };
  /**
   * The per-value-head β and α projections: separate [D, nHeadV] each (Qwen3.5), or one ssm_ba [D, 2 * nHeadV]
   * holding per key head g [β of its r value heads ‖ α of them], r = nHeadV / nHeadK (Qwen3-Next).
   */
  betaAlpha: { beta: Weight; alpha: Weight } | { ba: Weight };
  /** ssm_conv1d [kernel, 2 * keyDim + valueDim] (f32). */
  conv: Weight;
  /** ssm_dt.bias and ssm_a [nHeadV]. */
  dtBias: Weight;
  a: Weight;
  /** ssm_norm [headDim], shared by the value heads. */
  norm: Weight;
  /** ssm_out [valueDim, D]. */
  wo: Weight;
  delta: Omit<DeltaNetParams, "nTokens">;
  eps: number;
  state: RecurrentState;
}

/**
 * out[T, D] = a gated DeltaNet layer over the normed rows x[T, D] (llama.cpp's build_layer_attn_linear): the q/k/v
 * projection through a causal conv + SiLU, L2-normed q and k, the gated delta rule per value head, then a gated
 * RMSNorm by silu(z) and the output projection. p.state absorbs the tokens.
 */
export async function deltaNet(f: Pass, out: Buf, x: Buf, p: DeltaNetLayerParams): Promise<void> {
  f.checkAbort();
  const { be, nTokens: T } = f;
  const { nHeadK: nK, nHeadV: nV, headDim: S } = p.delta;
  const il = p.layer;
  const valueDim = nV * S, convDim = (2 * nK + nV) * S;
  const qkv = f.buf("dn.qkv", T * convDim), z = f.buf("dn.z", T * valueDim);
  if ("ssmIn" in p.proj) splitQkvz(f, qkv, z, x, p.proj.ssmIn, p.delta);
  else if (be.matmulSet) be.matmulSet([qkv, z], [p.proj.wqkv, p.proj.wz], x, T);
  else {
    be.matmul(qkv, p.proj.wqkv, x, T);
    be.matmul(z, p.proj.wz, x, T);
  }
  const betaRaw = f.buf("dn.beta", T * nV), alpha = f.buf("dn.alpha", T * nV);
  if ("ba" in p.betaAlpha) {
    const ba = f.buf("dn.ba", 2 * T * nV);
    be.matmul(ba, p.betaAlpha.ba, x, T);
    // Rows of r values: 2m is key head m's β group, 2m + 1 its α group; gathered they are [T, nV] in head order.
    const rows = T * nK, r = nV / nK;
    be.gatherRows(betaRaw, ba, Int32Array.from({ length: rows }, (_, m) => 2 * m), r);
    be.gatherRows(alpha, ba, Int32Array.from({ length: rows }, (_, m) => 2 * m + 1), r);
  } else {
    be.matmul(betaRaw, p.betaAlpha.beta, x, T);
    be.matmul(alpha, p.betaAlpha.alpha, x, T);
  }
  be.deltaGates(alpha, betaRaw, alpha, betaRaw, p.dtBias, p.a, nV, T); // in place: alpha -> g, betaRaw -> β
  const conv = f.buf("dn.conv", T * convDim);
  be.convSilu(conv, qkv, p.state.conv, p.conv, T, convDim);
  await f.cb("conv_output_silu", il, conv);
  // Rows of headDim: each token's conv output is nK q heads, nK k heads, nV v heads.
  const q = f.buf("dn.q", T * nK * S), k = f.buf("dn.k", T * nK * S), v = f.buf("dn.v", T * valueDim);
  splitRows(f, conv, 2 * nK + nV, S, [[q, 0, nK], [k, nK, nK], [v, 2 * nK, nV]]);
  be.l2Norm(q, q, p.eps, S, T * nK);
  be.l2Norm(k, k, p.eps, S, T * nK);
  const o = f.buf("dn.o", T * valueDim);
  be.gatedDeltaNet(o, q, k, v, alpha, betaRaw, p.state.ssm, p.state.ssmNext, { ...p.delta, nTokens: T }); // committed when the forward completes
  await f.cb("attn_output", il, o);
  be.rmsNormGated(o, o, p.norm, z, p.eps, S, T * nV);
  be.matmul(out, p.wo, o, T);
  await f.cb("linear_attn_out", il, out);
}

/**
 * Split src, per token `per` rows of `width` values, into buffers of consecutive rows: [dst, from, n] takes each
 * token's rows [from, from + n) into dst [T, n * width] (a fused projection's q, k and v heads).
 */
function splitRows(f: Pass, src: Buf, per: number, width: number, parts: readonly [Buf, number, number][]): void {
  const T = f.nTokens;
  for (const [dst, from, n] of parts) f.be.gatherRows(dst, src, Int32Array.from({ length: T * n }, (_, i) => Math.floor(i / n) * per + from + (i % n)), width);
}

/** Legacy ssm_in: its per-key-head rows [q ‖ k ‖ v (r) ‖ z (r)] regathered into attn_qkv's [q ‖ k ‖ v] order and z. */
function splitQkvz(f: Pass, qkv: Buf, z: Buf, x: Buf, w: Weight, d: DeltaNetLayerParams["delta"]): void {
  const { be, nTokens: T } = f;
  const { nHeadK: nK, nHeadV: nV, headDim: S } = d;
  const r = nV / nK, group = 2 + 2 * r, per = 2 * nK + nV; // rows of S: per key head in ssm_in, per token in qkv
  const mixed = f.buf("dn.qkvz", T * nK * group * S);
  be.matmul(mixed, w, x, T);
  const src = (t: number, g: number, at: number) => (t * nK + g) * group + at;
  be.gatherRows(qkv, mixed, Int32Array.from({ length: T * per }, (_, i) => {
    const t = Math.floor(i / per), j = i % per;
    if (j < 2 * nK) return src(t, j % nK, j < nK ? 0 : 1); // q, then k, of each key head
    const m = j - 2 * nK; // value head m = g·r + i
    return src(t, Math.floor(m / r), 2 + (m % r));
  }), S);
  be.gatherRows(z, mixed, Int32Array.from({ length: T * nV }, (_, i) => {
    const t = Math.floor(i / nV), m = i % nV;
    return src(t, Math.floor(m / r), 2 + r + (m % r));
  }), S);
}

/** One forward call's checks and scratch: `run` gets a Pass over `tokens` at the cache's length. */
export async function forwardPass(be: Backend, pool: ScratchPool, tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, run: (f: Pass) => Promise<Float32Array>): Promise<Float32Array> {
  const T = tokens.length;
  const start = cache.length;
  if (T === 0) throw new RangeError("forward() needs at least one token");
  if (start + T > cache.nCtx) throw new ModelError("context_full", `context full: ${start} + ${T} tokens exceed the context size ${cache.nCtx}`);
  const scratch = pool.take();
  const f = new Pass(be, scratch, start, T, opts.hooks, opts.signal);
  try {
    return await run(f);
  } catch (e) {
    // A forward that failed (aborted, say) before a read took its late host values' error: that error is this
    // forward's, not the next one's read's.
    if (f.late.length) {
      await Promise.allSettled(f.late);
      be.dropLateError?.();
    }
    throw e;
  } finally {
    pool.give(scratch);
  }
}

/** One layer of a pre-norm decoder: its two norms and the sub-blocks that read the normed rows h and write y. */
export interface DecoderLayer {
  attnNorm: Weight;
  attention(y: Buf, h: Buf): Promise<void>;
  ffnNorm: Weight;
  /** x is the residual stream (for router lookahead). */
  ffn(y: Buf, h: Buf, x: Buf): Promise<void>;
}

/**
 * The pre-norm decoder: x = embed(tokens); per layer x += attention(rmsnorm(x)), x += ffn(rmsnorm(x)); then the
 * output head. Intermediates go to the trace hook under llama.cpp's names (the FFN norm's as `ffnNormName`).
 */
export async function decoderStack(f: Pass, tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, p: {
  embd: Weight; output: { norm: Weight; output: Weight }; eps: number; nLayer: number; ffnNormName: string; layer(il: number): DecoderLayer;
}): Promise<Float32Array> {
  const { be } = f;
  const T = tokens.length, D = p.embd.shape[0], eps = p.eps;
  const x = f.buf("x", T * D); // residual stream [T, D]
  const h = f.buf("h", T * D); // normed input of a sub-block [T, D]
  const y = f.buf("y", T * D); // a sub-block's output [T, D]
  if (opts.later) {
    if (!be.embedLater) throw new Error(`forward: backend '${be.name}' cannot record ahead of its token ids`);
    be.embedLater(x, p.embd, T, opts.later);
  } else be.embed(x, p.embd, tokens);
  // Each residual add and the norm after it (the next sub-block's) as one op where the backend has it.
  const addNorm = (w: Weight) => {
    if (be.addRmsNorm) be.addRmsNorm(x, y, h, w, eps, D, T);
    else {
      be.add(x, x, y, T * D);
      be.rmsNorm(h, x, w, eps, D, T);
    }
  };
  let L = p.layer(0);
  be.rmsNorm(h, x, L.attnNorm, eps, D, T);
  for (let il = 0; il < p.nLayer; il++) {
    await f.cb("attn_norm", il, h);
    await L.attention(y, h);
    addNorm(L.ffnNorm);
    await f.cb("ffn_inp", il, x);
    await f.cb(p.ffnNormName, il, h);
    await L.ffn(y, h, x);
    const next = il + 1 < p.nLayer ? p.layer(il + 1) : undefined;
    if (next) addNorm(next.attnNorm);
    else be.add(x, x, y, T * D);
    await f.cb("l_out", il, x);
    await f.breathe(il);
    if (next) L = next;
  }
  return outputLogits(f, x, p.output, eps, cache, opts.logits, opts.onRecorded);
}

/** The output head over the residual stream x[T, D]: final norm, projection, host read of the last row's or all rows' logits; the cache absorbs the call. */
export async function outputLogits(f: Pass, x: Buf, w: { norm: Weight; output: Weight }, eps: number, cache: ModelCache, which: ForwardOptions["logits"], onRecorded?: () => void): Promise<Float32Array> {
  const { be, nTokens: T } = f;
  const D = x.length / T, nVocab = w.output.shape[1];
  const rows = which === "last" ? 1 : T;
  let fin: Buf = x;
  if (rows === 1 && T > 1) {
    fin = f.buf("out.last", D);
    be.gatherRows(fin, x, Int32Array.of(T - 1), D);
  }
  const normed = f.buf("out.norm", rows * D);
  be.rmsNorm(normed, fin, w.norm, eps, D, rows);
  await f.cb("result_norm", -1, normed, rows);
  const logits = f.buf("out.logits", rows * nVocab);
  be.matmul(logits, w.output, normed, rows);
  // The cache holds the tokens once everything is recorded: a forward recorded next (ahead) starts after them.
  const read = be.read(logits);
  cache.advance(T);
  onRecorded?.();
  try {
    return await read;
  } catch (e) {
    if (cache.canTruncate(cache.length - T)) cache.truncate(cache.length - T);
    throw e;
  }
}
