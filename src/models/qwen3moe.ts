// Qwen3-MoE (GGUF general.architecture = "qwen3moe"): pre-norm decoder, GQA attention with per-head
// q/k RMSNorm and NeoX RoPE, every layer a sparse MoE FFN (softmax -> top-k -> renormalise, SwiGLU experts).
// Reference: llama.cpp src/models/qwen3moe.cpp, mlx-lm models/qwen3_moe.py.
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { ModelError } from "../util/errors.js";
import { count, decoderMetadata, metaInRange, metaPerLayer, modelInfo, positive, type Range } from "./hparams.js";
import type { ModelContext, ModelInfo } from "./model.js";
import { MoeDecoder, moeDecoderCacheBytes, type MoeDecoderHParams } from "./moe-decoder.js";
import { declareQkv, outputHead, swigluExperts, type Declare } from "./tensors.js";

export const ARCH = "qwen3moe";

/** headDim is attention.key_length: read, never derived from nEmbd / nHead. */
export interface HParams extends MoeDecoderHParams {
  /** expert_feed_forward_length: rows of each expert's gate/up. */
  nFfExp: number;
  /** feed_forward_length: dense FFN width, unused here (every layer is MoE) but carried so a written file has it; 0 when absent. */
  nFf: number;
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

export const cacheBytes = moeDecoderCacheBytes;

/** Every tensor, shapes in ggml order ([K, N] = N rows of K). */
export function weights(hp: HParams, t: Declare) {
  const { nEmbd: D, nVocab: V, headDim: hd, nHead, nHeadKv, nExpert: E, nFfExp: F } = hp;
  const token_embd = t("token_embd.weight", [D, V]);
  return {
    token_embd,
    ...outputHead(t, token_embd, D, V),
    layers: Array.from({ length: hp.nLayer }, (_, i) => {
      const n = (name: string) => `blk.${i}.${name}.weight`;
      swigluExperts(t, i, D, F, E);
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

export function create(hp: HParams, w: Weights, ctx: ModelContext): MoeDecoder {
  return new MoeDecoder(ARCH, hp, w, ctx, { nFf: hp.nFfExp, normalize: true });
}
