// An eviction policy that predicts the next token's routing from the current one. Real routers reuse
// few experts from one token to the next (adjacent-token overlap 0.19-0.37 on the real traces), but
// which experts follow which is not random: a first-order model per layer, P(e at token t+1 | i at t)
// counted online, names the next token's experts better than their frequency alone. The policy evicts
// the cached expert least likely to be used by its layer's next token. It needs begin(): the cache says
// which experts an acquire asks for before it evicts for them, so the prediction is made from the
// current token's routing (without it the model predicts from the previous token and gains nothing).
// Replayed on the real traces (npm run bench -- replay; docs/cache-policy.md) it beats LFU with decay.
import { UsageError } from "../util/errors.js";
import type { EvictionPolicy } from "./eviction.js";

export interface MarkovOptions {
  /** Experts per layer slot: keys are layer x stride + expert. */
  stride: number;
  /** Decay per token of the experts' frequencies, the prior (default 0.9, lfu-decay's). */
  decay?: number;
  /** Weight of the prior in each transition row, in tokens (default 2): rows seen less lean on frequency. */
  prior?: number;
  /** Experts per token (k): groups larger than this are prefill batches, not tokens, and teach no transition. */
  perToken: number;
}

/**
 * A row's counts are halved when it has been followed this many times: counts stay small (Float32 is
 * exact) and old transitions lose weight, as LFU's aging does. The real traces (at most 585 tokens) never
 * reach it; a long-running server does.
 */
export const ROW_CAP = 1024;

/** Keys (layer x stride + expert, distinct, as an acquire's) by layer. */
export function byLayer(keys: readonly number[], stride: number): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const k of keys) {
    const l = Math.floor(k / stride);
    const ks = out.get(l);
    if (ks) ks.push(k);
    else out.set(l, [k]);
  }
  return out;
}

/** One layer's counts: decayed frequencies and, per expert i, what followed i (rows made on first use). */
interface LayerState {
  freq: Float64Array;
  /** Decayed number of tokens counted into freq. */
  tokens: number;
  rows: Map<number, Float32Array>;
  /** Tokens each row was counted over. */
  seen: Float64Array;
  /** The latest acquire's experts (a token's, or a prefill batch's). */
  current: number[];
  /** P(used by the next token) per expert, from `current`; undefined until asked for after a begin(). */
  predicted?: Float64Array;
}

/** Evicts the cached key of least worth(), ties to the least recently touched. */
export abstract class WorthPolicy implements EvictionPolicy {
  private readonly last = new Map<number, number>();
  private clock = 0;

  /** Higher keeps the key longer. */
  abstract worth(key: number): number;

  touch(key: number): void {
    this.last.set(key, ++this.clock);
  }

  remove(key: number): void {
    this.last.delete(key);
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    let best: number | undefined;
    let bw = Infinity, bl = Infinity;
    for (const [k, l] of this.last) {
      if (!evictable(k)) continue;
      const w = this.worth(k);
      if (w < bw || (w === bw && l < bl)) [best, bw, bl] = [k, w, l];
    }
    return best;
  }
}

/**
 * Markov-LFU: an expert's worth is P(used at its layer's next token) = the mean over the current token's
 * experts i of (following(i, e) + prior x f(e)) / (seen(i) + prior), f(e) the expert's decayed per-token
 * frequency; the lowest worth goes first, ties to the least recent. Counts come from begin() (one per
 * acquire), not touch(), so background fills and prefetches do not count as use.
 */
export class MarkovPolicy extends WorthPolicy {
  private readonly layers = new Map<number, LayerState>();
  private readonly stride: number;
  private readonly decay: number;
  private readonly prior: number;
  private readonly perToken: number;

  constructor(opts: MarkovOptions) {
    super();
    this.stride = opts.stride;
    this.decay = opts.decay ?? 0.9;
    this.prior = opts.prior ?? 2;
    this.perToken = opts.perToken;
    if (!(Number.isInteger(this.stride) && this.stride > 0)) throw new UsageError("bad_option", `markov needs the experts per layer, got ${this.stride}`);
    if (!(this.decay > 0 && this.decay < 1)) throw new UsageError("bad_option", `markov decay must be in (0, 1), got ${this.decay}`);
    if (!(this.prior > 0)) throw new UsageError("bad_option", `markov prior must be > 0, got ${this.prior}`);
    if (!(this.perToken > 0)) throw new UsageError("bad_option", `markov perToken must be > 0, got ${this.perToken}`);
  }

  begin(keys: readonly number[]): void {
    for (const [l, ks] of byLayer(keys, this.stride)) this.learn(this.layer(l), ks.map((k) => k - l * this.stride));
  }

  /** P(key used by its layer's next token), as victim() ranks it (0 for a layer not yet seen). */
  worth(key: number): number {
    const l = Math.floor(key / this.stride);
    const s = this.layers.get(l);
    return s ? this.predict(s)[key - l * this.stride] : 0;
  }

  private layer(l: number): LayerState {
    let s = this.layers.get(l);
    if (!s) this.layers.set(l, (s = { freq: new Float64Array(this.stride), tokens: 0, rows: new Map(), seen: new Float64Array(this.stride), current: [] }));
    return s;
  }

  private learn(s: LayerState, ids: number[]): void {
    // A prefill batch's union is no token: it neither follows nor is followed as one.
    if (ids.length <= this.perToken && s.current.length > 0 && s.current.length <= this.perToken) {
      for (const i of s.current) {
        let row = s.rows.get(i);
        if (!row) s.rows.set(i, (row = new Float32Array(this.stride)));
        for (const e of ids) row[e]++;
        if (++s.seen[i] >= ROW_CAP) {
          for (let e = 0; e < this.stride; e++) row[e] /= 2;
          s.seen[i] /= 2;
        }
      }
    }
    for (let e = 0; e < this.stride; e++) s.freq[e] *= this.decay;
    for (const e of ids) s.freq[e]++;
    s.tokens = s.tokens * this.decay + 1;
    s.current = ids;
    s.predicted = undefined;
  }

  private predict(s: LayerState): Float64Array {
    if (s.predicted) return s.predicted;
    const p = new Float64Array(this.stride);
    const f = (e: number) => (s.tokens > 0 ? s.freq[e] / s.tokens : 0);
    if (s.current.length === 0) {
      for (let e = 0; e < this.stride; e++) p[e] = f(e);
      return (s.predicted = p);
    }
    for (const i of s.current) {
      const row = s.rows.get(i), n = s.seen[i] + this.prior;
      for (let e = 0; e < this.stride; e++) p[e] += ((row ? row[e] : 0) + this.prior * f(e)) / n;
    }
    for (let e = 0; e < this.stride; e++) p[e] /= s.current.length;
    return (s.predicted = p);
  }
}
