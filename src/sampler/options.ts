// Sampling options (llama.cpp's sampler chain parameters and mlx-lm's make_sampler), their defaults, and validation.
import { UsageError } from "../util/errors.js";
import { didYouMean } from "../util/suggest.js";
import { randomSeed } from "./rng.js";

/** What a caller may set; every field is optional and falls back to DEFAULT_SAMPLING_OPTIONS. */
export interface SamplingOptions {
  /** Softmax temperature; 0 = greedy (argmax, lowest token id on ties). >= 0. */
  temperature?: number;
  /** Keep only the k highest logits; 0 = off. Integer >= 0. */
  topK?: number;
  /** Nucleus sampling: keep the smallest prefix (by probability, descending) whose mass is >= topP; 1 = off. In [0, 1]. */
  topP?: number;
  /** Drop tokens whose probability is below minP * (highest probability); 0 = off. In [0, 1]. */
  minP?: number;
  /** Repetition penalty for tokens in the last penaltyLastN: positive logits divided by it, others multiplied; 1 = off. > 0. */
  repeatPenalty?: number;
  /** Subtracted once from the logit of every token present in the last penaltyLastN; 0 = off. Finite. */
  presencePenalty?: number;
  /** Subtracted count times from the logit of every token in the last penaltyLastN; 0 = off. Finite. */
  frequencyPenalty?: number;
  /** How many of the most recent tokens the penalties look at; 0 = none, -1 = the whole history. Integer >= -1. */
  penaltyLastN?: number;
  /** PRNG seed, a non-negative safe integer; omitted = a random seed (reported in the resolved options). */
  seed?: number;
}

/** Every field set and validated. */
export type ResolvedSamplingOptions = Required<SamplingOptions>;

export const DEFAULT_SAMPLING_OPTIONS: Readonly<Omit<ResolvedSamplingOptions, "seed">> = Object.freeze({
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  penaltyLastN: 64,
});

const KEYS: readonly (keyof SamplingOptions)[] = [
  "temperature", "topK", "topP", "minP", "repeatPenalty", "presencePenalty", "frequencyPenalty", "penaltyLastN", "seed",
];

function bad(field: string, rule: string, got: unknown): never {
  const shown = typeof got === "string" ? JSON.stringify(got) : String(got);
  throw new UsageError("SAMPLER_BAD_OPTION", `${field} must be ${rule}, got ${shown}`);
}

function num(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) bad(field, "a finite number", v);
  return v;
}

function int(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) bad(field, "an integer", v);
  return v;
}

/**
 * Fill in defaults and validate. Throws UsageError (code SAMPLER_BAD_OPTION) naming the bad field,
 * e.g. "temperature must be >= 0, got -1"; unknown fields are refused too (catches "top_k" for "topK").
 */
export function resolveSamplingOptions(opts: SamplingOptions = {}): ResolvedSamplingOptions {
  if (typeof opts !== "object" || opts === null || Array.isArray(opts)) bad("sampling options", "an object", opts);
  for (const k of Object.keys(opts)) {
    if (!(KEYS as readonly string[]).includes(k)) {
      throw new UsageError("SAMPLER_BAD_OPTION", `unknown sampling option "${k}"${didYouMean(k, KEYS)} (known: ${KEYS.join(", ")})`);
    }
  }
  const d = DEFAULT_SAMPLING_OPTIONS;

  const temperature = opts.temperature === undefined ? d.temperature : num("temperature", opts.temperature);
  if (temperature < 0) bad("temperature", ">= 0", temperature);

  const topK = opts.topK === undefined ? d.topK : int("topK", opts.topK);
  if (topK < 0) bad("topK", ">= 0 (0 = off)", topK);

  const topP = opts.topP === undefined ? d.topP : num("topP", opts.topP);
  if (topP < 0 || topP > 1) bad("topP", "in [0, 1] (1 = off)", topP);

  const minP = opts.minP === undefined ? d.minP : num("minP", opts.minP);
  if (minP < 0 || minP > 1) bad("minP", "in [0, 1] (0 = off)", minP);

  const repeatPenalty = opts.repeatPenalty === undefined ? d.repeatPenalty : num("repeatPenalty", opts.repeatPenalty);
  if (repeatPenalty <= 0) bad("repeatPenalty", "> 0 (1 = off)", repeatPenalty);

  const presencePenalty = opts.presencePenalty === undefined ? d.presencePenalty : num("presencePenalty", opts.presencePenalty);
  const frequencyPenalty = opts.frequencyPenalty === undefined ? d.frequencyPenalty : num("frequencyPenalty", opts.frequencyPenalty);

  const penaltyLastN = opts.penaltyLastN === undefined ? d.penaltyLastN : int("penaltyLastN", opts.penaltyLastN);
  if (penaltyLastN < -1) bad("penaltyLastN", ">= -1 (-1 = whole history, 0 = off)", penaltyLastN);

  let seed: number;
  if (opts.seed === undefined) seed = randomSeed();
  else {
    seed = int("seed", opts.seed);
    if (!Number.isSafeInteger(seed) || seed < 0) bad("seed", "a non-negative safe integer", seed);
  }

  return { temperature, topK, topP, minP, repeatPenalty, presencePenalty, frequencyPenalty, penaltyLastN, seed };
}

/** The greedy settings: argmax, no penalties. */
export const GREEDY: Readonly<SamplingOptions> = Object.freeze({ temperature: 0 });
