// OLMoE (GGUF general.architecture = "olmoe"): pre-norm decoder, MHA attention whose q and k are RMS-normed over the
// whole projection (one [n_embd] weight each, not per head) before NeoX rope, every layer a sparse MoE FFN (softmax
// -> top-k, the weights left as the raw probabilities: no renormalisation), SwiGLU experts of feed_forward_length.
// Reference: llama.cpp src/models/olmoe.cpp, HF modeling_olmoe.py.
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { ModelError } from "../util/errors.js";
import { count, decoderMetadata, metaInRange, modelInfo } from "./hparams.js";
import type { ModelContext, ModelInfo } from "./model.js";
import { MoeDecoder, moeDecoderCacheBytes, readMoeDecoderHParams, type MoeDecoderHParams } from "./moe-decoder.js";
import { declareQkv, swigluExperts, type Declare } from "./tensors.js";

export const ARCH = "olmoe";

export interface HParams extends MoeDecoderHParams {
  /** feed_forward_length: each expert's gate/up rows. */
  nFf: number;
}

export function readHParams(md: GGUFMetadata, nVocab: number): HParams {
  const hp = readMoeDecoderHParams(md, ARCH, nVocab, metaInRange(md, `${ARCH}.expert_count`, count(1, 1 << 16)));
  const bad = (msg: string) => new ModelError("bad_hparams", `${ARCH}: ${msg}`);
  // llama.cpp declares attn_q / attn_output as [n_embd, n_embd] and the k norm over n_embd: q and k span the residual width.
  const { nEmbd, nHead, nHeadKv, headDim } = hp;
  if (nHead * headDim !== nEmbd) throw bad(`head_count ${nHead} x key_length ${headDim} != embedding_length ${nEmbd} (q spans the residual width)`);
  if (nHeadKv * headDim !== nEmbd) throw bad(`head_count_kv ${nHeadKv} x key_length ${headDim} != embedding_length ${nEmbd} (attn_k_norm normalises an n_embd-wide k)`);
  return hp;
}

/** The inverse of readHParams: every key it reads, from hp (the generator writes these). */
export function metadata(hp: HParams): GGUFMetadata {
  return new Map([[`${ARCH}.block_count`, meta.u32(hp.nLayer)], ...decoderMetadata(ARCH, hp)]);
}

export function info(hp: HParams): ModelInfo {
  return modelInfo(ARCH, hp);
}

export const cacheBytes = moeDecoderCacheBytes;

/** Every tensor, shapes in ggml order ([K, N] = N rows of K); q, k and v are all [D, D] (checked above). */
export function weights(hp: HParams, t: Declare) {
  const { nEmbd: D, nVocab: V, nExpert: E, nFf: F } = hp;
  const layers = Array.from({ length: hp.nLayer }, (_, i) => {
    const n = (name: string) => `blk.${i}.${name}.weight`;
    swigluExperts(t, i, D, F, E);
    return {
      attn_norm: t(n("attn_norm"), [D]),
      qkv: declareQkv(t, i, D, D, D), // attn_q/k/v, or one attn_qkv
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

export function create(hp: HParams, w: Weights, ctx: ModelContext): MoeDecoder {
  return new MoeDecoder(ARCH, hp, w, ctx, { nFf: hp.nFf, normalize: false }); // the raw softmax probabilities of the top k
}
