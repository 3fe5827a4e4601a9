// OLMoE (GGUF general.architecture = "olmoe"): pre-norm decoder, MHA attention whose q and k are RMS-normed over the
// whole projection (one [n_embd] weight each, not per head) before NeoX rope, every layer a sparse MoE FFN (softmax
// -> top-k, the weights left as the raw probabilities: no renormalisation), SwiGLU experts of feed_forward_length.
// Reference: llama.cpp src/models/olmoe.cpp, HF modeling_olmoe.py.
import type { Backend } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { FullAttentionState, fullAttention } from "../kv/full-attention.js";
import { ModelCache } from "../kv/state.js";
import { ModelError } from "../util/errors.js";
import { count, decoderMetadata, metaInRange, modelInfo, positive, type Range } from "./hparams.js";
import { attention, decoderStack, forwardPass, moe, routersAfter, ScratchPool, type LookaheadRouter, type Pass } from "./layers.js";
import type { ForwardOptions, Model, ModelContext, ModelInfo } from "./model.js";
import { softmaxTopKRoute, type RouteFn } from "./routing.js";
import type { Declare } from "./tensors.js";

export const ARCH = "olmoe";

export interface HParams {
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  /** attention.key_length, else embedding_length / head_count (llama.cpp's default). */
  headDim: number;
  nExpert: number;
  nExpertUsed: number;
  /** feed_forward_length: each expert's gate/up rows. */
  nFf: number;
  ropeFreqBase: number;
  rmsEps: number;
}

export function readHParams(md: GGUFMetadata, nVocab: number): HParams {
  const k = (name: string) => `${ARCH}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  const bad = (msg: string) => new ModelError("bad_hparams", `${ARCH}: ${msg}`);
  const nEmbd = n("embedding_length", count(1, 1 << 17));
  const nHead = n("attention.head_count", count(1, 1024));
  if (!md.has(k("attention.key_length")) && nEmbd % nHead !== 0) throw bad(`embedding_length ${nEmbd} is not a multiple of head_count ${nHead} (and no attention.key_length)`);
  const headDim = n("attention.key_length", count(2, 4096), { default: nEmbd / nHead });
  const hp: HParams = {
    nVocab,
    nCtxTrain: n("context_length", count(1, 1 << 24)),
    nEmbd,
    nLayer: n("block_count", count(1, 1024)),
    nHead,
    nHeadKv: n("attention.head_count_kv", count(1, 1024), { default: nHead }),
    headDim,
    nExpert: n("expert_count", count(1, 1 << 16)),
    nExpertUsed: n("expert_used_count", count(1, 1 << 16)),
    nFf: n("feed_forward_length", count(1, 1 << 20)),
    ropeFreqBase: n("rope.freq_base", positive(1e12), { default: 10000 }),
    rmsEps: n("attention.layer_norm_rms_epsilon", positive(0.1)),
  };
  const vLen = n("attention.value_length", count(1, 4096), { default: headDim });
  if (vLen !== headDim) throw bad(`attention.value_length ${vLen} != key_length ${headDim}`);
  const nRot = n("rope.dimension_count", count(1, 4096), { default: headDim });
  if (nRot !== headDim) throw bad(`rope.dimension_count ${nRot} != key_length ${headDim} (olmoe ropes whole heads)`);
  if (headDim % 2 !== 0) throw bad(`key_length ${headDim} is odd: rope needs pairs`);
  // llama.cpp declares attn_q / attn_output as [n_embd, n_embd] and the k norm over n_embd: q and k span the residual width.
  if (nHead * headDim !== nEmbd) throw bad(`head_count ${nHead} x key_length ${headDim} != embedding_length ${nEmbd} (q spans the residual width)`);
  if (hp.nHeadKv * headDim !== nEmbd) throw bad(`head_count_kv ${hp.nHeadKv} x key_length ${headDim} != embedding_length ${nEmbd} (attn_k_norm normalises an n_embd-wide k)`);
  if (hp.nExpertUsed > hp.nExpert) throw bad(`expert_used_count ${hp.nExpertUsed} not in [1, ${hp.nExpert}]`);
  return hp;
}

/** The inverse of readHParams: every key it reads, from hp (the generator writes these). */
export function metadata(hp: HParams): GGUFMetadata {
  const k = (name: string) => `${ARCH}.${name}`;
  return new Map([
    [k("block_count"), meta.u32(hp.nLayer)],
    ...decoderMetadata(ARCH, hp),
  ]);
}

export function info(hp: HParams): ModelInfo {
  return modelInfo(ARCH, hp);
}

export function cacheBytes(hp: HParams, nCtx: number): number {
  return hp.nLayer * FullAttentionState.bytesFor(nCtx, hp.nHeadKv * hp.headDim);
}

/** Every tensor, shapes in ggml order ([K, N] = N rows of K); q, k and v are all [D, D] (checked above). */
export function weights(hp: HParams, t: Declare) {
  const { nEmbd: D, nVocab: V, nExpert: E, nFf: F } = hp;
  const layers = Array.from({ length: hp.nLayer }, (_, i) => {
    const n = (name: string) => `blk.${i}.${name}.weight`;
    t.experts(i, {
      gate: { name: n("ffn_gate_exps"), shape: [D, F, E] },
      up: { name: n("ffn_up_exps"), shape: [D, F, E] },
      down: { name: n("ffn_down_exps"), shape: [F, D, E] },
    });
    return {
      attn_norm: t(n("attn_norm"), [D]),
      attn_q: t(n("attn_q"), [D, D]),
      attn_k: t(n("attn_k"), [D, D]),
      attn_v: t(n("attn_v"), [D, D]),
      attn_q_norm: t(n("attn_q_norm"), [D]), // over the whole q row, not per head
      attn_k_norm: t(n("attn_k_norm"), [D]),
      attn_output: t(n("attn_output"), [D, D]),
      ffn_norm: t(n("ffn_norm"), [D]),
      ffn_gate_inp: t(n("ffn_gate_inp"), [D, E]),
    };
  });
  return {
    token_embd: t("token_embd.weight", [D, V]),
    layers,
    output_norm: t("output_norm.weight", [D]),
    output: t("output.weight", [D, V]), // required: olmoe never ties it to token_embd
  };
}
export type Weights = ReturnType<typeof weights>;

export class Olmoe implements Model {
  readonly info: ModelInfo;
  private readonly be: Backend;
  private readonly experts: ExpertSource;
  private readonly scratch: ScratchPool;
  private readonly route: RouteFn;
  /** Per layer, the routers after it, for lookahead. */
  private readonly ahead: LookaheadRouter[][];

  constructor(readonly hp: HParams, private readonly w: Weights, ctx: ModelContext) {
    this.info = info(hp);
    this.be = ctx.backend;
    this.experts = ctx.experts;
    this.scratch = new ScratchPool(ctx.backend);
    this.route = softmaxTopKRoute(hp.nExpert, hp.nExpertUsed, false); // the raw softmax probabilities of the top k
    this.ahead = routersAfter(w.layers.map((L, i) => ({ layer: i, norm: L.ffn_norm, router: L.ffn_gate_inp, route: this.route })), hp.nLayer);
  }

  makeCache(nCtx: number): ModelCache {
    const kvDim = this.hp.nHeadKv * this.hp.headDim;
    return new ModelCache(Array.from({ length: this.hp.nLayer }, () => new FullAttentionState(this.be, nCtx, kvDim)), nCtx);
  }

  cacheBytes(nCtx: number): number {
    return cacheBytes(this.hp, nCtx);
  }

  forward(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions): Promise<Float32Array> {
    return forwardPass(this.be, this.scratch, tokens, cache, opts, (f) => this.run(tokens, cache, opts, f));
  }

  private run(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, f: Pass): Promise<Float32Array> {
    const { hp, w } = this;
    const eps = hp.rmsEps;
    return decoderStack(f, tokens, cache, opts, {
      embd: w.token_embd, output: { norm: w.output_norm, output: w.output }, eps, nLayer: hp.nLayer, ffnNormName: "ffn_norm",
      layer: (il) => {
        const L = w.layers[il];
        return {
          attnNorm: L.attn_norm, ffnNorm: L.ffn_norm,
          attention: (y, h) => attention(f, y, h, {
            layer: il, wq: L.attn_q, wk: L.attn_k, wv: L.attn_v, wo: L.attn_output, qNorm: L.attn_q_norm, kNorm: L.attn_k_norm,
            nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hp.headDim, rope: { freqBase: hp.ropeFreqBase }, eps, state: fullAttention(cache.layers[il]),
          }),
          ffn: (y, h, x) => moe(f, y, h, {
            layer: il, router: L.ffn_gate_inp, route: this.route, nExpert: hp.nExpert, nFf: hp.nFf, experts: this.experts,
            lookahead: { residual: x, next: this.ahead[il], eps },
          }),
        };
      },
    });
  }
}
