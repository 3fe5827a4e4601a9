// How much of the gap between the best online eviction policy and Belady a prediction of future routing
// could close (docs/cache-policy.md): a policy told the next `window` tokens of every layer's routing
// (each use revealed with probability `reveal`), and how well online predictors name the next token's
// experts. Study tools: they read the trace's future, so they exist only here, never in the engine.
import { MarkovPolicy, WorthPolicy } from "../src/experts/markov-policy.js";
import { expertLayers, type Trace } from "../src/experts/trace.js";

export interface ForesightOptions {
  /** Tokens of each layer's future routing the policy sees, from that layer's next token on. */
  window: number;
  /** Share of future uses it is told (a fixed hash per use picks them; 1: all). */
  reveal?: number;
  /** Per-token decay of the frequencies that rank keys with no use in sight (default 0.9, markov's). */
  decay?: number;
}

/** A fixed pseudo-random number in [0, 1) per (token, layer, expert): which uses a partial foresight sees. */
function useHash(t: number, l: number, e: number): number {
  let h = Math.imul(t, 73856093) ^ Math.imul(l, 19349663) ^ Math.imul(e, 83492791) ^ 0x9e3779b9;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/**
 * Evicts the cached expert whose next use in sight is farthest in access order (Belady within the window);
 * experts with no use in sight go first, the least used lately (decayed counts) first, then the least
 * recent (WorthPolicy's tie). One token is one call: for decode-only traces (the real ones), each call
 * one acquire per layer.
 */
export class ForesightPolicy extends WorthPolicy {
  private readonly nExpert: number;
  private readonly layerIndex = new Map<number, number>();
  /** Per key, the calls that use it (revealed ones only), ascending. */
  private readonly uses = new Map<number, number[]>();
  private readonly cursor = new Map<number, number>();
  /** Calls each layer has begun. */
  private readonly tok = new Map<number, number>();
  private readonly freq = new Map<number, { v: number; at: number }>();
  private readonly decay: number;

  constructor(trace: Trace, private readonly opts: ForesightOptions) {
    super();
    const m = trace.header.model;
    this.nExpert = m.nExpert;
    this.decay = opts.decay ?? 0.9;
    const layers = expertLayers(m);
    layers.forEach((l, i) => this.layerIndex.set(l, i));
    const reveal = opts.reveal ?? 1;
    trace.calls.forEach((c, t) => {
      if (c.nTokens !== 1) throw new RangeError(`foresight counts a call as a token: call ${t} has ${c.nTokens}`);
      for (const l of layers) {
        for (const e of new Set(c.routes[l]!)) {
          if (reveal < 1 && useHash(t, l, e) >= reveal) continue;
          const key = l * m.nExpert + e;
          const u = this.uses.get(key);
          if (u) u.push(t);
          else this.uses.set(key, [t]);
        }
      }
    });
  }

  begin(keys: readonly number[]): void {
    const l = Math.floor(keys[0] / this.nExpert);
    const t = this.tok.get(l) ?? 0;
    this.tok.set(l, t + 1);
    for (const k of keys) {
      const f = this.freq.get(k);
      this.freq.set(k, { v: (f ? f.v * this.decay ** (t - f.at) : 0) + 1, at: t });
    }
  }

  /**
   * In sight: above every count (2^40 less the next use's position in access order, so nearer is worth
   * more); else the decayed count, at most 1 / (1 - decay).
   */
  worth(key: number): number {
    const l = Math.floor(key / this.nExpert);
    const t = this.tok.get(l) ?? 0;
    const next = this.nextUse(key, t);
    if (next !== undefined && next < t + this.opts.window) return 2 ** 40 - (next * this.layerIndex.size + this.layerIndex.get(l)!);
    const f = this.freq.get(key);
    return f ? f.v * this.decay ** (t - f.at) : 0;
  }

  /** The first call >= t that uses `key` (revealed), or undefined. */
  private nextUse(key: number, t: number): number | undefined {
    const u = this.uses.get(key);
    if (!u) return undefined;
    let i = this.cursor.get(key) ?? 0;
    while (i < u.length && u[i] < t) i++;
    this.cursor.set(key, i);
    return u[i];
  }
}

export interface RecallRow {
  /** Share of the next token's experts that the previous token also used (adjacent-token overlap). */
  previous: number;
  /** Share named by the k (and 2k) experts of highest decayed frequency. */
  frequency: [number, number];
  /** Share named by the k (and 2k) experts markov ranks highest. */
  markov: [number, number];
}

/** How well online predictors name each layer's next-token experts, averaged over every layer and token. */
export function nextTokenRecall(trace: Trace): RecallRow {
  const m = trace.header.model;
  const nE = m.nExpert;
  const markov = new MarkovPolicy({ stride: nE, perToken: m.k });
  const freq = new MarkovPolicy({ stride: nE, perToken: m.k, prior: 1e12 }); // the prior outweighs every row: frequency alone
  const sums = { previous: 0, f1: 0, f2: 0, m1: 0, m2: 0, n: 0 };
  const named = (p: MarkovPolicy, l: number, want: Set<number>, n: number) =>
    Array.from({ length: nE }, (_, e) => e).sort((a, b) => p.worth(l * nE + b) - p.worth(l * nE + a)).slice(0, n).filter((e) => want.has(e)).length;
  trace.calls.forEach((c, t) => {
    for (const l of expertLayers(m)) {
      const ids = [...new Set(c.routes[l]!)];
      const want = new Set(ids);
      if (t > 0) {
        const prev = new Set(trace.calls[t - 1].routes[l]!);
        sums.previous += ids.filter((e) => prev.has(e)).length;
        sums.f1 += named(freq, l, want, m.k);
        sums.f2 += named(freq, l, want, 2 * m.k);
        sums.m1 += named(markov, l, want, m.k);
        sums.m2 += named(markov, l, want, 2 * m.k);
        sums.n += ids.length;
      }
      const keys = ids.map((e) => l * nE + e);
      markov.begin(keys);
      freq.begin(keys);
    }
  });
  const r = (x: number) => x / sums.n;
  return { previous: r(sums.previous), frequency: [r(sums.f1), r(sums.f2)], markov: [r(sums.m1), r(sums.m2)] };
}
