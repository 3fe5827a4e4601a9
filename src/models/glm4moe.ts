// GLM-4.5 / 4.6 / Air (GGUF general.architecture = "glm4moe"): pre-norm decoder, GQA attention with q/k/v
// biases, optional per-head q/k RMSNorm, NeoX rope over the first rope.dimension_count values of each head;
// leading dense SwiGLU layers, then MoE layers routed as DeepSeek-V3 (sigmoid scores, selection-only bias
// exp_probs_b, optional group limit, renormalised, scaled) plus an always-on shared expert without a gate.
// The trailing nextn_predict_layers blocks (multi-token prediction) are declared unused and never run.
// Reference: llama.cpp src/models/glm4-moe.cpp.
import type { Backend } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { FullAttentionState, fullAttention } from "../kv/full-attention.js";
import { ModelCache } from "../kv/state.js";
import { ModelError } from "../util/errors.js";
import { count, decoderMetadata, metaInRange, metaPerLayer, modelInfo, positive, type Range } from "./hparams.js";
import { declareFfn, declareMtpUnused, ffnBlock, LazyRouting, moeMetadata, readMoeHParams, readRouting, type MoeHParams, type Routing } from "./deepseek-moe.js";
import { attention, decoderStack, forwardPass, Pass, ScratchPool } from "./layers.js";
import type { ForwardOptions, Model, ModelContext, ModelInfo } from "./model.js";
import { declareQkv, outputHead, qkvUnused, type Declare } from "./tensors.js";

export const ARCH = "glm4moe";

export interface HParams extends MoeHParams {
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
  ropeFreqBase: number;
  rmsEps: number;
}

export function readHParams(md: GGUFMetadata, nVocab: number): HParams {
  const k = (name: string) => `${ARCH}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  const bad = (msg: string) => new ModelError("bad_hparams", `${ARCH}: ${msg}`);
  const blocks = n("block_count", count(1, 1024));
  const nNextn = n("nextn_predict_layers", count(0, 16), { default: 0 });
  const headDim = n("attention.key_length", count(2, 4096));
  if (md.has(k("rope.dimension_sections"))) throw bad("rope.dimension_sections (M-RoPE, the vision variant) is not supported");
  if (blocks - nNextn < 1) throw bad(`block_count ${blocks} leaves no layer besides ${nNextn} nextn_predict_layers`);
  const all = Array.from({ length: blocks - nNextn }, (_, i) => i);
  const perLayer = (name: string, r: Range) => metaPerLayer(md, k(name), r, { blocks, used: all }); // one value for every layer
  const hp: HParams = {
    nVocab,
    nCtxTrain: n("context_length", count(1, 1 << 24)),
    nEmbd: n("embedding_length", count(1, 1 << 17)),
    nLayer: blocks - nNextn,
    nNextn,
    nHead: perLayer("attention.head_count", count(1, 1024)),
    nHeadKv: perLayer("attention.head_count_kv", count(1, 1024)),
    headDim,
    nRot: n("rope.dimension_count", count(2, 4096), { default: headDim }),
    ropeFreqBase: n("rope.freq_base", positive(1e12), { default: 10000 }),
    rmsEps: n("attention.layer_norm_rms_epsilon", positive(0.1)),
    ...readMoeHParams(md, ARCH, { nLayer: blocks - nNextn, blocks }, "sigmoid"), // llama.cpp: gating 0 (absent) is sigmoid for glm4moe
  };
  const vLen = n("attention.value_length", count(1, 4096), { default: hp.headDim });
  if (vLen !== hp.headDim) throw bad(`attention.value_length ${vLen} != key_length ${hp.headDim}`);
  if (hp.nHead % hp.nHeadKv !== 0) throw bad(`head_count ${hp.nHead} not a multiple of head_count_kv ${hp.nHeadKv}`);
  if (hp.nRot % 2 !== 0 || hp.nRot > hp.headDim) throw bad(`rope.dimension_count ${hp.nRot} must be even and at most key_length ${hp.headDim}`);
  return hp;
}

/** The inverse of readHParams: every key it reads, from hp (the generator writes these). */
export function metadata(hp: HParams): GGUFMetadata {
  const k = (name: string) => `${ARCH}.${name}`;
  return new Map([
    [k("block_count"), meta.u32(hp.nLayer + hp.nNextn)],
    ...decoderMetadata(ARCH, hp),
    [k("attention.key_length"), meta.u32(hp.headDim)],
    [k("attention.value_length"), meta.u32(hp.headDim)],
    [k("rope.dimension_count"), meta.u32(hp.nRot)],
    ...moeMetadata(ARCH, hp),
    [k("nextn_predict_layers"), meta.u32(hp.nNextn)],
  ]);
}

export function info(hp: HParams): ModelInfo {
  return modelInfo(ARCH, hp);
}

export function cacheBytes(hp: HParams, nCtx: number): number {
  return hp.nLayer * FullAttentionState.bytesFor(nCtx, hp.nHeadKv * hp.headDim);
}

/** Every tensor, shapes in ggml order ([K, N] = N rows of K). */
export function weights(hp: HParams, t: Declare) {
  const { nEmbd: D, nVocab: V, headDim: hd, nHead, nHeadKv } = hp;
  const token_embd = t("token_embd.weight", [D, V]);
  // The attention block's required tensors, by field: shared by the layers and the MTP blocks.
  const attnShapes = (n: (s: string, kind?: string) => string): Record<"attn_norm" | "attn_output" | "post_attention_norm", [string, number[]]> => ({
    attn_norm: [n("attn_norm"), [D]],
    attn_output: [n("attn_output"), [nHead * hd, D]],
    post_attention_norm: [n("post_attention_norm"), [D]],
  });
  const layers = Array.from({ length: hp.nLayer }, (_, i) => {
    const n = (name: string, kind = "weight") => `blk.${i}.${name}.${kind}`;
    const a = attnShapes(n);
    const attn = {
      attn_norm: t(...a.attn_norm),
      qkv: declareQkv(t, i, D, nHead * hd, nHeadKv * hd, true), // attn_q/k/v, or one attn_qkv (--fuse-qkv); biases optional
      attn_output: t(...a.attn_output),
      attn_q_norm: t.optional(n("attn_q_norm"), [hd]), // GLM-4.5/4.6 have them, Air does not
      attn_k_norm: t.optional(n("attn_k_norm"), [hd]),
      post_attention_norm: t(...a.post_attention_norm),
    };
    return { ...attn, ffn: declareFfn(t, i, n, hp, D, { biasRequired: true, fusedExperts: false }) };
  });
  // The MTP blocks: every tensor llama.cpp's loader knows for them, allowed in the file and never read.
  for (let i = hp.nLayer; i < hp.nLayer + hp.nNextn; i++) {
    const n = (name: string, kind = "weight") => `blk.${i}.${name}.${kind}`;
    for (const [name, shape] of Object.values(attnShapes(n))) t.unused(name, shape);
    qkvUnused(t, i, D, nHead * hd, nHeadKv * hd, true);
    t.unused(n("attn_q_norm"), [hd]);
    t.unused(n("attn_k_norm"), [hd]);
    declareMtpUnused(t, i, hp, D, V, false); // llama.cpp's glm4moe takes no fused ffn_gate_up_exps
  }
  return { token_embd, layers, ...outputHead(t, token_embd, D, V) };
}
export type Weights = ReturnType<typeof weights>;

export class Glm4Moe implements Model {
  readonly info: ModelInfo;
  /** A decoderStack model: its forward takes ForwardOptions.later. */
  readonly recordsAhead = true;
  private readonly be: Backend;
  private readonly experts: ExpertSource;
  private readonly scratch: ScratchPool;
  private readonly routing: LazyRouting;

  constructor(readonly hp: HParams, private readonly w: Weights, ctx: ModelContext) {
    this.info = info(hp);
    this.be = ctx.backend;
    this.experts = ctx.experts;
    this.scratch = new ScratchPool(ctx.backend);
    this.routing = new LazyRouting(() => readRouting(this.be, hp, w.layers.map((L) => ({ norm: L.post_attention_norm, ffn: L.ffn }))));
  }

  makeCache(nCtx: number): ModelCache {
    const kvDim = this.hp.nHeadKv * this.hp.headDim;
    return new ModelCache(Array.from({ length: this.hp.nLayer }, () => new FullAttentionState(this.be, nCtx, kvDim)), nCtx);
  }

  cacheBytes(nCtx: number): number {
    return cacheBytes(this.hp, nCtx);
  }

  forward(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions): Promise<Float32Array> {
    return forwardPass(this.be, this.scratch, tokens, cache, opts, async (f) => this.run(tokens, cache, opts, f, await this.routing.get()));
  }

  private run(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, f: Pass, routing: Routing): Promise<Float32Array> {
    const { hp, w } = this;
    const eps = hp.rmsEps;
    const ffn = { hp, experts: this.experts, routing, eps };
    return decoderStack(f, tokens, cache, opts, {
      embd: w.token_embd, output: { norm: w.output_norm, output: w.output }, eps, nLayer: hp.nLayer, ffnNormName: "post_attn_norm",
      layer: (il) => {
        const L = w.layers[il];
        return {
          attnNorm: L.attn_norm, ffnNorm: L.post_attention_norm,
          attention: (y, h) => attention(f, y, h, {
            layer: il, ...L.qkv, wo: L.attn_output,
            qNorm: L.attn_q_norm, kNorm: L.attn_k_norm, nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hp.headDim,
            rope: { freqBase: hp.ropeFreqBase, nRot: hp.nRot }, eps, state: fullAttention(cache.layers[il]),
          }),
          ffn: (y, h, x) => ffnBlock(f, y, h, x, il, L.ffn, ffn),
        };
      },
    });
  }
}
