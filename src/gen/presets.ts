// Model shapes the generator can write: a registered architecture and its hyperparameters. The named
// presets are qwen3moe; a3b* use Qwen3-30B-A3B's per-layer dimensions.
import type { HParams as Qwen3MoeHParams } from "../models/qwen3moe.js";
import { QWEN3_VOCAB_SIZE } from "../tokenizer/qwen3-vocab.js";

const QWEN3MOE = "qwen3moe"; // registered in models/registry.ts; the generator refuses a name it lacks

export interface Preset<HP = unknown> {
  /** general.architecture: a name the registry knows. */
  arch: string;
  /** What that architecture's readHParams returns; its metadata(hp) writes the keys. */
  hp: HP;
  /** Share token_embd as the output projection (no output.weight), as small models often do. */
  tiedEmbeddings: boolean;
}

export interface Qwen3MoePreset extends Preset<Qwen3MoeHParams> {
  arch: typeof QWEN3MOE;
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

export const PRESETS = {
  tiny,
  "a3b-8L": { ...a3b, hp: { ...a3b.hp, nLayer: 8 } },
  a3b,
} as const satisfies Record<string, Qwen3MoePreset>;

export type PresetName = keyof typeof PRESETS;

export function isPresetName(s: string): s is PresetName {
  return Object.hasOwn(PRESETS, s);
}
