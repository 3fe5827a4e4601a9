// Llama with experts: Mixtral (GGUF general.architecture = "llama" with expert_count > 0): pre-norm decoder, GQA
// attention with optional q/k/v/output biases and NORM (adjacent-pair) rope over whole heads (the converter
// permuted Q/K rows for it), every layer a sparse MoE FFN (softmax -> top-k -> renormalised, SwiGLU experts whose
// width is feed_forward_length). A dense Llama (no experts) is refused: there is nothing to stream.
// Reference: llama.cpp src/models/llama.cpp, mlx-lm models/mixtral.py.
import type { Backend } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import { metaNumber } from "../format/gguf/read.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { FullAttentionState, fullAttention } from "../kv/full-attention.js";
import { ModelCache } from "../kv/state.js";
import { ModelError } from "../util/errors.js";
import { count, decoderMetadata, metaInRange, modelInfo, positive, type Range } from "./hparams.js";
import { attention, decoderStack, forwardPass, moe, routersAfter, ScratchPool, type LookaheadRouter, type Pass } from "./layers.js";
import type { ForwardOptions, Model, ModelContext, ModelInfo } from "./model.js";
import { softmaxTopKRoute, type RouteFn } from "./routing.js";
import { outputHead, type Declare } from "./tensors.js";

export const ARCH = "llama";

export interface HParams {
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  /** attention.key_length, else embedding_length / head_count (llama.cpp's default; Mixtral files carry no key_length). */
  headDim: number;
  nExpert: number;
  nExpertUsed: number;
  /** feed_forward_length: each expert's gate/up rows (llama reads no expert_feed_forward_length). */
  nFf: number;
  ropeFreqBase: number;
  rmsEps: number;
}

export function readHParams(md: GGUFMetadata, nVocab: number): HParams {
  const k = (name: string) => `${ARCH}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  const bad = (msg: string) => new ModelError("bad_hparams", `${ARCH}: ${msg}`);
  const nExpert = n("expert_count", count(0, 1 << 16), { default: 0 });
  if (nExpert === 0) {
    throw new ModelError("dense_model", `${ARCH}: ${k("expert_count")} is absent or 0: a dense Llama model, which has no experts to stream; moestream runs the Mixture-of-Experts ones (Mixtral); run dense models with llama.cpp`);
  }
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
    nExpert,
    nExpertUsed: n("expert_used_count", count(1, 1 << 16)),
    nFf: n("feed_forward_length", count(1, 1 << 20)),
    ropeFreqBase: n("rope.freq_base", positive(1e12), { default: 10000 }),
    rmsEps: n("attention.layer_norm_rms_epsilon", positive(0.1)),
  };
  const vLen = n("attention.value_length", count(1, 4096), { default: headDim });
  if (vLen !== headDim) throw bad(`attention.value_length ${vLen} != key_length ${headDim}`);
  const nRot = n("rope.dimension_count", count(1, 4096), { default: headDim });
  if (nRot !== headDim) throw bad(`rope.dimension_count ${nRot} != key_length ${headDim} (llama ropes whole heads)`);
  if (headDim % 2 !== 0) throw bad(`key_length ${headDim} is odd: rope needs pairs`);
  if (hp.nHead % hp.nHeadKv !== 0) throw bad(`head_count ${hp.nHead} not a multiple of head_count_kv ${hp.nHeadKv}`);
  if (hp.nExpertUsed > hp.nExpert) throw bad(`expert_used_count ${hp.nExpertUsed} not in [1, ${hp.nExpert}]`);
  // Rope scaling (linear / YaRN long-context variants) is not implemented: refuse rather than run it unscaled.
  for (const key of ["rope.scaling.factor", "rope.scale_linear"]) {
    const scale = metaNumber(md, k(key), { default: 0 });
    if (scale !== 0 && scale !== 1) throw bad(`${key} ${scale} is not supported (rope scaling)`);
  }
  return hp;
}

/** The inverse of readHParams: every key it reads, from hp (the generator writes these). */
export function metadata(hp: HParams): GGUFMetadata {
  const k = (name: string) => `${ARCH}.${name}`;
  return new Map([
    [k("block_count"), meta.u32(hp.nLayer)],
    ...decoderMetadata(ARCH, hp),
    [k("rope.dimension_count"), meta.u32(hp.headDim)],
    // key_length only where embedding_length / head_count would not give it, as the converter writes it
    ...(hp.headDim * hp.nHead !== hp.nEmbd ? [[k("attention.key_length"), meta.u32(hp.headDim)] as const, [k("attention.value_length"), meta.u32(hp.headDim)] as const] : []),
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
  const { nEmbd: D, nVocab: V, headDim: hd, nHead, nHeadKv, nExpert: E, nFf: F } = hp;
  const token_embd = t("token_embd.weight", [D, V]);
  // Llama-3-style rope frequency divisors: not implemented, so a file with them is refused (below) rather than run without.
  const rope_freqs = t.optional("rope_freqs.weight", [hd / 2], { seldom: true });
  if (rope_freqs) throw new ModelError("unsupported_tensor", `${ARCH}: tensor 'rope_freqs.weight' (Llama-3 rope frequency factors) is not supported`);
  const layers = Array.from({ length: hp.nLayer }, (_, i) => {
    const n = (name: string, kind = "weight") => `blk.${i}.${name}.${kind}`;
    // Stacked experts; the legacy per-expert tensors (blk.N.ffn_gate.E.weight) llama.cpp no longer loads either.
    t.experts(i, {
      gate: { name: n("ffn_gate_exps"), shape: [D, F, E] },
      up: { name: n("ffn_up_exps"), shape: [D, F, E] },
      down: { name: n("ffn_down_exps"), shape: [F, D, E] },
    });
    return {
      attn_norm: t(n("attn_norm"), [D]),
      attn_q: t(n("attn_q"), [D, nHead * hd]),
      attn_k: t(n("attn_k"), [D, nHeadKv * hd]),
      attn_v: t(n("attn_v"), [D, nHeadKv * hd]),
      attn_q_bias: t.optional(n("attn_q", "bias"), [nHead * hd], { seldom: true }),
      attn_k_bias: t.optional(n("attn_k", "bias"), [nHeadKv * hd], { seldom: true }),
      attn_v_bias: t.optional(n("attn_v", "bias"), [nHeadKv * hd], { seldom: true }),
      attn_output: t(n("attn_output"), [nHead * hd, D]),
      attn_output_bias: t.optional(n("attn_output", "bias"), [D], { seldom: true }),
      ffn_norm: t(n("ffn_norm"), [D]),
      ffn_gate_inp: t(n("ffn_gate_inp"), [D, E]),
    };
  });
  return { token_embd, layers, ...outputHead(t, token_embd, D, V) };
}
export type Weights = ReturnType<typeof weights>;

export class Llama implements Model {
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
    this.route = softmaxTopKRoute(hp.nExpert, hp.nExpertUsed, true);
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
            layer: il, wq: L.attn_q, wk: L.attn_k, wv: L.attn_v, wo: L.attn_output, bq: L.attn_q_bias, bk: L.attn_k_bias, bv: L.attn_v_bias, bo: L.attn_output_bias,
            nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hp.headDim, rope: { freqBase: hp.ropeFreqBase, mode: "norm" }, eps, state: fullAttention(cache.layers[il]),
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
