// Hyperparameters read with plausible ranges: a corrupt or hostile header is refused naming the key before
// a count sizes an allocation (block_count = 2^31 exhausted the heap) or a NaN reaches the forward pass.
import { metaNumber } from "../format/gguf/read.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { ModelError } from "../util/errors.js";

export interface Range {
  /** Inclusive bounds. */
  min: number;
  max: number;
  integer: boolean;
  /** A positive real (eps, rope base): min is exclusive. */
  positive?: boolean;
}

/** A count in [min, max]. */
export const count = (min: number, max: number): Range => ({ min, max, integer: true });
/** A finite real > 0, below max. */
export const positive = (max = Number.MAX_VALUE): Range => ({ min: 0, max, integer: false, positive: true });

/** metaNumber, then the range: ModelError "bad_hparams" naming the key, the value and what was expected. */
export function metaInRange(md: GGUFMetadata, key: string, r: Range, opts?: { default: number }): number {
  const v = metaNumber(md, key, opts);
  const ok = Number.isFinite(v) && (!r.integer || Number.isInteger(v)) && (r.positive ? v > r.min : v >= r.min) && v <= r.max;
  if (!ok) {
    const want = r.integer ? `an integer in [${r.min}, ${r.max}]` : `a finite number in (${r.min}, ${r.max}]`;
    throw new ModelError("bad_hparams", `metadata '${key}' is ${v}; expected ${want}`);
  }
  return v;
}
