// Token sampler: llama.cpp's default chain (penalties -> top-k -> top-p -> min-p -> temperature -> softmax -> draw),
// greedy argmax when temperature is 0. Built for large vocabularies (Qwen's 151,936): no full sort when top-k is
// set (quickselect, then sort only the k survivors), and top-p without top-k sorts nothing (a quickselect that weighs
// probability mass instead of counting). Work buffers are kept per sampler and reused. ~1-7 ms per call at 152k.
import { UsageError } from "../util/errors.js";
import { resolveSamplingOptions, type ResolvedSamplingOptions, type SamplingOptions } from "./options.js";
import { Rng } from "./rng.js";

export type PenaltyOptions = Pick<ResolvedSamplingOptions, "repeatPenalty" | "presencePenalty" | "frequencyPenalty" | "penaltyLastN">;

/** Three candidate ids ordered best first: higher weight, then lower id (the order every selection here uses). */
function order3(w: ArrayLike<number>, a: number, b: number, c: number): [number, number, number] {
  if (w[b] > w[a] || (w[b] === w[a] && b < a)) [a, b] = [b, a];
  if (w[c] > w[a] || (w[c] === w[a] && c < a)) [a, c] = [c, a];
  if (w[c] > w[b] || (w[c] === w[b] && c < b)) [b, c] = [c, b];
  return [a, b, c];
}

export interface Sampler {
  /** The options in force, defaults filled in (including the seed actually used). */
  readonly options: Readonly<ResolvedSamplingOptions>;
  /**
   * Pick the next token. `logits` (one per vocabulary entry) is not modified; `history` is the tokens so far
   * (prompt and generated), used only by the penalties. NaN and -Infinity logits are never picked.
   */
  sample(logits: Float32Array, history?: readonly number[]): number;
  /** The probability distribution `sample` would draw from (after the whole chain), most likely first. */
  distribution(logits: Float32Array, history?: readonly number[]): { ids: number[]; probs: number[] };
  /** RNG state, to save with a session. */
  getState(): number[];
  /** Restore a state from getState(); the following draws continue exactly as they would have. */
  setState(state: readonly number[]): void;
}

/**
 * Apply llama.cpp's penalties in place to `logits`, for the tokens among the last `penaltyLastN` of `history`
 * (-1 = all of it, 0 = none): a logit > 0 is divided by repeatPenalty, one <= 0 multiplied by it; then
 * count * frequencyPenalty + (count > 0) * presencePenalty is subtracted. Token ids outside the logits are ignored.
 */
export function applyPenalties(logits: Float32Array, history: readonly number[], opts: PenaltyOptions): void {
  const { repeatPenalty, presencePenalty, frequencyPenalty, penaltyLastN } = opts;
  if (penaltyLastN === 0 || (repeatPenalty === 1 && presencePenalty === 0 && frequencyPenalty === 0)) return;
  const start = penaltyLastN < 0 ? 0 : Math.max(0, history.length - penaltyLastN);
  const counts = new Map<number, number>();
  for (let i = start; i < history.length; i++) {
    const t = history[i];
    if (Number.isInteger(t) && t >= 0 && t < logits.length) counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  for (const [t, count] of counts) {
    const l = logits[t];
    logits[t] = l <= 0 ? l * repeatPenalty : l / repeatPenalty;
    logits[t] -= count * frequencyPenalty + presencePenalty;
  }
}

const F32_MAX = 3.4028234663852886e38;

/** Workspace and chain; the candidate set lives in idx[0..m), sorted best-first when `sorted`. */
class ChainSampler implements Sampler {
  readonly options: Readonly<ResolvedSamplingOptions>;
  private readonly rng: Rng;
  private w = new Float32Array(0); // logits after penalties
  private idx = new Int32Array(0); // candidate token ids
  private p = new Float64Array(0); // unnormalised final weights, parallel to idx
  private ex = new Float64Array(0); // exp(logit - max) by token id, for top-p
  private m = 0;
  private sorted = false;

  constructor(opts: SamplingOptions) {
    this.options = Object.freeze(resolveSamplingOptions(opts));
    this.rng = new Rng(this.options.seed);
  }

  getState(): number[] {
    return this.rng.getState();
  }

  setState(state: readonly number[]): void {
    this.rng.setState(state);
  }

  sample(logits: Float32Array, history: readonly number[] = []): number {
    const total = this.prepare(logits, history);
    if (this.m === 1) return this.idx[0];
    const u = this.rng.next() * total;
    const { idx, p, m } = this;
    let cum = 0;
    for (let i = 0; i < m; i++) {
      cum += p[i];
      if (u < cum) return idx[i];
    }
    return idx[m - 1]; // u rounded up to the total
  }

  distribution(logits: Float32Array, history: readonly number[] = []): { ids: number[]; probs: number[] } {
    const total = this.prepare(logits, history);
    const order = Array.from({ length: this.m }, (_, i) => i);
    const { idx, p } = this;
    order.sort((a, b) => p[b] - p[a] || idx[a] - idx[b]);
    return { ids: order.map((i) => idx[i]), probs: order.map((i) => p[i] / total) };
  }

  /** Run the chain; leaves candidates in idx[0..m) with weights in p[0..m) and returns their sum. */
  private prepare(logits: Float32Array, history: readonly number[]): number {
    if (!(logits instanceof Float32Array) || logits.length === 0) {
      throw new UsageError("SAMPLER_BAD_LOGITS", "logits must be a non-empty Float32Array");
    }
    const n = logits.length;
    if (this.w.length !== n) {
      this.w = new Float32Array(n);
      this.idx = new Int32Array(n);
      this.p = new Float64Array(n);
      this.ex = new Float64Array(n);
    }
    const { w, idx } = this;
    const o = this.options;
    w.set(logits);
    applyPenalties(w, history, o);

    if (o.temperature === 0) {
      let best = -1;
      let bv = -Infinity;
      for (let i = 0; i < n; i++) {
        if (w[i] > bv) {
          bv = w[i];
          best = i;
        }
      }
      if (best < 0) throw noCandidates();
      idx[0] = best;
      this.p[0] = 1;
      this.m = 1;
      return 1;
    }

    // Candidates: every token with a usable logit (NaN and -Infinity dropped, +Infinity clamped so softmax stays finite).
    let m = 0;
    for (let i = 0; i < n; i++) {
      const v = w[i];
      if (v > -Infinity) {
        if (v === Infinity) w[i] = F32_MAX;
        idx[m++] = i;
      }
    }
    if (m === 0) throw noCandidates();
    this.m = m;
    this.sorted = false;

    if (o.topK > 0 && o.topK < this.m) {
      selectBest(idx, w, 0, this.m - 1, o.topK - 1);
      this.m = o.topK;
      sortBest(idx, w, 0, this.m);
      this.sorted = true;
    }
    const lmax = this.maxLogit();
    this.topPMinP(lmax, o.topP, o.minP);

    // Temperature, then softmax weights (unnormalised; the draw scales by their sum).
    const invT = 1 / o.temperature;
    const p = this.p;
    let total = 0;
    for (let i = 0; i < this.m; i++) {
      const e = Math.exp((w[idx[i]] - lmax) * invT);
      p[i] = e;
      total += e;
    }
    return total;
  }

  private maxLogit(): number {
    const { w, idx } = this;
    if (this.sorted) return w[idx[0]];
    let lmax = -Infinity;
    for (let i = 0; i < this.m; i++) if (w[idx[i]] > lmax) lmax = w[idx[i]];
    return lmax;
  }

  /**
   * top-p, then min-p, both on the untempered logits (llama.cpp's order). top-p keeps A, the smallest best-first
   * prefix whose probability is >= topP (at least one token); min-p keeps B, the tokens with logit >= max + ln(minP),
   * i.e. p >= minP * pmax, also a best-first prefix, and the max is the same before and after top-p. So the result is
   * the shorter of A and B: filter B first (one pass), and look for A inside B only when B's mass reaches the target.
   * A is found by a mass-weighted quickselect, so nothing is sorted.
   */
  private topPMinP(lmax: number, topP: number, minP: number): void {
    if (topP >= 1 && minP <= 0) return;
    const { w, idx, ex } = this;
    let m = this.m;
    let target = 0;
    if (topP < 1) {
      let sum = 0;
      for (let i = 0; i < m; i++) {
        const t = idx[i];
        const e = Math.exp(w[t] - lmax);
        ex[t] = e;
        sum += e;
      }
      target = topP * sum;
    }
    let keptMass = Infinity;
    if (minP > 0) {
      const threshold = lmax + Math.log(minP);
      let j = 0;
      keptMass = 0;
      for (let i = 0; i < m; i++) {
        const t = idx[i];
        if (w[t] >= threshold) {
          idx[j++] = t;
          if (topP < 1) keptMass += ex[t];
        }
      }
      m = j;
    }
    if (topP < 1 && keptMass >= target) {
      if (target <= 0) {
        if (!this.sorted) selectBest(idx, w, 0, m - 1, 0);
        m = 1;
      } else if (this.sorted) {
        let cum = 0;
        for (let i = 0; i < m; i++) {
          cum += ex[idx[i]];
          if (cum >= target) {
            m = i + 1;
            break;
          }
        }
      } else {
        m = selectMass(idx, w, ex, m, target);
      }
    }
    this.m = m;
  }
}

function noCandidates(): UsageError {
  return new UsageError("SAMPLER_BAD_LOGITS", "no token can be sampled: every logit is NaN or -Infinity");
}

/**
 * Quickselect (Wirth/Hoare, median of three) on idx[l..r] (inclusive) so that idx[nth] is the candidate of that rank
 * and everything before it is better: higher logit, or equal logit and lower id (a strict total order).
 */
function selectBest(idx: Int32Array, w: Float32Array, l: number, r: number, nth: number): void {
  while (r > l) {
    if (r === l + 1) {
      const a = idx[l], b = idx[r];
      if (w[b] > w[a] || (w[b] === w[a] && b < a)) {
        idx[l] = b;
        idx[r] = a;
      }
      return;
    }
    const mid = (l + r) >>> 1; // distinct from l and r here
    const [a, b, c] = order3(w, idx[l], idx[mid], idx[r]);
    idx[l] = a;
    idx[mid] = b;
    idx[r] = c;
    const pt = b;
    const pv = w[pt];
    let i = l, j = r;
    while (i <= j) {
      for (;;) {
        const t = idx[i];
        const v = w[t];
        if (v > pv || (v === pv && t < pt)) i++;
        else break;
      }
      for (;;) {
        const t = idx[j];
        const v = w[t];
        if (pv > v || (v === pv && pt < t)) j--;
        else break;
      }
      if (i <= j) {
        const t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        i++;
        j--;
      }
    }
    if (nth <= j) r = j;
    else if (nth >= i) l = i;
    else return;
  }
}

/**
 * Smallest k such that the k best of idx[0..m) have mass (sum of ex[token]) >= target (> 0), moving them to idx[0..k)
 * in no particular order. Quickselect where each partition's better side is weighed instead of counted.
 */
function selectMass(idx: Int32Array, w: Float32Array, ex: Float64Array, m: number, target: number): number {
  let l = 0, r = m - 1, acc = 0; // everything before l is kept, and has mass acc < target
  while (l < r) {
    if (r - l >= 2) {
      // Median of three to idx[r] as the pivot.
      const mid = (l + r) >>> 1;
      const [a, b, c] = order3(w, idx[l], idx[mid], idx[r]);
      idx[l] = a;
      idx[mid] = c;
      idx[r] = b;
    }
    const pt = idx[r];
    const pv = w[pt];
    let store = l;
    let left = 0;
    for (let i = l; i < r; i++) {
      const t = idx[i];
      const v = w[t];
      if (v > pv || (v === pv && t < pt)) {
        idx[i] = idx[store];
        idx[store++] = t;
        left += ex[t];
      }
    }
    idx[r] = idx[store];
    idx[store] = pt;
    if (acc + left >= target) {
      r = store - 1; // the answer lies strictly before the pivot (left > 0, so store > l)
    } else {
      acc += left + ex[pt];
      if (acc >= target) return store + 1;
      l = store + 1;
    }
  }
  return r + 1; // l === r: that one completes the mass (or, after rounding, l > r: all of idx[0..r] is kept)
}

/** Sort idx[from..to) best first (logit descending, id ascending on ties). */
function sortBest(idx: Int32Array, w: Float32Array, from: number, to: number): void {
  if (to - from > 1) idx.subarray(from, to).sort((a, b) => w[b] - w[a] || a - b);
}

/** A sampler with its own seeded RNG; options are validated here (UsageError naming the bad field). */
export function createSampler(opts: SamplingOptions = {}): Sampler {
  return new ChainSampler(opts);
}
