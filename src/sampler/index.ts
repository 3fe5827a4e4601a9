// Token sampling: options, the seeded RNG, and the llama.cpp-style sampler chain.
export { Rng, randomSeed } from "./rng.js";
export { DEFAULT_SAMPLING_OPTIONS, GREEDY, resolveSamplingOptions, type ResolvedSamplingOptions, type SamplingOptions } from "./options.js";
export { applyPenalties, createSampler, type PenaltyOptions, type Sampler } from "./sampler.js";
