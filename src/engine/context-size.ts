// The context size when none is asked for (--ctx-size 0): long enough for a thinking model's replies
// (their reasoning alone runs to thousands of tokens), within what the model was trained on, and small
// enough that the KV cache leaves the memory budget to the expert cache.

/** Beyond this the f32 KV of a 30B-class model (192 KiB a token) outgrows most machines' budgets. */
export const AUTO_CTX_MAX = 32768;
/** The old fixed default: never chosen lower unless the model was trained on less. */
export const AUTO_CTX_MIN = 4096;
/** Share of the budget left after dense weights that the KV cache may take; the rest caches experts. */
export const AUTO_KV_SHARE = 1 / 8;

export interface AutoContext {
  ctxSize: number;
  /** Why, for the CLI's decision lines. */
  reason: string;
}

/**
 * min(training context, 32768, what 1/8 of (budget - dense weights) holds in KV, rounded down to 256),
 * but at least min(training context, 4096). `kvBytes(n)` is the per-sequence state of n tokens.
 */
export function autoContextSize(nCtxTrain: number, kvBytes: (nCtx: number) => number, budget: number, denseBytes: number): AutoContext {
  const cap = Math.min(nCtxTrain, AUTO_CTX_MAX);
  const floor = Math.min(nCtxTrain, AUTO_CTX_MIN);
  const perToken = (kvBytes(2048) - kvBytes(1024)) / 1024; // states of fixed size (recurrent layers) cost nothing per token
  const share = Math.max(0, budget - denseBytes) * AUTO_KV_SHARE - (kvBytes(1024) - 1024 * perToken);
  const byMemory = perToken > 0 ? Math.floor(share / perToken / 256) * 256 : Infinity;
  const ctxSize = Math.max(floor, Math.min(cap, byMemory));
  const why =
    ctxSize === cap ? (cap === nCtxTrain ? "the model's training context" : `the model's training context ${nCtxTrain}, capped at ${AUTO_CTX_MAX}`)
    : ctxSize === floor ? `the floor of ${floor}; the KV share of the memory budget holds less`
    : `KV within 1/${1 / AUTO_KV_SHARE} of the memory budget after dense weights; the model was trained on ${nCtxTrain}`;
  return { ctxSize, reason: `context ${ctxSize} tokens (--ctx-size 0: ${why})` };
}
