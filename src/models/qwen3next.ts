// Qwen3-Next (GGUF general.architecture = "qwen3next") and Qwen3.5-MoE ("qwen35moe"): hybrid decoders whose
// layers are gated DeltaNet linear attention (3 of every 4) or gated full attention (sigmoid output gate, per-head
// q/k RMSNorm, NeoX rope over the first rope.dimension_count values of each head), every layer a softmax top-k
// MoE plus a shared expert scaled by sigmoid(ffn_gate_inp_shexp · x). The two differ in the DeltaNet β/α tensors
// (one ssm_ba interleaved per key head vs ssm_beta + ssm_alpha), in which key head a value head reads (interleave
// vs tile: the qwen35moe converter reordered the value heads) and in rope (IMRoPE, which for text is NeoX when
// every rotated pair takes a position stream: checked at load). The trailing nextn_predict_layers blocks
// (multi-token prediction) are declared unused and never run.
// Reference: llama.cpp src/models/qwen3next.cpp, qwen35moe.cpp, delta-net-base.cpp.
import type { Backend } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import { getMeta } from "../format/gguf/accessors.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { FullAttentionState, fullAttention } from "../kv/full-attention.js";
import { RecurrentState, recurrent, type RecurrentDims } from "../kv/recurrent.js";
import { ModelCache } from "../kv/state.js";
import { ModelError } from "../util/errors.js";
import { count, decoderMetadata, metaInRange, metaPerLayer, modelInfo, positive, type Range } from "./hparams.js";
import { attention, deltaNet, forwardPass, LINEAR_ATTENTION_OPS, outputLogits, Pass, ScratchPool, type DeltaNetLayerParams } from "./layers.js";
import { moe, routersAfter, type LookaheadRouter } from "./moe-block.js";
import type { ForwardOptions, Model, ModelContext, ModelInfo } from "./model.js";
import { softmaxTopKRoute, type RouteFn } from "./routing.js";
import { declareQkv, nextnUnused, outputHead, qkvUnused, swigluExperts, type Declare } from "./tensors.js";

export type Arch = "qwen3next" | "qwen35moe";
export const ARCHS: readonly Arch[] = ["qwen3next", "qwen35moe"];
/** The gated DeltaNet layers' ops, asked of the backend at load beyond the shared layers'. */
export const OPS = LINEAR_ATTENTION_OPS;

export interface HParams {
  arch: Arch;
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  /** Layers run: block_count − nextn_predict_layers. */
  nLayer: number;
  /** nextn_predict_layers: trailing MTP blocks (full-attention layers with nextn.* tensors), never run. */
  nNextn: number;
  /** Per layer run: gated DeltaNet (true) or full attention (attention.recurrent_layers, else full_attention_interval). */
  recurrent: boolean[];
  /** full_attention_interval: written with the per-layer list, as the converter does. */
  fullAttentionInterval: number;
  nHead: number;
  nHeadKv: number;
  /** attention.key_length (= value_length). */
  headDim: number;
  /** rope.dimension_count: values of each head that rotate (64 of 256). */
  nRot: number;
  /** qwen35moe: rope.dimension_sections (IMRoPE; [11, 11, 10, 0]). */
  ropeSections?: number[];
  /** feed_forward_length (generic key; the fallback of the expert widths). */
  nFf: number;
  nExpert: number;
  nExpertUsed: number;
  nFfExp: number;
  nFfShexp: number;
  /** ssm.conv_kernel, ssm.state_size (key and value head size), ssm.group_count (key heads), ssm.time_step_rank (value heads). */
  convKernel: number;
  ssmState: number;
  nHeadK: number;
  nHeadV: number;
  ropeFreqBase: number;
  rmsEps: number;
}

/** Whether IMRoPE with these sections gives every rotated pair a text position (then it is NeoX); llama.cpp ggml_mrope_cache_init. */
function imropeIsNeox(sections: number[], nRot: number): boolean {
  const total = sections.reduce((a, b) => a + b, 0);
  for (let i = 0; i < nRot / 2; i++) {
    const s = i % total;
    const stream = s % 3;
    if (!(s < 3 * sections[stream])) return false; // the 4th stream: angle 0 for text
  }
  return true;
}

export function readHParams(arch: Arch, md: GGUFMetadata, nVocab: number): HParams {
  const k = (name: string) => `${arch}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  const bad = (msg: string) => new ModelError("bad_hparams", `${arch}: ${msg}`);
  const blocks = n("block_count", count(1, 1024));
  const nNextn = n("nextn_predict_layers", count(0, 16), { default: 0 });
  const nLayer = blocks - nNextn;
  if (nLayer < 1) throw bad(`block_count ${blocks} leaves no layer besides ${nNextn} nextn_predict_layers`);
  const headDim = n("attention.key_length", count(2, 4096));
  const fullAttentionInterval = n("full_attention_interval", count(1, 1024), { default: 4 });
  const recurrent = recurrentLayers(arch, md, blocks, nLayer, fullAttentionInterval);
  // Keys a file may give per layer: one value shared by the layers that use it (the heads: the full-attention layers).
  const all = Array.from({ length: nLayer }, (_, i) => i), attn = all.filter((i) => !recurrent[i]);
  const perLayer = (name: string, r: Range, used: number[], opts?: { default: number }) => metaPerLayer(md, k(name), r, { blocks, used, ...opts });
  const nExpertUsed = perLayer("expert_used_count", count(1, 1 << 16), all);
  const nFf = perLayer("feed_forward_length", count(0, 1 << 20), all, { default: 0 });
  const hp: HParams = {
    arch, nVocab,
    nCtxTrain: n("context_length", count(1, 1 << 24)),
    nEmbd: n("embedding_length", count(1, 1 << 17)),
    nLayer, nNextn,
    recurrent,
    fullAttentionInterval,
    nHead: perLayer("attention.head_count", count(1, 1024), attn),
    nHeadKv: perLayer("attention.head_count_kv", count(1, 1024), attn),
    headDim,
    nRot: n("rope.dimension_count", count(2, 4096), { default: headDim }),
    nFf,
    nExpert: n("expert_count", count(1, 1 << 16)),
    nExpertUsed,
    // llama.cpp's fallbacks: the expert width n_ff / n_expert_used, the shared expert's n_ff.
    nFfExp: perLayer("expert_feed_forward_length", count(1, 1 << 20), all, nFf >= nExpertUsed ? { default: Math.floor(nFf / nExpertUsed) } : undefined),
    nFfShexp: n("expert_shared_feed_forward_length", count(1, 1 << 20), nFf > 0 ? { default: nFf } : undefined),
    convKernel: n("ssm.conv_kernel", count(2, 64)),
    ssmState: n("ssm.state_size", count(1, 1024)),
    nHeadK: n("ssm.group_count", count(1, 1024)),
    nHeadV: n("ssm.time_step_rank", count(1, 4096)),
    ropeFreqBase: n("rope.freq_base", positive(1e12), { default: 10000 }),
    rmsEps: n("attention.layer_norm_rms_epsilon", positive(0.1)),
  };
  const inner = n("ssm.inner_size", count(1, 1 << 20));
  const vLen = n("attention.value_length", count(1, 4096), { default: headDim });
  if (vLen !== headDim) throw bad(`attention.value_length ${vLen} != key_length ${headDim}`);
  if (hp.nHead % hp.nHeadKv !== 0) throw bad(`head_count ${hp.nHead} not a multiple of head_count_kv ${hp.nHeadKv}`);
  if (hp.nRot % 2 !== 0 || hp.nRot > headDim) throw bad(`rope.dimension_count ${hp.nRot} must be even and at most key_length ${headDim}`);
  if (hp.nExpertUsed > hp.nExpert) throw bad(`expert_used_count ${hp.nExpertUsed} not in [1, ${hp.nExpert}]`);
  if (hp.nHeadV % hp.nHeadK !== 0) throw bad(`ssm.time_step_rank ${hp.nHeadV} (value heads) not a multiple of ssm.group_count ${hp.nHeadK} (key heads)`);
  if (inner !== hp.ssmState * hp.nHeadV) throw bad(`ssm.inner_size ${inner} != ssm.state_size ${hp.ssmState} x ssm.time_step_rank ${hp.nHeadV}`);
  if (arch === "qwen35moe") {
    const sec = getMeta(md, k("rope.dimension_sections"));
    if (!sec) throw new ModelError("missing_key", `missing metadata key "${k("rope.dimension_sections")}"`);
    if (sec.type !== "array" || sec.itemType === "string" || sec.itemType === "array" || sec.itemType === "bool" || sec.value.length !== 4) throw bad(`rope.dimension_sections must be an array of 4 numbers`);
    hp.ropeSections = (sec.value as (number | bigint)[]).map(Number);
    if (!imropeIsNeox(hp.ropeSections, hp.nRot)) throw bad(`rope.dimension_sections [${hp.ropeSections.join(", ")}] leave rotated pairs of the ${hp.nRot} rope dims without a text position (only IMRoPE equal to NeoX for text is supported)`);
  }
  return hp;
}

/** attention.recurrent_layers (one bool per block) if the file has it, else every full_attention_interval-th layer is full attention. */
function recurrentLayers(arch: Arch, md: GGUFMetadata, blocks: number, nLayer: number, interval: number): boolean[] {
  const key = `${arch}.attention.recurrent_layers`;
  const v = getMeta(md, key);
  if (!v) return Array.from({ length: nLayer }, (_, i) => (i + 1) % interval !== 0);
  if (v.type !== "array" || v.itemType !== "bool" || v.value.length !== blocks) throw new ModelError("bad_hparams", `${arch}: metadata '${key}' must be an array of ${blocks} bools (one per block)`);
  return (v.value as boolean[]).slice(0, nLayer);
}

/** The inverse of readHParams: every key it reads, from hp (the generator writes these). */
export function metadata(hp: HParams): GGUFMetadata {
  const k = (name: string) => `${hp.arch}.${name}`;
  return new Map([
    [k("block_count"), meta.u32(hp.nLayer + hp.nNextn)],
    ...decoderMetadata(hp.arch, hp),
    [k("attention.key_length"), meta.u32(hp.headDim)],
    [k("attention.value_length"), meta.u32(hp.headDim)],
    [k("rope.dimension_count"), meta.u32(hp.nRot)],
    ...(hp.ropeSections ? [[k("rope.dimension_sections"), meta.i32Array(hp.ropeSections)] as const] : []),
    [k("expert_feed_forward_length"), meta.u32(hp.nFfExp)],
    [k("expert_shared_feed_forward_length"), meta.u32(hp.nFfShexp)],
    [k("ssm.conv_kernel"), meta.u32(hp.convKernel)],
    [k("ssm.state_size"), meta.u32(hp.ssmState)],
    [k("ssm.group_count"), meta.u32(hp.nHeadK)],
    [k("ssm.time_step_rank"), meta.u32(hp.nHeadV)],
    [k("ssm.inner_size"), meta.u32(hp.ssmState * hp.nHeadV)],
    [k("attention.recurrent_layers"), meta.boolArray([...hp.recurrent, ...new Array<boolean>(hp.nNextn).fill(false)])],
    [k("full_attention_interval"), meta.u32(hp.fullAttentionInterval)],
    [k("nextn_predict_layers"), meta.u32(hp.nNextn)],
  ]);
}

export function info(hp: HParams): ModelInfo {
  return modelInfo(hp.arch, hp);
}

function recurrentDims(hp: HParams): RecurrentDims {
  return { convChannels: (2 * hp.nHeadK + hp.nHeadV) * hp.ssmState, convKeep: hp.convKernel - 1, nHeadV: hp.nHeadV, headDim: hp.ssmState };
}

/** KV rows on the full-attention layers, a fixed recurrent state on the others. */
export function cacheBytes(hp: HParams, nCtx: number): number {
  const nRec = hp.recurrent.filter(Boolean).length;
  return nRec * RecurrentState.bytesFor(recurrentDims(hp)) + (hp.nLayer - nRec) * FullAttentionState.bytesFor(nCtx, hp.nHeadKv * hp.headDim);
}

/** Every tensor, shapes in ggml order ([K, N] = N rows of K). */
export function weights(hp: HParams, t: Declare) {
  const { nEmbd: D, nVocab: V, headDim: hd, nHead, nHeadKv, nExpert: E, nFfExp: F, nFfShexp: Fs, ssmState: S, nHeadK, nHeadV } = hp;
  const keyDim = nHeadK * S, valueDim = nHeadV * S, convDim = 2 * keyDim + valueDim;
  const token_embd = t("token_embd.weight", [D, V]);
  // A full-attention block's tensors and the MoE block's dense ones, by field: shared by the layers and the MTP blocks.
  const qDim = nHead * hd * 2, kvDim = nHeadKv * hd; // q: per head [q (hd) ‖ gate (hd)]
  const attnShapes = (n: (s: string) => string) => ({
    attn_output: [n("attn_output"), [nHead * hd, D]],
    attn_q_norm: [n("attn_q_norm"), [hd]],
    attn_k_norm: [n("attn_k_norm"), [hd]],
  }) satisfies Record<string, [string, number[]]>;
  const ffnShapes = (n: (s: string) => string) => ({
    attn_norm: [n("attn_norm"), [D]],
    post_attention_norm: [n("post_attention_norm"), [D]], // the pre-FFN norm
    ffn_gate_inp: [n("ffn_gate_inp"), [D, E]],
    ffn_gate_inp_shexp: [n("ffn_gate_inp_shexp"), [D]], // one logit per token: sigmoid scales the shared expert
    ffn_gate_shexp: [n("ffn_gate_shexp"), [D, Fs]],
    ffn_up_shexp: [n("ffn_up_shexp"), [D, Fs]],
    ffn_down_shexp: [n("ffn_down_shexp"), [Fs, D]],
  }) satisfies Record<string, [string, number[]]>;
  // The MTP block's experts in either layout (unused tensors are optional).
  const expertShapes = (n: (s: string) => string): [string, number[]][] => [[n("ffn_gate_exps"), [D, F, E]], [n("ffn_up_exps"), [D, F, E]], [n("ffn_gate_up_exps"), [D, 2 * F, E]], [n("ffn_down_exps"), [F, D, E]]];
  const layers = Array.from({ length: hp.nLayer }, (_, i) => {
    const n = (name: string) => `blk.${i}.${name}.weight`;
    swigluExperts(t, i, D, F, E, true); // ffn_gate_up_exps or ffn_gate_exps + ffn_up_exps
    const f = ffnShapes(n);
    const ffn = {
      attn_norm: t(...f.attn_norm), post_attention_norm: t(...f.post_attention_norm), ffn_gate_inp: t(...f.ffn_gate_inp),
      shared: { gateInp: t(...f.ffn_gate_inp_shexp), gate: t(...f.ffn_gate_shexp), up: t(...f.ffn_up_shexp), down: t(...f.ffn_down_shexp) },
    };
    if (!hp.recurrent[i]) {
      const a = attnShapes(n);
      return { ...ffn, kind: "attention" as const, qkv: declareQkv(t, i, D, qDim, kvDim), attn_output: t(...a.attn_output), attn_q_norm: t(...a.attn_q_norm), attn_k_norm: t(...a.attn_k_norm) };
    }
    return {
      ...ffn,
      kind: "recurrent" as const,
      // The projections: attn_qkv (rows [q (keyDim) ‖ k (keyDim) ‖ v (valueDim)]) and attn_gate (z), or in legacy
      // Qwen3-Next files one ssm_in (per key head [q ‖ k ‖ v (r heads) ‖ z (r heads)]); checked by projections().
      attn_qkv: t.optional(n("attn_qkv"), [D, convDim]),
      attn_gate: t.optional(n("attn_gate"), [D, valueDim]),
      ssm_in: hp.arch === "qwen3next" ? t.optional(n("ssm_in"), [D, 2 * keyDim + 2 * valueDim], { seldom: true }) : undefined,
      betaAlpha: hp.arch === "qwen3next"
        ? { ba: t(n("ssm_ba"), [D, 2 * nHeadV]) } // per key head [β (r) ‖ α (r)]
        : { beta: t(n("ssm_beta"), [D, nHeadV]), alpha: t(n("ssm_alpha"), [D, nHeadV]) },
      ssm_conv1d: t(n("ssm_conv1d"), [hp.convKernel, convDim]),
      ssm_dt: t(`blk.${i}.ssm_dt.bias`, [nHeadV]),
      ssm_a: t(`blk.${i}.ssm_a`, [nHeadV]), // no .weight suffix; = −exp(A_log)
      ssm_norm: t(n("ssm_norm"), [S]),
      ssm_out: t(n("ssm_out"), [valueDim, D]),
    };
  });
  // The MTP blocks: a full-attention block with MoE and the nextn.* tensors, allowed in the file and never read.
  for (let i = hp.nLayer; i < hp.nLayer + hp.nNextn; i++) {
    const n = (name: string) => `blk.${i}.${name}.weight`;
    for (const [name, shape] of [...Object.values(attnShapes(n)), ...Object.values(ffnShapes(n)), ...expertShapes(n)]) t.unused(name, shape, { seldom: name.includes("gate_up") });
    qkvUnused(t, i, D, qDim, kvDim);
    nextnUnused(t, i, D, V);
  }
  return { token_embd, layers, ...outputHead(t, token_embd, D, V) };
}
export type Weights = ReturnType<typeof weights>;
type RecurrentLayer = Extract<Weights["layers"][number], { kind: "recurrent" }>;

/** A DeltaNet layer's input projections as the file has them; a missing one is refused by name. */
function projections(L: RecurrentLayer, il: number): DeltaNetLayerParams["proj"] {
  if (L.attn_qkv && L.attn_gate) return { wqkv: L.attn_qkv, wz: L.attn_gate };
  if (L.ssm_in && !L.attn_qkv && !L.attn_gate) return { ssmIn: L.ssm_in };
  const missing = L.attn_qkv ? "attn_gate" : "attn_qkv"; // (ssm_in alongside one of them is refused too)
  throw new ModelError("missing_tensor", `required tensor 'blk.${il}.${missing}.weight' not found`);
}

export class Qwen3Next implements Model {
  readonly info: ModelInfo;
  private readonly be: Backend;
  private readonly experts: ExpertSource;
  private readonly scratch: ScratchPool;
  private readonly route: RouteFn;
  /** Per layer, the routers after it, for lookahead. */
  private readonly ahead: LookaheadRouter[][];
  /** Per layer, a DeltaNet layer's input projections (undefined for full attention). */
  private readonly proj: (DeltaNetLayerParams["proj"] | undefined)[];

  constructor(readonly hp: HParams, private readonly w: Weights, ctx: ModelContext) {
    this.proj = w.layers.map((L, il) => (L.kind === "recurrent" ? projections(L, il) : undefined));
    this.info = info(hp);
    this.be = ctx.backend;
    this.experts = ctx.experts;
    this.scratch = new ScratchPool(ctx.backend);
    this.route = softmaxTopKRoute(hp.nExpert, hp.nExpertUsed, true);
    this.ahead = routersAfter(w.layers.map((L, i) => ({ layer: i, norm: L.post_attention_norm, router: L.ffn_gate_inp, route: this.route })), hp.nLayer);
  }

  makeCache(nCtx: number): ModelCache {
    const { hp, be } = this;
    const dims = recurrentDims(hp);
    return new ModelCache(hp.recurrent.map((r) => (r ? new RecurrentState(be, nCtx, dims) : new FullAttentionState(be, nCtx, hp.nHeadKv * hp.headDim))), nCtx);
  }

  cacheBytes(nCtx: number): number {
    return cacheBytes(this.hp, nCtx);
  }

  forward(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions): Promise<Float32Array> {
    if (opts.later) return Promise.reject(new Error("qwen3next: forward cannot record ahead of its token ids (recordsAhead is unset)"));
    return forwardPass(this.be, this.scratch, tokens, cache, opts, async (f) => {
      // A forward that fails or is aborted leaves the recurrent states as they were, absorbing nothing.
      const states = this.hp.recurrent.flatMap((r, il) => (r ? [recurrent(cache.layers[il])] : []));
      for (const s of states) s.snapshot();
      let logits: Float32Array;
      try {
        logits = await this.run(tokens, cache, opts, f);
      } catch (e) {
        for (const s of states) s.restore();
        throw e;
      }
      for (const s of states) s.commit();
      return logits;
    });
  }

  private async run(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, f: Pass): Promise<Float32Array> {
    const { be, hp, w } = this;
    const { nEmbd: D, rmsEps: eps } = hp;
    const T = tokens.length;
    const x = f.buf("x", T * D); // residual stream [T, D]
    const h = f.buf("h", T * D); // normed input of a sub-block [T, D]
    const y = f.buf("y", T * D); // a sub-block's output [T, D]
    const kvMap = hp.arch === "qwen3next" ? "interleave" : "tile";

    be.embed(x, w.token_embd, tokens);
    for (let il = 0; il < hp.nLayer; il++) {
      const L = w.layers[il];
      be.rmsNorm(h, x, L.attn_norm, eps, D, T);
      await f.cb("attn_norm", il, h);
      if (L.kind === "recurrent") {
        await deltaNet(f, y, h, {
          layer: il, proj: this.proj[il]!, betaAlpha: L.betaAlpha, conv: L.ssm_conv1d, dtBias: L.ssm_dt, a: L.ssm_a, norm: L.ssm_norm, wo: L.ssm_out,
          delta: { nHeadK: hp.nHeadK, nHeadV: hp.nHeadV, headDim: hp.ssmState, kvMap }, eps, state: recurrent(cache.layers[il]),
        });
      } else {
        await attention(f, y, h, {
          layer: il, ...L.qkv, wo: L.attn_output, qNorm: L.attn_q_norm, kNorm: L.attn_k_norm, outputGate: true,
          nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hp.headDim, rope: { freqBase: hp.ropeFreqBase, nRot: hp.nRot }, eps, state: fullAttention(cache.layers[il]),
        });
      }
      be.add(x, x, y, T * D);
      await f.cb("attn_residual", il, x);

      be.rmsNorm(h, x, L.post_attention_norm, eps, D, T);
      await f.cb("attn_post_norm", il, h);
      await moe(f, y, h, {
        layer: il, router: L.ffn_gate_inp, route: this.route, nExpert: hp.nExpert, nFf: hp.nFfExp, experts: this.experts,
        shared: L.shared, lookahead: { residual: x, next: this.ahead[il], eps },
      });
      be.add(x, x, y, T * D);
      await f.cb("l_out", il, x);
    }
    return outputLogits(f, x, { norm: w.output_norm, output: w.output }, eps, cache, opts.logits);
  }
}
