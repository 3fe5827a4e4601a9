// GLM-4.5 / 4.6 / Air (GGUF general.architecture = "glm4moe"): pre-norm decoder, GQA attention with q/k/v
// biases, optional per-head q/k RMSNorm, NeoX rope over the first rope.dimension_count values of each head;
// leading dense SwiGLU layers, then MoE layers routed as DeepSeek-V3 (sigmoid scores, selection-only bias
// exp_probs_b, optional group limit, renormalised, scaled) plus an always-on shared expert without a gate.
// The trailing nextn_predict_layers blocks (multi-token prediction) are declared unused and never run.
// Reference: llama.cpp src/models/glm4-moe.cpp.
import type { Backend, Buf, Weight } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import { metaBool, metaNumber } from "../format/gguf/accessors.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { FullAttentionState, fullAttention } from "../kv/full-attention.js";
import { ModelCache } from "../kv/state.js";
import { ModelError } from "../util/errors.js";
import { count, decoderMetadata, metaInRange, positive, type Range } from "./hparams.js";
import { attention, denseFfn, forwardPass, moe, outputLogits, Pass, routersAfter, ScratchPool, type LookaheadRouter } from "./layers.js";
import type { ForwardOptions, Model, ModelContext, ModelInfo } from "./model.js";
import { groupTopKRoute, type RouteFn } from "./routing.js";
import { nextnUnused, outputHead, type Declare } from "./tensors.js";

export const ARCH = "glm4moe";

export interface HParams {
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  /** Layers run: block_count − nextn_predict_layers. */
  nLayer: number;
  /** nextn_predict_layers: trailing MTP blocks in the file, never run. */
  nNextn: number;
  nHead: number;
  nHeadKv: number;
  /** attention.key_length (= value_length). */
  headDim: number;
  /** rope.dimension_count: values of each head that rotate (GLM-4.5: 64 of 128). */
  nRot: number;
  /** leading_dense_block_count: the first layers have a dense FFN instead of experts. */
  nDenseLead: number;
  /** feed_forward_length: the dense layers' FFN width. */
  nFf: number;
  nExpert: number;
  nExpertUsed: number;
  nFfExp: number;
  /** expert_shared_count: the shared expert's width is nFfExp * this (0: none). */
  nExpertShared: number;
  /** expert_group_count / expert_group_used_count (generic keys; 0 or 1: no group limit). */
  nGroup: number;
  nGroupUsed: number;
  gating: "softmax" | "sigmoid";
  expertWeightsNorm: boolean;
  /** 0: none. */
  expertWeightsScale: number;
  ropeFreqBase: number;
  rmsEps: number;
}

// llama.cpp's llama_expert_gating_func_type; 0 (absent) means sigmoid for glm4moe.
const GATING: Record<number, HParams["gating"]> = { 0: "sigmoid", 1: "softmax", 2: "sigmoid" };

export function readHParams(md: GGUFMetadata, nVocab: number): HParams {
  const k = (name: string) => `${ARCH}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  const bad = (msg: string) => new ModelError("bad_hparams", `${ARCH}: ${msg}`);
  const blocks = n("block_count", count(1, 1024));
  const nNextn = n("nextn_predict_layers", count(0, 16), { default: 0 });
  const headDim = n("attention.key_length", count(2, 4096));
  const gatingId = n("expert_gating_func", count(0, 255), { default: 0 });
  const gating = GATING[gatingId];
  if (!gating) throw bad(`expert_gating_func ${gatingId} is not supported (0/2: sigmoid, 1: softmax)`);
  if (md.has(k("rope.dimension_sections"))) throw bad("rope.dimension_sections (M-RoPE, the vision variant) is not supported");
  const hp: HParams = {
    nVocab,
    nCtxTrain: n("context_length", count(1, 1 << 24)),
    nEmbd: n("embedding_length", count(1, 1 << 17)),
    nLayer: blocks - nNextn,
    nNextn,
    nHead: n("attention.head_count", count(1, 1024)),
    nHeadKv: n("attention.head_count_kv", count(1, 1024)),
    headDim,
    nRot: n("rope.dimension_count", count(2, 4096), { default: headDim }),
    nDenseLead: n("leading_dense_block_count", count(0, 1024), { default: 0 }),
    nFf: n("feed_forward_length", count(0, 1 << 20), { default: 0 }),
    nExpert: n("expert_count", count(1, 1 << 16)),
    nExpertUsed: n("expert_used_count", count(1, 1 << 16)),
    nFfExp: n("expert_feed_forward_length", count(1, 1 << 20)),
    nExpertShared: n("expert_shared_count", count(0, 64)),
    nGroup: n("expert_group_count", count(0, 1 << 16), { default: 0 }),
    nGroupUsed: n("expert_group_used_count", count(0, 1 << 16), { default: 0 }),
    gating,
    expertWeightsNorm: metaBool(md, k("expert_weights_norm"), { default: false }),
    expertWeightsScale: metaNumber(md, k("expert_weights_scale"), { default: 0 }),
    ropeFreqBase: n("rope.freq_base", positive(1e12), { default: 10000 }),
    rmsEps: n("attention.layer_norm_rms_epsilon", positive(0.1)),
  };
  const vLen = n("attention.value_length", count(1, 4096), { default: hp.headDim });
  if (vLen !== hp.headDim) throw bad(`attention.value_length ${vLen} != key_length ${hp.headDim}`);
  if (hp.nLayer < 1) throw bad(`block_count ${blocks} leaves no layer besides ${nNextn} nextn_predict_layers`);
  if (hp.nHead % hp.nHeadKv !== 0) throw bad(`head_count ${hp.nHead} not a multiple of head_count_kv ${hp.nHeadKv}`);
  if (hp.nRot % 2 !== 0 || hp.nRot > hp.headDim) throw bad(`rope.dimension_count ${hp.nRot} must be even and at most key_length ${hp.headDim}`);
  if (hp.nExpertUsed > hp.nExpert) throw bad(`expert_used_count ${hp.nExpertUsed} not in [1, ${hp.nExpert}]`);
  if (hp.nDenseLead > hp.nLayer) throw bad(`leading_dense_block_count ${hp.nDenseLead} exceeds the ${hp.nLayer} layers`);
  if (hp.nDenseLead > 0 && hp.nFf < 1) throw bad(`feed_forward_length is needed for ${hp.nDenseLead} leading dense layers`);
  if (!(Number.isFinite(hp.expertWeightsScale) && hp.expertWeightsScale >= 0 && hp.expertWeightsScale <= 1e6)) throw bad(`expert_weights_scale ${hp.expertWeightsScale} is not in [0, 1e6]`);
  try {
    route(hp); // refuses a group split the router cannot make, naming the keys
  } catch (e) {
    throw bad(`expert_group_count ${hp.nGroup} / expert_group_used_count ${hp.nGroupUsed} with ${hp.nExpert} experts, ${hp.nExpertUsed} used: ${(e as Error).message}`);
  }
  return hp;
}

/** The inverse of readHParams: every key it reads, from hp (the generator writes these). */
export function metadata(hp: HParams): GGUFMetadata {
  const k = (name: string) => `${ARCH}.${name}`;
  return new Map([
    [k("block_count"), meta.u32(hp.nLayer + hp.nNextn)],
    ...decoderMetadata(ARCH, hp),
    [k("expert_group_count"), meta.u32(hp.nGroup)],
    [k("expert_group_used_count"), meta.u32(hp.nGroupUsed)],
    [k("attention.key_length"), meta.u32(hp.headDim)],
    [k("attention.value_length"), meta.u32(hp.headDim)],
    [k("rope.dimension_count"), meta.u32(hp.nRot)],
    [k("expert_feed_forward_length"), meta.u32(hp.nFfExp)],
    [k("expert_shared_count"), meta.u32(hp.nExpertShared)],
    [k("leading_dense_block_count"), meta.u32(hp.nDenseLead)],
    [k("expert_weights_scale"), meta.f32(hp.expertWeightsScale)],
    [k("expert_weights_norm"), meta.bool(hp.expertWeightsNorm)],
    [k("expert_gating_func"), meta.u32(hp.gating === "softmax" ? 1 : 2)],
    [k("nextn_predict_layers"), meta.u32(hp.nNextn)],
  ]);
}

export function info(hp: HParams): ModelInfo {
  return { arch: ARCH, nLayer: hp.nLayer, nVocab: hp.nVocab, nEmbd: hp.nEmbd, nCtxTrain: hp.nCtxTrain, nExpert: hp.nExpert, nExpertUsed: hp.nExpertUsed };
}

export function cacheBytes(hp: HParams, nCtx: number): number {
  return hp.nLayer * FullAttentionState.bytesFor(nCtx, hp.nHeadKv * hp.headDim);
}

/** A MoE layer's gating; `bias` is its exp_probs_b, read from the backend once. */
function route(hp: HParams, bias?: Float32Array): RouteFn {
  return groupTopKRoute({
    nExpert: hp.nExpert, k: hp.nExpertUsed, gating: hp.gating, selectionBias: bias, nGroup: hp.nGroup, nGroupUsed: hp.nGroupUsed,
    normalize: hp.expertWeightsNorm, scale: hp.expertWeightsScale,
  });
}

/** Every tensor, shapes in ggml order ([K, N] = N rows of K). */
export function weights(hp: HParams, t: Declare) {
  const { nEmbd: D, nVocab: V, headDim: hd, nHead, nHeadKv, nExpert: E, nFfExp: F, nFf } = hp;
  const Fs = F * hp.nExpertShared;
  const token_embd = t("token_embd.weight", [D, V]);
  // The attention block's required tensors, by field: shared by the layers and the MTP blocks.
  const attnShapes = (n: (s: string, kind?: string) => string): Record<"attn_norm" | "attn_q" | "attn_k" | "attn_v" | "attn_output" | "post_attention_norm", [string, number[]]> => ({
    attn_norm: [n("attn_norm"), [D]],
    attn_q: [n("attn_q"), [D, nHead * hd]],
    attn_k: [n("attn_k"), [D, nHeadKv * hd]],
    attn_v: [n("attn_v"), [D, nHeadKv * hd]],
    attn_output: [n("attn_output"), [nHead * hd, D]],
    post_attention_norm: [n("post_attention_norm"), [D]],
  });
  const layers = Array.from({ length: hp.nLayer }, (_, i) => {
    const n = (name: string, kind = "weight") => `blk.${i}.${name}.${kind}`;
    const a = attnShapes(n);
    const attn = {
      attn_norm: t(...a.attn_norm), attn_q: t(...a.attn_q), attn_k: t(...a.attn_k), attn_v: t(...a.attn_v),
      attn_q_bias: t.optional(n("attn_q", "bias"), [nHead * hd]),
      attn_k_bias: t.optional(n("attn_k", "bias"), [nHeadKv * hd]),
      attn_v_bias: t.optional(n("attn_v", "bias"), [nHeadKv * hd]),
      attn_output: t(...a.attn_output),
      attn_q_norm: t.optional(n("attn_q_norm"), [hd]), // GLM-4.5/4.6 have them, Air does not
      attn_k_norm: t.optional(n("attn_k_norm"), [hd]),
      post_attention_norm: t(...a.post_attention_norm),
    };
    if (i < hp.nDenseLead) {
      return { ...attn, ffn: { gate: t(n("ffn_gate"), [D, nFf]), up: t(n("ffn_up"), [D, nFf]), down: t(n("ffn_down"), [nFf, D]) } };
    }
    t.experts(i, {
      gate: { name: n("ffn_gate_exps"), shape: [D, F, E] },
      up: { name: n("ffn_up_exps"), shape: [D, F, E] },
      down: { name: n("ffn_down_exps"), shape: [F, D, E] },
    });
    const shared = Fs > 0 ? { gate: t(n("ffn_gate_shexp"), [D, Fs]), up: t(n("ffn_up_shexp"), [D, Fs]), down: t(n("ffn_down_shexp"), [Fs, D]) } : undefined;
    return { ...attn, ffn_gate_inp: t(n("ffn_gate_inp"), [D, E]), exp_probs_b: t(n("exp_probs_b", "bias"), [E]), shared };
  });
  // The MTP blocks: every tensor llama.cpp's loader knows for them, allowed in the file and never read.
  for (let i = hp.nLayer; i < hp.nLayer + hp.nNextn; i++) {
    const n = (name: string, kind = "weight") => `blk.${i}.${name}.${kind}`;
    for (const [name, shape] of Object.values(attnShapes(n))) t.unused(name, shape);
    const mtp: [string, number[]][] = [
      [n("attn_q", "bias"), [nHead * hd]], [n("attn_k", "bias"), [nHeadKv * hd]], [n("attn_v", "bias"), [nHeadKv * hd]],
      [n("attn_q_norm"), [hd]], [n("attn_k_norm"), [hd]],
      [n("ffn_gate_inp"), [D, E]], [n("exp_probs_b", "bias"), [E]],
      [n("ffn_gate_exps"), [D, F, E]], [n("ffn_up_exps"), [D, F, E]], [n("ffn_down_exps"), [F, D, E]],
      ...(Fs > 0 ? ([[n("ffn_gate_shexp"), [D, Fs]], [n("ffn_up_shexp"), [D, Fs]], [n("ffn_down_shexp"), [Fs, D]]] as [string, number[]][]) : []),
    ];
    for (const [name, shape] of mtp) t.unused(name, shape);
    nextnUnused(t, i, D, V);
  }
  return { token_embd, layers, ...outputHead(t, token_embd, D, V) };
}
export type Weights = ReturnType<typeof weights>;
type Layer = Weights["layers"][number];
type MoeLayer = Extract<Layer, { ffn_gate_inp: Weight }>;
const isMoe = (L: Layer): L is MoeLayer => "ffn_gate_inp" in L;

export class Glm4Moe implements Model {
  readonly info: ModelInfo;
  private readonly be: Backend;
  private readonly experts: ExpertSource;
  private readonly scratch: ScratchPool;
  /** Per layer its RouteFn (undefined for a dense layer) and the MoE routers after it, once the biases are read. */
  private routing?: Promise<{ routes: (RouteFn | undefined)[]; ahead: LookaheadRouter[][] }>;

  constructor(readonly hp: HParams, private readonly w: Weights, ctx: ModelContext) {
    this.info = info(hp);
    this.be = ctx.backend;
    this.experts = ctx.experts;
    this.scratch = new ScratchPool(ctx.backend);
  }

  makeCache(nCtx: number): ModelCache {
    const kvDim = this.hp.nHeadKv * this.hp.headDim;
    return new ModelCache(Array.from({ length: this.hp.nLayer }, () => new FullAttentionState(this.be, nCtx, kvDim)), nCtx);
  }

  cacheBytes(nCtx: number): number {
    return cacheBytes(this.hp, nCtx);
  }

  /** The selection biases come to the host once (routing runs there), in one read. */
  private async readRouting(): Promise<{ routes: (RouteFn | undefined)[]; ahead: LookaheadRouter[][] }> {
    const { be, hp, w } = this;
    const moeLayers = w.layers.flatMap((L, i) => (isMoe(L) ? [{ L, i }] : []));
    const bufs = moeLayers.map(({ L }) => {
      const b = be.alloc(hp.nExpert);
      be.zero(b);
      be.addRows(b, L.exp_probs_b, hp.nExpert, 1);
      return b;
    });
    try {
      const biases = await be.readMany(bufs);
      const routes: (RouteFn | undefined)[] = new Array(hp.nLayer).fill(undefined);
      moeLayers.forEach(({ i }, j) => (routes[i] = route(hp, biases[j])));
      const routers = moeLayers.map(({ L, i }): LookaheadRouter => ({ layer: i, norm: L.post_attention_norm, router: L.ffn_gate_inp, route: routes[i]! }));
      return { routes, ahead: routersAfter(routers, hp.nLayer) };
    } finally {
      for (const b of bufs) be.free(b);
    }
  }

  forward(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions): Promise<Float32Array> {
    return forwardPass(this.be, this.scratch, tokens, cache, opts, async (f) => {
      this.routing ??= this.readRouting();
      this.routing.catch(() => (this.routing = undefined)); // a failed read is retried by the next call
      return this.run(tokens, cache, opts, f, await this.routing);
    });
  }

  private async run(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, f: Pass, r: Awaited<NonNullable<Glm4Moe["routing"]>>): Promise<Float32Array> {
    const { be, hp, w } = this;
    const { nEmbd: D, rmsEps: eps } = hp;
    const T = tokens.length;
    const x = f.buf("x", T * D); // residual stream [T, D]
    const h = f.buf("h", T * D); // normed input of a sub-block [T, D]
    const y: Buf = f.buf("y", T * D); // a sub-block's output [T, D]

    be.embed(x, w.token_embd, tokens);
    for (let il = 0; il < hp.nLayer; il++) {
      const L = w.layers[il];
      be.rmsNorm(h, x, L.attn_norm, eps, D, T);
      await f.cb("attn_norm", il, h);
      await attention(f, y, h, {
        layer: il, wq: L.attn_q, wk: L.attn_k, wv: L.attn_v, wo: L.attn_output, bq: L.attn_q_bias, bk: L.attn_k_bias, bv: L.attn_v_bias,
        qNorm: L.attn_q_norm, kNorm: L.attn_k_norm, nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hp.headDim,
        rope: { freqBase: hp.ropeFreqBase, nRot: hp.nRot }, eps, state: fullAttention(cache.layers[il]),
      });
      be.add(x, x, y, T * D);
      await f.cb("ffn_inp", il, x);

      be.rmsNorm(h, x, L.post_attention_norm, eps, D, T);
      await f.cb("post_attn_norm", il, h);
      if (!isMoe(L)) denseFfn(f, y, h, L.ffn);
      else {
        await moe(f, y, h, {
          layer: il, router: L.ffn_gate_inp, route: r.routes[il]!, nExpert: hp.nExpert, nFf: hp.nFfExp, experts: this.experts,
          shared: L.shared, lookahead: { residual: x, next: r.ahead[il], eps },
        });
      }
      be.add(x, x, y, T * D);
      await f.cb("l_out", il, x);
    }
    return outputLogits(f, x, { norm: w.output_norm, output: w.output }, eps, cache, opts.logits);
  }
}
