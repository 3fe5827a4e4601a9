// Model shapes the generator can write: a registered architecture and its hyperparameters. tiny and a3b*
// are qwen3moe (a3b* with Qwen3-30B-A3B's per-layer dimensions); glm4moe-* are GLM-4.5's architecture;
// deepseek2-* and deepseek-v3-* are DeepSeek's (MLA); qwen3next-* and qwen35* are the hybrid linear-attention ones;
// gpt-oss-* are gpt-oss's (sinks, sliding window, biased experts); mixtral-* are llama with experts, olmoe-* OLMoE.
import type { HParams as DeepSeek2HParams } from "../models/deepseek2.js";
import type { HParams as Qwen3NextHParams } from "../models/qwen3next.js";
import type { HParams as Glm4MoeHParams } from "../models/glm4moe.js";
import type { HParams as GptOssHParams } from "../models/gptoss.js";
import type { HParams as Qwen3MoeHParams } from "../models/qwen3moe.js";
import type { HParams as LlamaHParams } from "../models/llama.js";
import type { HParams as OlmoeHParams } from "../models/olmoe.js";
import { QWEN3_VOCAB_SIZE } from "../tokenizer/qwen3-vocab.js";

const QWEN3MOE = "qwen3moe"; // registered in models/registry.ts; the generator refuses a name it lacks

export interface Preset<HP = unknown> {
  /** general.architecture: a name the registry knows. */
  arch: string;
  /** What that architecture's readHParams returns; its metadata(hp) writes the keys. */
  hp: HP;
  /** Share token_embd as the output projection (no output.weight), as small models often do. */
  tiedEmbeddings: boolean;
  /** Optional tensors the file leaves out, as the real model's files do (DeepSeek-V2 has no exp_probs_b). */
  without?: RegExp;
  /** tokenizer.ggml.pre for the (Qwen3) vocabulary the file carries, if not Qwen's own "qwen2" (gpt-oss: "gpt-4o", OLMoE: "olmo"). */
  tokenizerPre?: string;
}

export interface Qwen3MoePreset extends Preset<Qwen3MoeHParams> {
  arch: typeof QWEN3MOE;
}

export interface Glm4MoePreset extends Preset<Glm4MoeHParams> {
  arch: "glm4moe";
}

// The vocabulary is the real Qwen3 tokenizer's, which every generated file carries.
// K-quant rows need multiples of 256 values, so the tiny preset keeps every row length at 256.
const tiny: Qwen3MoePreset = {
  arch: QWEN3MOE,
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 4096, nLayer: 4, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64,
    nExpert: 16, nExpertUsed: 4, nFfExp: 256, nFf: 768, ropeFreqBase: 1_000_000, rmsEps: 1e-6,
  },
  tiedEmbeddings: true,
};

const a3b: Qwen3MoePreset = {
  arch: QWEN3MOE,
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 40960, nLayer: 48, nEmbd: 2048, nHead: 32, nHeadKv: 4, headDim: 128,
    nExpert: 128, nExpertUsed: 8, nFfExp: 768, nFf: 6144, ropeFreqBase: 1_000_000, rmsEps: 1e-6,
  },
  tiedEmbeddings: false,
};

// GLM-4.5's structure at tiny size: a leading dense layer, two MoE layers with a shared expert, sigmoid routing
// with a selection bias, renormalised and scaled by 2.5, rope over half of each head, q/k norms, q/k/v biases,
// and the trailing MTP block real files carry. Row lengths are multiples of 256 for the K-quants.
const glmTiny: Glm4MoePreset = {
  arch: "glm4moe",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 4096, nEmbd: 256, nLayer: 3, nNextn: 1, nHead: 4, nHeadKv: 2, headDim: 64, nRot: 32,
    nDenseLead: 1, nFf: 512, nExpert: 16, nExpertUsed: 4, nFfExp: 256, nExpertShared: 1, nGroup: 0, nGroupUsed: 0,
    gating: "sigmoid", expertWeightsNorm: true, expertWeightsScale: 2.5, ropeFreqBase: 1_000_000, rmsEps: 1e-5,
  },
  tiedEmbeddings: true,
};

// GLM-4.5 (355B-A32B) per-layer dimensions, 8 of its 92 layers (the real 3 dense lead layers, then 5 MoE
// layers of 160 experts, 8 used, 1536 wide, one shared), for the stream bench; without the MTP block, which
// streaming never reads.
const glm45: Glm4MoePreset = {
  arch: "glm4moe",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 131072, nEmbd: 5120, nLayer: 92, nNextn: 1, nHead: 96, nHeadKv: 8, headDim: 128, nRot: 64,
    nDenseLead: 3, nFf: 12288, nExpert: 160, nExpertUsed: 8, nFfExp: 1536, nExpertShared: 1, nGroup: 1, nGroupUsed: 1,
    gating: "sigmoid", expertWeightsNorm: true, expertWeightsScale: 2.5, ropeFreqBase: 1_000_000, rmsEps: 1e-5,
  },
  tiedEmbeddings: false,
};

export interface Qwen3NextPreset extends Preset<Qwen3NextHParams> {
  arch: "qwen3next" | "qwen35moe";
}

export interface DeepSeek2Preset extends Preset<DeepSeek2HParams> {
  arch: "deepseek2";
}

// DeepSeek-V3's structure at tiny size: q-lora, a 288-wide latent row (kv_lora 256 + rope 32; heads of nope 64 +
// rope 32 keys, 64 values), YaRN x40 over an original 4096 context with mscale_all_dim 1, a leading dense layer,
// then two MoE layers of sigmoid routing with a selection bias, 4 groups of which 2 are used, renormalised, x2.5,
// one shared expert; and a trailing MTP block as GLM-4.7-Flash's files (same arch) carry. Rows are multiples of 256
// for the K-quants except attn_k_b's 64 (real files keep it Q8_0 / F16 too).
const dsTiny: DeepSeek2Preset = {
  arch: "deepseek2",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 163840, nEmbd: 256, nLayer: 3, nNextn: 1, nHead: 4, qLoraRank: 256, kvLoraRank: 256, nRot: 32,
    headDimK: 96, headDimV: 64, nDenseLead: 1, nFf: 512, nExpert: 16, nExpertUsed: 4, nFfExp: 256, nExpertShared: 1, nGroup: 4, nGroupUsed: 2,
    gating: "sigmoid", expertWeightsNorm: true, expertWeightsScale: 2.5, ropeFreqBase: 10000, ropeScaling: "yarn", ropeScale: 40, ropeOrigCtx: 4096,
    ropeAttnFactor: 1, yarnLogMul: 1, rmsEps: 1e-6,
  },
  tiedEmbeddings: true,
};

// DeepSeek-V2-Lite's structure at tiny size: no q-lora (a plain attn_q), softmax routing without selection bias,
// groups or renormalisation, two shared experts, YaRN x40 with V2-Lite's mscale = mscale_all_dim = 0.707.
const dsLiteTiny: DeepSeek2Preset = {
  arch: "deepseek2",
  hp: {
    ...dsTiny.hp, nNextn: 0, qLoraRank: 0, nExpertShared: 2, nGroup: 0, nGroupUsed: 0, gating: "softmax", expertWeightsNorm: false, expertWeightsScale: 1,
    yarnLogMul: 0.707,
  },
  tiedEmbeddings: true,
  without: /exp_probs_b/,
};

// DeepSeek-V3 (671B) per-layer dimensions: 7168 wide, 128 heads (q-lora 1536, kv-lora 512, rope 64, nope 128,
// values 128), 256 experts of 2048 (8 used, 8 groups of which 4), one shared; its first dense layer (18432 wide)
// and 3 of its 58 MoE layers, for the stream bench (the vocabulary is the generator's Qwen3 one, not V3's 129280).
const dsV3: DeepSeek2Preset = {
  arch: "deepseek2",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 163840, nEmbd: 7168, nLayer: 61, nNextn: 0, nHead: 128, qLoraRank: 1536, kvLoraRank: 512, nRot: 64,
    headDimK: 192, headDimV: 128, nDenseLead: 3, nFf: 18432, nExpert: 256, nExpertUsed: 8, nFfExp: 2048, nExpertShared: 1, nGroup: 8, nGroupUsed: 4,
    gating: "sigmoid", expertWeightsNorm: true, expertWeightsScale: 2.5, ropeFreqBase: 10000, ropeScaling: "yarn", ropeScale: 40, ropeOrigCtx: 4096,
    ropeAttnFactor: 1, yarnLogMul: 1, rmsEps: 1e-6,
  },
  tiedEmbeddings: false,
};

// Qwen3-Next's structure at tiny size: 3 gated DeltaNet layers then 1 gated full-attention layer (the 4-layer
// period of the real model), 2 key heads / 8 value heads of 32 in the DeltaNet, rope over a quarter of each head,
// 16 experts (4 used) plus the sigmoid-gated shared expert, and the trailing MTP block real files carry. Every
// row length the K-quants see is a multiple of 256 (ssm_conv1d stays F32, as in real files).
const qnextTiny: Qwen3NextPreset = {
  arch: "qwen3next",
  hp: {
    arch: "qwen3next", nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 4096, nEmbd: 256, nLayer: 4, nNextn: 1, recurrent: [true, true, true, false], fullAttentionInterval: 4,
    nHead: 4, nHeadKv: 2, headDim: 64, nRot: 16, nFf: 512, nExpert: 16, nExpertUsed: 4, nFfExp: 256, nFfShexp: 256,
    convKernel: 4, ssmState: 32, nHeadK: 2, nHeadV: 8, ropeFreqBase: 10_000_000, rmsEps: 1e-6,
  },
  tiedEmbeddings: true,
};

// Qwen3.5-MoE at tiny size: as above, with separate β/α tensors, tiled key heads and IMRoPE sections that cover
// the 8 rotated pairs (as [11, 11, 10, 0] covers Qwen3.5's 32).
const q35Tiny: Qwen3NextPreset = {
  arch: "qwen35moe",
  hp: { ...qnextTiny.hp, arch: "qwen35moe", ropeSections: [3, 3, 2, 0] },
  tiedEmbeddings: true,
};

// Real layer dimensions for the stream bench (ARCHITECTURES.md §7.3), 4 layers: 3 DeltaNet + 1 full attention,
// without the MTP block streaming never reads; the Qwen3 vocabulary stands in for Qwen3.5's 248320 tokens.
const qnext80b: Qwen3NextPreset = {
  arch: "qwen3next",
  hp: {
    arch: "qwen3next", nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 262144, nEmbd: 2048, nLayer: 4, nNextn: 0, recurrent: [true, true, true, false], fullAttentionInterval: 4,
    nHead: 16, nHeadKv: 2, headDim: 256, nRot: 64, nFf: 5120, nExpert: 512, nExpertUsed: 10, nFfExp: 512, nFfShexp: 512,
    convKernel: 4, ssmState: 128, nHeadK: 16, nHeadV: 32, ropeFreqBase: 10_000_000, rmsEps: 1e-6,
  },
  tiedEmbeddings: false,
};
const q35_397b: Qwen3NextPreset = {
  arch: "qwen35moe",
  hp: {
    ...qnext80b.hp, arch: "qwen35moe", nEmbd: 4096, nHead: 32, nFf: 1024, nFfExp: 1024, nFfShexp: 1024, nHeadV: 64, ropeSections: [11, 11, 10, 0],
  },
  tiedEmbeddings: false,
};

export interface LlamaPreset extends Preset<LlamaHParams> {
  arch: "llama";
}

export interface OlmoePreset extends Preset<OlmoeHParams> {
  arch: "olmoe";
}

// Mixtral's structure at tiny size: 8 experts, 2 used, renormalised; NORM rope; GQA 4/2 heads of 64 (no key_length
// key: embedding_length / head_count gives it, as in real files). The vocabulary is the generator's Qwen3 one.
const mixtralTiny: LlamaPreset = {
  arch: "llama",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 4096, nEmbd: 256, nLayer: 3, nHead: 4, nHeadKv: 2, headDim: 64,
    nExpert: 8, nExpertUsed: 2, nFf: 256, ropeFreqBase: 1_000_000, rmsEps: 1e-5,
  },
  tiedEmbeddings: false,
};

// Mixtral-8x7B (ARCHITECTURES.md §7.3): 4096 wide, 32 layers, 32/8 heads of 128, 8 experts of 14336, top-2.
const mixtral8x7b: LlamaPreset = {
  arch: "llama",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 32768, nEmbd: 4096, nLayer: 32, nHead: 32, nHeadKv: 8, headDim: 128,
    nExpert: 8, nExpertUsed: 2, nFf: 14336, ropeFreqBase: 1_000_000, rmsEps: 1e-5,
  },
  tiedEmbeddings: false,
};

// OLMoE's structure at tiny size: MHA (q and k span the residual width, normed over it), 16 experts of which 8 are
// used without renormalisation, NeoX rope, an output.weight (required), and OLMo's pre-tokenizer over the Qwen3 vocabulary.
const olmoeTiny: OlmoePreset = {
  arch: "olmoe",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 4096, nEmbd: 256, nLayer: 3, nHead: 4, nHeadKv: 4, headDim: 64,
    nExpert: 16, nExpertUsed: 8, nFf: 256, ropeFreqBase: 10000, rmsEps: 1e-5,
  },
  tiedEmbeddings: false,
  tokenizerPre: "olmo",
};

// OLMoE-1B-7B: 2048 wide, 16 layers, 16/16 heads of 128, 64 experts of 1024, top-8.
const olmoe1b7b: OlmoePreset = {
  arch: "olmoe",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 4096, nEmbd: 2048, nLayer: 16, nHead: 16, nHeadKv: 16, headDim: 128,
    nExpert: 64, nExpertUsed: 8, nFf: 1024, ropeFreqBase: 10000, rmsEps: 1e-5,
  },
  tiedEmbeddings: false,
  tokenizerPre: "olmo",
};

export interface GptOssPreset extends Preset<GptOssHParams> {
  arch: "gpt-oss";
}

// gpt-oss's structure at tiny size: 4 layers alternating sliding-window (even) and full attention, a window of 8 so
// a 32-token prompt crosses it, q/k/v/o biases and sinks, YaRN x32 over an original 4096 context at base 150000,
// 16 experts (4 used) with biases, an untied output head; the o200k pre-tokenizer gpt-oss files name ("gpt-4o") over
// the generator's Qwen3 vocabulary. Rows of 256 values (K-quants) and 32 (MXFP4).
const gptOssTiny: GptOssPreset = {
  arch: "gpt-oss",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 131072, nEmbd: 256, nLayer: 4, nHead: 4, nHeadKv: 2, headDim: 64, nExpert: 16, nExpertUsed: 4,
    nFfExp: 256, nFf: 256, ropeFreqBase: 150000, ropeFreqBaseSwa: 150000, ropeScaling: "yarn", ropeScale: 32, ropeOrigCtx: 4096, ropeAttnFactor: 1,
    rmsEps: 1e-5, window: 8, swa: [true, false, true, false],
  },
  tiedEmbeddings: false,
  tokenizerPre: "gpt-4o",
};

// gpt-oss-20b's dimensions (ARCHITECTURES.md §5): 24 layers, 64 heads / 8 kv of 64, 32 experts (4 used) of 2880,
// SWA 128 on even layers; the Qwen3 vocabulary stands in for o200k_harmony's 201088 tokens. gpt-oss-120b: 36 layers,
// 128 experts.
const gptOss20b: GptOssPreset = {
  arch: "gpt-oss",
  hp: {
    nVocab: QWEN3_VOCAB_SIZE, nCtxTrain: 131072, nEmbd: 2880, nLayer: 24, nHead: 64, nHeadKv: 8, headDim: 64, nExpert: 32, nExpertUsed: 4,
    nFfExp: 2880, nFf: 2880, ropeFreqBase: 150000, ropeFreqBaseSwa: 150000, ropeScaling: "yarn", ropeScale: 32, ropeOrigCtx: 4096, ropeAttnFactor: 1,
    rmsEps: 1e-5, window: 128, swa: Array.from({ length: 24 }, (_, i) => i % 2 === 0),
  },
  tiedEmbeddings: false,
  tokenizerPre: "gpt-4o",
};
const gptOss120b: GptOssPreset = {
  ...gptOss20b,
  hp: { ...gptOss20b.hp, nLayer: 36, nExpert: 128, swa: Array.from({ length: 36 }, (_, i) => i % 2 === 0) },
};

export const PRESETS = {
  tiny,
  "a3b-8L": { ...a3b, hp: { ...a3b.hp, nLayer: 8 } },
  a3b,
  "glm4moe-tiny": glmTiny,
  "glm45-8L": { ...glm45, hp: { ...glm45.hp, nLayer: 8, nNextn: 0 } },
  "deepseek2-tiny": dsTiny,
  "deepseek2-lite-tiny": dsLiteTiny,
  "deepseek-v3-4L": { ...dsV3, hp: { ...dsV3.hp, nLayer: 4, nDenseLead: 1 } },
  "qwen3next-tiny": qnextTiny,
  "qwen35moe-tiny": q35Tiny,
  "qwen3next-80b-4L": qnext80b,
  "qwen35-397b-4L": q35_397b,
  "mixtral-tiny": mixtralTiny,
  "mixtral-8x7b": mixtral8x7b,
  "mixtral-8x7b-4L": { ...mixtral8x7b, hp: { ...mixtral8x7b.hp, nLayer: 4 } },
  "olmoe-tiny": olmoeTiny,
  "olmoe-1b-7b": olmoe1b7b,
  "gpt-oss-tiny": gptOssTiny,
  "gpt-oss-20b": gptOss20b,
  "gpt-oss-120b": gptOss120b,
} as const satisfies Record<string, Qwen3MoePreset | Glm4MoePreset | DeepSeek2Preset | Qwen3NextPreset | LlamaPreset | OlmoePreset | GptOssPreset>;

export type PresetName = keyof typeof PRESETS;

export function isPresetName(s: string): s is PresetName {
  return Object.hasOwn(PRESETS, s);
}
