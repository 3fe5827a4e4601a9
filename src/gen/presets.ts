// Model shapes the generator can write. a3b* use Qwen3-30B-A3B's per-layer dimensions.
import type { HParams as Qwen3MoeHParams } from "../models/qwen3moe.js";

/** The architecture's hyperparameters (less the vocabulary, fixed to Qwen3's) plus what only a file records. */
export interface ModelDims extends Omit<Qwen3MoeHParams, "nVocab" | "nCtxTrain"> {
  /** Dense FFN width written as feed_forward_length (unused by qwen3moe's forward; Qwen3-30B-A3B: 6144). */
  nFf: number;
  nCtx: number;
  /** Share token_embd as the output projection (no output.weight), as small models often do. */
  tiedEmbeddings: boolean;
}

// K-quant rows need multiples of 256 values, so the tiny preset keeps every row length at 256.
const tiny: ModelDims = {
  nLayer: 4, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64, nExpert: 16, nExpertUsed: 4, nFfExp: 256, nFf: 768,
  nCtx: 4096, ropeFreqBase: 1_000_000, rmsEps: 1e-6, tiedEmbeddings: true,
};

const a3b: ModelDims = {
  nLayer: 48, nEmbd: 2048, nHead: 32, nHeadKv: 4, headDim: 128, nExpert: 128, nExpertUsed: 8, nFfExp: 768, nFf: 6144,
  nCtx: 40960, ropeFreqBase: 1_000_000, rmsEps: 1e-6, tiedEmbeddings: false,
};

export const PRESETS = {
  tiny,
  "a3b-8L": { ...a3b, nLayer: 8 },
  a3b,
} as const satisfies Record<string, ModelDims>;

export type PresetName = keyof typeof PRESETS;

export function isPresetName(s: string): s is PresetName {
  return Object.hasOwn(PRESETS, s);
}
