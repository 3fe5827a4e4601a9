// Llama with experts: Mixtral (GGUF general.architecture = "llama" with expert_count > 0): pre-norm decoder, GQA
// attention with optional q/k/v/output biases and NORM (adjacent-pair) rope over whole heads (the converter
// permuted Q/K rows for it), every layer a sparse MoE FFN (softmax -> top-k -> renormalised, SwiGLU experts whose
// width is feed_forward_length). A dense Llama (no experts) is refused: there is nothing to stream.
// Reference: llama.cpp src/models/llama.cpp, mlx-lm models/mixtral.py.
import { metaNumber } from "../format/gguf/read.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { ModelError } from "../util/errors.js";
import { count, decoderMetadata, metaInRange, modelInfo } from "./hparams.js";
import type { ModelContext, ModelInfo } from "./model.js";
import { MoeDecoder, moeDecoderCacheBytes, readMoeDecoderHParams, type MoeDecoderHParams } from "./moe-decoder.js";
import { declareQkv, outputHead, swigluExperts, type Declare } from "./tensors.js";

export const ARCH = "llama";

export interface HParams extends MoeDecoderHParams {
  /** feed_forward_length: each expert's gate/up rows (llama reads no expert_feed_forward_length). */
  nFf: number;
}

export function readHParams(md: GGUFMetadata, nVocab: number): HParams {
  const k = (name: string) => `${ARCH}.${name}`;
  const nExpert = metaInRange(md, k("expert_count"), count(0, 1 << 16), { default: 0 });
  if (nExpert === 0) {
    throw new ModelError("dense_model", `${ARCH}: ${k("expert_count")} is absent or 0: a dense Llama model, which has no experts to stream; moestream runs the Mixture-of-Experts ones (Mixtral); run dense models with llama.cpp`);
  }
  // Rope scaling (linear / YaRN long-context variants) is not implemented: refused rather than run unscaled.
  for (const key of ["rope.scaling.factor", "rope.scale_linear"]) {
    const scale = metaNumber(md, k(key), { default: 0 });
    if (scale !== 0 && scale !== 1) throw new ModelError("bad_hparams", `${ARCH}: ${key} ${scale} is not supported (rope scaling)`);
  }
  return readMoeDecoderHParams(md, ARCH, nVocab, nExpert);
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

export const cacheBytes = moeDecoderCacheBytes;

/** Every tensor, shapes in ggml order ([K, N] = N rows of K). */
export function weights(hp: HParams, t: Declare) {
  const { nEmbd: D, nVocab: V, headDim: hd, nHead, nHeadKv, nExpert: E, nFf: F } = hp;
  const token_embd = t("token_embd.weight", [D, V]);
  // Llama-3-style rope frequency divisors: not implemented, so a file with them is refused rather than run without.
  if (t.optional("rope_freqs.weight", [hd / 2], { seldom: true })) {
    throw new ModelError("unsupported_tensor", `${ARCH}: tensor 'rope_freqs.weight' (Llama-3 rope frequency factors) is not supported`);
  }
  const layers = Array.from({ length: hp.nLayer }, (_, i) => {
    const n = (name: string, kind = "weight") => `blk.${i}.${name}.${kind}`;
    // Stacked experts; the legacy per-expert tensors (blk.N.ffn_gate.E.weight) llama.cpp no longer loads either.
    swigluExperts(t, i, D, F, E);
    return {
      attn_norm: t(n("attn_norm"), [D]),
      qkv: declareQkv(t, i, D, nHead * hd, nHeadKv * hd, "seldom"), // attn_q/k/v (+ biases), or one attn_qkv
      attn_output: t(n("attn_output"), [nHead * hd, D]),
      attn_output_bias: t.optional(n("attn_output", "bias"), [D], { seldom: true }),
      ffn_norm: t(n("ffn_norm"), [D]),
      ffn_gate_inp: t(n("ffn_gate_inp"), [D, E]),
    };
  });
  return { token_embd, layers, ...outputHead(t, token_embd, D, V) };
}
export type Weights = ReturnType<typeof weights>;

export function create(hp: HParams, w: Weights, ctx: ModelContext): MoeDecoder {
  return new MoeDecoder(ARCH, hp, w, ctx, { nFf: hp.nFf, normalize: true, ropeMode: "norm" });
}
