// Qwen3-MoE (GGUF general.architecture = "qwen3moe"): pre-norm decoder, GQA attention with per-head
// q/k RMSNorm and NeoX RoPE, every layer a sparse MoE FFN (softmax -> top-k -> renormalise, SwiGLU experts).
// Reference: llama.cpp src/models/qwen3moe.cpp, mlx-lm models/qwen3_moe.py.
import type { Backend } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { FullAttentionState, fullAttention } from "../kv/full-attention.js";
import { ModelCache } from "../kv/state.js";
import { ModelError } from "../util/errors.js";
import { count, decoderMetadata, metaInRange, metaPerLayer, modelInfo, positive, type Range } from "./hparams.js";
import { attention, forwardPass, moe, outputLogits, Pass, routersAfter, ScratchPool, type LookaheadRouter } from "./layers.js";
import type { ForwardOptions, Model, ModelContext, ModelInfo } from "./model.js";
import { softmaxTopKRoute, type RouteFn } from "./routing.js";
import { declareQkv, outputHead, type Declare } from "./tensors.js";

export const ARCH = "qwen3moe";

export interface HParams {
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  /** attention.key_length: read, never derived from nEmbd / nHead. */
  headDim: number;
  nExpert: number;
  nExpertUsed: number;
  /** expert_feed_forward_length: rows of each expert's gate/up. */
  nFfExp: number;
  /** feed_forward_length: dense FFN width, unused here (every layer is MoE) but carried so a written file has it; 0 when absent. */
  nFf: number;
  ropeFreqBase: number;
  rmsEps: number;
}

export function readHParams(md: GGUFMetadata, nVocab: number): HParams {
  const k = (name: string) => `${ARCH}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  // Ranges far beyond any real model, tight enough that nothing is sized from a corrupt value.
  const nLayer = n("block_count", count(1, 1024));
  const all = Array.from({ length: nLayer }, (_, i) => i);
  // Keys a file may give per layer (one value all layers share).
  const perLayer = (name: string, r: Range, used = all, opts?: { default: number }) => metaPerLayer(md, k(name), r, { blocks: nLayer, used, ...opts });
  const hp: HParams = {
    nVocab,
    nCtxTrain: n("context_length", count(1, 1 << 24)),
    nEmbd: n("embedding_length", count(1, 1 << 17)),
    nLayer,
    nHead: perLayer("attention.head_count", count(1, 1024)),
    nHeadKv: perLayer("attention.head_count_kv", count(1, 1024)),
    headDim: n("attention.key_length", count(1, 4096)),
    nExpert: n("expert_count", count(1, 1 << 16)),
    nExpertUsed: perLayer("expert_used_count", count(1, 1 << 16)),
    nFfExp: perLayer("expert_feed_forward_length", count(1, 1 << 20)),
    nFf: perLayer("feed_forward_length", count(0, 1 << 20), [0], { default: 0 }), // optional in llama.cpp too; unused here
    ropeFreqBase: n("rope.freq_base", positive(1e12), { default: 10000 }),
    rmsEps: n("attention.layer_norm_rms_epsilon", positive(0.1)),
  };
  const vLen = n("attention.value_length", count(1, 4096), { default: hp.headDim });
  if (vLen !== hp.headDim) throw new ModelError("bad_hparams", `${ARCH}: attention.value_length ${vLen} != key_length ${hp.headDim}`);
  if (hp.nHead % hp.nHeadKv !== 0) throw new ModelError("bad_hparams", `${ARCH}: head_count ${hp.nHead} not a multiple of head_count_kv ${hp.nHeadKv}`);
  if (hp.nExpertUsed < 1 || hp.nExpertUsed > hp.nExpert) throw new ModelError("bad_hparams", `${ARCH}: expert_used_count ${hp.nExpertUsed} not in [1, ${hp.nExpert}]`);
  return hp;
}

/** The inverse of readHParams: every key it reads, from hp (the generator writes these). Order is the file's. */
export function metadata(hp: HParams): GGUFMetadata {
  const k = (name: string) => `${ARCH}.${name}`;
  return new Map([
    [k("block_count"), meta.u32(hp.nLayer)],
    ...decoderMetadata(ARCH, hp),
    [k("attention.key_length"), meta.u32(hp.headDim)],
    [k("attention.value_length"), meta.u32(hp.headDim)],
    [k("expert_feed_forward_length"), meta.u32(hp.nFfExp)],
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
  const { nEmbd: D, nVocab: V, headDim: hd, nHead, nHeadKv, nExpert: E, nFfExp: F } = hp;
  const token_embd = t("token_embd.weight", [D, V]);
  return {
    token_embd,
    ...outputHead(t, token_embd, D, V),
    layers: Array.from({ length: hp.nLayer }, (_, i) => {
      const n = (name: string) => `blk.${i}.${name}.weight`;
      t.experts(i, {
        gate: { name: n("ffn_gate_exps"), shape: [D, F, E] },
        up: { name: n("ffn_up_exps"), shape: [D, F, E] },
        down: { name: n("ffn_down_exps"), shape: [F, D, E] },
      });
      return {
        attn_norm: t(n("attn_norm"), [D]),
        qkv: declareQkv(t, i, D, nHead * hd, nHeadKv * hd), // attn_q/k/v, or one attn_qkv (--fuse-qkv)
        attn_output: t(n("attn_output"), [nHead * hd, D]),
        attn_q_norm: t(n("attn_q_norm"), [hd]),
        attn_k_norm: t(n("attn_k_norm"), [hd]),
        ffn_norm: t(n("ffn_norm"), [D]),
        ffn_gate_inp: t(n("ffn_gate_inp"), [D, E]),
      };
    }),
  };
}
export type Weights = ReturnType<typeof weights>;

export class Qwen3Moe implements Model {
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

  private async run(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, f: Pass): Promise<Float32Array> {
    const { be, hp, w } = this;
    const { nEmbd: D, rmsEps: eps } = hp;
    const T = tokens.length;
    const x = f.buf("x", T * D); // residual stream [T, D]
    const h = f.buf("h", T * D); // normed input of a sub-block [T, D]
    const y = f.buf("y", T * D); // a sub-block's output [T, D]

    be.embed(x, w.token_embd, tokens);
    for (let il = 0; il < hp.nLayer; il++) {
      const L = w.layers[il];
      be.rmsNorm(h, x, L.attn_norm, eps, D, T);
      await f.cb("attn_norm", il, h);
      await attention(f, y, h, {
        layer: il, ...L.qkv, wo: L.attn_output, qNorm: L.attn_q_norm, kNorm: L.attn_k_norm,
        nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hp.headDim, rope: { freqBase: hp.ropeFreqBase }, eps, state: fullAttention(cache.layers[il]),
      });
      be.add(x, x, y, T * D);
      await f.cb("ffn_inp", il, x);

      be.rmsNorm(h, x, L.ffn_norm, eps, D, T);
      await f.cb("ffn_norm", il, h);
      await moe(f, y, h, {
        layer: il, router: L.ffn_gate_inp, route: this.route, nExpert: hp.nExpert, nFf: hp.nFfExp, experts: this.experts,
        lookahead: { residual: x, next: this.ahead[il], eps },
      });
      be.add(x, x, y, T * D);
      await f.cb("l_out", il, x);
    }

    return outputLogits(f, x, { norm: w.output_norm, output: w.output }, eps, cache, opts.logits);
  }
}
