// The cache's slots budgeted per layer. Real routers differ a lot between layers (56-109 of 128 experts
// touched in 156 tokens, adjacent-token overlap 0.06-0.62 on Qwen3-30B-A3B), and one pool scored by one
// policy lets a layer's churn evict what the layers about to run will ask for. Replayed on the real traces
// (npm run bench -- replay), a slot quota per layer beats one pool by 3-4 points at 2x a token's experts;
// the hindsight-best fixed quotas beat equal ones by at most 1.2 points, and at 8x one pool beats equal
// quotas by about a point. So: quotas start equal, each layer keeps a floor of its equal share, and the
// rest follows marginal utility (UCP, Qureshi and Patt, MICRO 2006) read from each layer's decayed expert
// frequencies: with s slots an LFU-like layer holds its s most used experts, so slot s is worth the s-th
// largest frequency, a falling curve, and the greedy allocation is exact.
import { UsageError } from "../util/errors.js";
import { byLayer } from "./markov-policy.js";
import type { EvictionPolicy } from "./eviction.js";

export interface LayerBudgetOptions {
  /** Experts per layer, 0 for a layer without experts; keys are layer x max(layerExperts) + expert (StreamingExperts' and replay's keys). */
  layerExperts: readonly number[];
  /** Share of an equal split each layer keeps whatever its use (1: fixed equal quotas). Default 0.85. */
  floor?: number;
  /** Frequencies decay by this per token (default 0.97: a half-life of ~23 tokens). */
  decay?: number;
  /** Touches per token (k x layers with experts): the frequencies' clock. */
  touchesPerToken: number;
}

/** Default floor: on the real traces within 0.5 points of equal quotas at 2x and of one pool at 8x. */
export const DEFAULT_FLOOR = 0.85;
const DEFAULT_DECAY = 0.97;

/**
 * Slot quotas per layer: `floor` x an equal share each, the rest to the layers whose next slot holds the
 * most used expert (decayed counts). A layer may run over its quota (an acquire larger than it, e.g. a
 * prefill batch) and gives slots back as others miss.
 */
export class LayerQuotas {
  readonly layers: number[];
  readonly stride: number;
  /** Decayed touch counts per layer and expert, scaled by a growing weight (LRFU's trick: a touch is O(1)). */
  private readonly freq: Float64Array[];
  private weight = 1;
  private readonly step: number;
  private readonly floorShare: number;
  private readonly touchesPerToken: number;
  private touches = 0;
  private quota: Int32Array;
  /** Slots the quotas were computed for and the token they were computed at (-1: never). */
  private slots = 0;
  private at = -1;

  constructor(readonly layerExperts: readonly number[], opts: { floor?: number; decay?: number; touchesPerToken: number }) {
    this.layers = layerExperts.flatMap((n, l) => (n > 0 ? [l] : []));
    if (this.layers.length === 0) throw new UsageError("bad_option", "per-layer budget: the model has no layer with experts");
    this.stride = Math.max(...layerExperts);
    this.floorShare = opts.floor ?? DEFAULT_FLOOR;
    const decay = opts.decay ?? DEFAULT_DECAY;
    if (!(this.floorShare >= 0 && this.floorShare <= 1)) throw new UsageError("bad_option", `perLayer floor must be in [0, 1], got ${this.floorShare}`);
    if (!(decay > 0 && decay <= 1)) throw new UsageError("bad_option", `perLayer decay must be in (0, 1], got ${decay}`);
    if (!(opts.touchesPerToken > 0)) throw new UsageError("bad_option", `perLayer touches per token must be > 0, got ${opts.touchesPerToken}`);
    this.step = decay ** (-1 / opts.touchesPerToken);
    this.touchesPerToken = opts.touchesPerToken;
    this.freq = layerExperts.map((n) => new Float64Array(n));
    this.quota = new Int32Array(layerExperts.length);
  }

  layerOf(key: number): number {
    return Math.floor(key / this.stride);
  }

  touch(key: number): void {
    const l = this.layerOf(key);
    this.weight *= this.step;
    this.freq[l][key - l * this.stride] += this.weight;
    this.touches++;
    if (this.weight > 1e200) {
      for (const f of this.freq) for (let i = 0; i < f.length; i++) f[i] /= this.weight;
      this.weight = 1;
    }
  }

  /** Each layer's quota of `slots`, recomputed at most once a token (and when the slot count changes). */
  of(slots: number): Int32Array {
    const token = Math.floor(this.touches / this.touchesPerToken);
    if (slots !== this.slots || token !== this.at) this.allocate(slots), (this.slots = slots), (this.at = token);
    return this.quota;
  }

  private allocate(slots: number): void {
    const q = this.quota.fill(0);
    const equal = slots / this.layers.length;
    let left = slots;
    // Beyond its floor, each layer's frequencies in falling order: the worth of its next slots.
    const sorted = new Map<number, Float64Array>();
    const rest: number[] = [];
    for (const l of this.layers) {
      q[l] = Math.min(this.layerExperts[l], Math.floor(this.floorShare * equal));
      left -= q[l];
      const f = Float64Array.from(this.freq[l]).sort().reverse();
      sorted.set(l, f);
      for (let i = q[l]; i < f.length; i++) rest.push(f[i]);
    }
    if (left <= 0) return;
    // The `left` largest worths win; ties at the threshold go round the layers one slot at a time, so
    // zeros (a cold start) spread evenly instead of to the first layers.
    const worth = Float64Array.from(rest).sort();
    const cut = worth.length > left ? worth[worth.length - left] : -1;
    for (const l of this.layers) {
      const f = sorted.get(l)!;
      for (let i = q[l]; i < f.length && f[i] > cut; i++) q[l]++, left--;
    }
    for (let spread = true; left > 0 && spread; ) {
      spread = false;
      for (const l of this.layers) {
        if (left === 0) break;
        if (q[l] < this.layerExperts[l] && sorted.get(l)![q[l]] === cut) q[l]++, left--, (spread = true);
      }
    }
  }
}

/**
 * An eviction policy per layer under per-layer slot quotas (UCP's rule): a miss in a layer under its quota
 * takes the slot from the layer furthest over its own, chosen by that layer's policy; a layer at or over
 * its quota evicts its own. A layer with nothing evictable passes to the next. The slot count is the most
 * keys ever cached, as the other policies learn it (no policy is told the cache size).
 */
export class PerLayerPolicy implements EvictionPolicy {
  private readonly inner = new Map<number, EvictionPolicy>();
  private readonly count: Int32Array;
  private readonly cached = new Set<number>();
  private peak = 0;
  readonly quotas: LayerQuotas;

  constructor(opts: LayerBudgetOptions, make: () => EvictionPolicy) {
    this.quotas = new LayerQuotas(opts.layerExperts, opts);
    for (const l of this.quotas.layers) this.inner.set(l, make());
    this.count = new Int32Array(opts.layerExperts.length);
  }

  private policy(key: number): EvictionPolicy {
    const p = this.inner.get(this.quotas.layerOf(key));
    if (!p) throw new RangeError(`key ${key} is in layer ${this.quotas.layerOf(key)}, which has no experts`);
    return p;
  }

  touch(key: number): void {
    this.policy(key).touch(key);
    this.quotas.touch(key);
    if (!this.cached.has(key)) {
      this.cached.add(key);
      this.count[this.quotas.layerOf(key)]++;
      this.peak = Math.max(this.peak, this.cached.size);
    }
  }

  remove(key: number): void {
    this.policy(key).remove(key);
    if (this.cached.delete(key)) this.count[this.quotas.layerOf(key)]--;
  }

  /** Each layer's policy hears of its own layer's keys (an acquire is one layer's). */
  begin(keys: readonly number[]): void {
    for (const [l, ks] of byLayer(keys, this.quotas.stride)) this.inner.get(l)?.begin?.(ks);
  }

  victim(evictable: (key: number) => boolean, incoming?: number): number | undefined {
    const quota = this.quotas.of(this.peak);
    const own = incoming === undefined ? -1 : this.quotas.layerOf(incoming);
    const over = (l: number) => this.count[l] - quota[l];
    const donors = this.quotas.layers.filter((l) => l !== own && this.count[l] > 0).sort((a, b) => over(b) - over(a) || a - b);
    const order = own >= 0 && this.count[own] > 0 && over(own) >= 0 ? [own, ...donors] : own >= 0 && this.count[own] > 0 ? [...donors, own] : donors;
    for (const l of order) {
      const v = this.inner.get(l)!.victim(evictable);
      if (v !== undefined) return v;
    }
    return undefined;
  }
}
