// The plain routed-MoE decoder qwen3moe, llama (Mixtral) and olmoe share: every layer full attention, then a
// softmax-routed MoE FFN of SwiGLU experts (no shared expert, no dense layer), each layer's KV in a
// FullAttentionState. The architecture files differ in their keys, their tensors and the options this takes
// (q/k norms and biases are there or not, rope pairing, renormalised weights or not).
import type { Backend, Weight } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import { FullAttentionState, fullAttention } from "../kv/full-attention.js";
import { ModelCache } from "../kv/state.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { ModelError } from "../util/errors.js";
import { count, metaInRange, metaPerLayer, modelInfo, positive, type Range } from "./hparams.js";
import { attention, decoderStack, forwardPass, ScratchPool, type Pass } from "./layers.js";
import { moe, routersAfter, type LookaheadRouter } from "./moe-block.js";
import type { ForwardOptions, Model, ModelContext, ModelInfo } from "./model.js";
import { softmaxTopKRoute, type RouteFn } from "./routing.js";
import type { QkvWeights } from "./tensors.js";

export interface MoeDecoderHParams {
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nExpert: number;
  nExpertUsed: number;
  ropeFreqBase: number;
  rmsEps: number;
}

/**
 * The keys of llama.cpp's generic loader for a decoder whose layers all route to experts (llama, olmoe): head_count_kv
 * defaults to head_count, key_length to embedding_length / head_count, and value_length and rope.dimension_count must
 * equal key_length (whole heads rotate); feed_forward_length is the experts' width. `nExpert` is expert_count, read by the caller.
 */
export function readMoeDecoderHParams(md: GGUFMetadata, arch: string, nVocab: number, nExpert: number): MoeDecoderHParams & { nFf: number } {
  const k = (name: string) => `${arch}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  const bad = (msg: string) => new ModelError("bad_hparams", `${arch}: ${msg}`);
  const nEmbd = n("embedding_length", count(1, 1 << 17));
  const nLayer = n("block_count", count(1, 1024));
  // Keys llama.cpp reads with get_key_or_arr: one number, or one per block that every layer shares.
  const all = Array.from({ length: nLayer }, (_, i) => i);
  const perLayer = (name: string, r: Range, opts?: { default: number }) => metaPerLayer(md, k(name), r, { blocks: nLayer, used: all, ...opts });
  const nHead = perLayer("attention.head_count", count(1, 1024));
  if (!md.has(k("attention.key_length")) && nEmbd % nHead !== 0) throw bad(`embedding_length ${nEmbd} is not a multiple of head_count ${nHead} (and no attention.key_length)`);
  const headDim = n("attention.key_length", count(2, 4096), { default: nEmbd / nHead });
  const hp = {
    nVocab,
    nCtxTrain: n("context_length", count(1, 1 << 24)),
    nEmbd,
    nLayer,
    nHead,
    nHeadKv: perLayer("attention.head_count_kv", count(1, 1024), { default: nHead }),
    headDim,
    nExpert,
    nExpertUsed: perLayer("expert_used_count", count(1, 1 << 16)),
    nFf: perLayer("feed_forward_length", count(1, 1 << 20)),
    ropeFreqBase: n("rope.freq_base", positive(1e12), { default: 10000 }),
    rmsEps: n("attention.layer_norm_rms_epsilon", positive(0.1)),
  };
  const vLen = n("attention.value_length", count(1, 4096), { default: headDim });
  if (vLen !== headDim) throw bad(`attention.value_length ${vLen} != key_length ${headDim}`);
  const nRot = n("rope.dimension_count", count(1, 4096), { default: headDim });
  if (nRot !== headDim) throw bad(`rope.dimension_count ${nRot} != key_length ${headDim} (${arch} ropes whole heads)`);
  if (headDim % 2 !== 0) throw bad(`key_length ${headDim} is odd: rope needs pairs`);
  if (hp.nHead % hp.nHeadKv !== 0) throw bad(`head_count ${hp.nHead} not a multiple of head_count_kv ${hp.nHeadKv}`);
  if (hp.nExpertUsed > nExpert) throw bad(`expert_used_count ${hp.nExpertUsed} not in [1, ${nExpert}]`);
  return hp;
}

/** One layer's dense tensors by GGUF name; the optional ones are absent in some architectures or files. */
export interface MoeDecoderLayer {
  attn_norm: Weight;
  /** attn_q/k/v (and their biases), or one fused attn_qkv. */
  qkv: QkvWeights;
  attn_output: Weight;
  /** [headDim] (per head: Qwen3) or [nHead·headDim] / [nHeadKv·headDim] (the whole projection: OLMoE). */
  attn_q_norm?: Weight;
  attn_k_norm?: Weight;
  attn_output_bias?: Weight;
  ffn_norm: Weight;
  ffn_gate_inp: Weight;
}

export interface MoeDecoderWeights {
  token_embd: Weight;
  output_norm: Weight;
  output: Weight;
  layers: MoeDecoderLayer[];
}

export interface MoeDecoderOptions {
  /** Rows of each expert's gate/up. */
  nFf: number;
  /** Renormalise the top-k softmax probabilities to sum to 1 (Qwen3, Mixtral) or keep them raw (OLMoE). */
  normalize: boolean;
  /** Rope pairing: NeoX (default) or adjacent pairs (Llama). */
  ropeMode?: "neox" | "norm";
}

/** KV bytes of nCtx tokens over every layer. */
export function moeDecoderCacheBytes(hp: MoeDecoderHParams, nCtx: number): number {
  return hp.nLayer * FullAttentionState.bytesFor(nCtx, hp.nHeadKv * hp.headDim);
}

export class MoeDecoder implements Model {
  readonly info: ModelInfo;
  /** A decoderStack model: its forward takes ForwardOptions.later. */
  readonly recordsAhead = true;
  private readonly be: Backend;
  private readonly experts: ExpertSource;
  private readonly scratch: ScratchPool;
  private readonly route: RouteFn;
  /** Per layer, the routers after it, for lookahead. */
  private readonly ahead: LookaheadRouter[][];

  constructor(arch: string, readonly hp: MoeDecoderHParams, private readonly w: MoeDecoderWeights, ctx: ModelContext, private readonly o: MoeDecoderOptions) {
    this.info = modelInfo(arch, hp);
    this.be = ctx.backend;
    this.experts = ctx.experts;
    this.scratch = new ScratchPool(ctx.backend);
    this.route = softmaxTopKRoute(hp.nExpert, hp.nExpertUsed, o.normalize);
    this.ahead = routersAfter(w.layers.map((L, i) => ({ layer: i, norm: L.ffn_norm, router: L.ffn_gate_inp, route: this.route })), hp.nLayer);
  }

  makeCache(nCtx: number): ModelCache {
    const kvDim = this.hp.nHeadKv * this.hp.headDim;
    return new ModelCache(Array.from({ length: this.hp.nLayer }, () => new FullAttentionState(this.be, nCtx, kvDim)), nCtx);
  }

  cacheBytes(nCtx: number): number {
    return moeDecoderCacheBytes(this.hp, nCtx);
  }

  forward(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions): Promise<Float32Array> {
    return forwardPass(this.be, this.scratch, tokens, cache, opts, (f) => this.run(tokens, cache, opts, f));
  }

  private run(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, f: Pass): Promise<Float32Array> {
    const { hp, w, o } = this;
    const eps = hp.rmsEps;
    return decoderStack(f, tokens, cache, opts, {
      embd: w.token_embd, output: { norm: w.output_norm, output: w.output }, eps, nLayer: hp.nLayer, ffnNormName: "ffn_norm",
      layer: (il) => {
        const L = w.layers[il];
        return {
          attnNorm: L.attn_norm, ffnNorm: L.ffn_norm,
          attention: (y, h) => attention(f, y, h, {
            layer: il, ...L.qkv, wo: L.attn_output, bo: L.attn_output_bias,
            qNorm: L.attn_q_norm, kNorm: L.attn_k_norm, nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hp.headDim,
            rope: { freqBase: hp.ropeFreqBase, opts: o.ropeMode === "norm" ? { mode: "norm" } : undefined }, eps, state: fullAttention(cache.layers[il]),
          }),
          ffn: (y, h, x) => moe(f, y, h, {
            layer: il, router: L.ffn_gate_inp, route: this.route, nExpert: hp.nExpert, nFf: o.nFf, experts: this.experts,
            lookahead: { residual: x, next: this.ahead[il], eps },
          }),
        };
      },
    });
  }
}
