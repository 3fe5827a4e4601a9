// Eviction policies for StreamingExperts, chosen by replaying routing traces (experts/replay.ts).
// Keys are opaque; no policy is told the cache size, so sizes that matter (SLRU's protected segment,
// aging periods) scale with the number of keys the policy tracks, which is the slot count once full.
// victim() scans: a slot is an expert record (megabytes read from disk), so O(slots) per miss is noise.
import { UsageError } from "../util/errors.js";
import { LruPolicy, type EvictionPolicy } from "./streaming-source.js";

export { LruPolicy, type EvictionPolicy };

/**
 * Segmented LRU: a new key enters probation; a hit there promotes it to the protected segment, which
 * holds at most `protectedShare` of the cached keys (its oldest fall back to probation's newest).
 * Victims come from probation first, so one-off experts (a prefill's long tail) cannot flush the
 * experts that keep coming back.
 */
export class SlruPolicy implements EvictionPolicy {
  private readonly probation = new Map<number, true>();
  private readonly protect = new Map<number, true>();

  constructor(readonly protectedShare = 0.8) {
    if (!(protectedShare >= 0 && protectedShare <= 1)) throw new UsageError("bad_option", `slru protected share must be in [0, 1], got ${protectedShare}`);
  }

  touch(key: number): void {
    if (this.protect.delete(key)) {
      this.protect.set(key, true);
      return;
    }
    if (!this.probation.delete(key)) {
      this.probation.set(key, true);
      return;
    }
    this.protect.set(key, true);
    // At least one protected key while the cache is still filling (a share of 1 key would round to 0).
    const size = this.probation.size + this.protect.size;
    const limit = this.protectedShare > 0 ? Math.max(1, Math.floor(this.protectedShare * size)) : 0;
    for (const k of this.protect.keys()) {
      if (this.protect.size <= limit) break;
      this.protect.delete(k);
      this.probation.set(k, true);
    }
  }

  remove(key: number): void {
    this.probation.delete(key);
    this.protect.delete(key);
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    for (const k of this.probation.keys()) if (evictable(k)) return k;
    for (const k of this.protect.keys()) if (evictable(k)) return k;
    return undefined;
  }
}

export interface LfuOptions {
  /** Halve every count after this many touches; 0 = every `agingFactor` x (keys tracked) touches. */
  halveEvery?: number;
  /** Default 16: on replayed traces within 1 point of never aging, and 2-3 points better after a topic shift. */
  agingFactor?: number;
  /** Keep counts of evicted keys (the key space is small: layers x experts), so a popular expert re-enters warm. */
  history?: boolean;
}

/** LFU with aging: counts are halved periodically so popularity can shift; ties go to the least recent. */
export class LfuPolicy implements EvictionPolicy {
  private readonly count = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private readonly cached = new Set<number>();
  private clock = 0;
  private sinceAging = 0;
  private readonly halveEvery: number;
  private readonly agingFactor: number;
  private readonly history: boolean;

  constructor(opts: LfuOptions = {}) {
    this.halveEvery = opts.halveEvery ?? 0;
    this.agingFactor = opts.agingFactor ?? 16;
    this.history = opts.history ?? true;
    if (!(this.halveEvery >= 0) || !(this.agingFactor > 0)) throw new UsageError("bad_option", "lfu halveEvery must be >= 0 and agingFactor > 0");
  }

  touch(key: number): void {
    this.cached.add(key);
    this.count.set(key, (this.count.get(key) ?? 0) + 1);
    this.last.set(key, ++this.clock);
    const period = this.halveEvery || this.agingFactor * Math.max(1, this.cached.size);
    if (++this.sinceAging >= period) {
      this.sinceAging = 0;
      for (const [k, c] of this.count) {
        if (c <= 1 && !this.cached.has(k)) this.count.delete(k);
        else this.count.set(k, c / 2);
      }
    }
  }

  remove(key: number): void {
    this.cached.delete(key);
    this.last.delete(key);
    if (!this.history) this.count.delete(key);
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    let best: number | undefined;
    let bc = Infinity, bl = Infinity;
    for (const k of this.cached) {
      const c = this.count.get(k)!, l = this.last.get(k)!;
      if ((c < bc || (c === bc && l < bl)) && evictable(k)) [best, bc, bl] = [k, c, l];
    }
    return best;
  }
}

export interface LrfuOptions {
  /** Touches after which an old touch weighs half a new one; 0 = `halfLifeFactor` x (keys tracked). */
  halfLife?: number;
  halfLifeFactor?: number;
}

/**
 * LRFU (Lee et al. 2001): each key's score is a sum over its touches of 2^(-age / halfLife), so one
 * knob spans LRU (short half-life) to LFU (long). Scores of evicted keys are kept, as LFU's history.
 * Stored scaled by a growing weight, so a touch is O(1); rescaled before the weight overflows.
 */
export class LrfuPolicy implements EvictionPolicy {
  private readonly score = new Map<number, number>();
  private readonly cached = new Set<number>();
  private weight = 1;
  private readonly halfLife: number;
  private readonly factor: number;

  constructor(opts: LrfuOptions = {}) {
    this.halfLife = opts.halfLife ?? 0;
    this.factor = opts.halfLifeFactor ?? 16;
    if (!(this.halfLife >= 0) || !(this.factor > 0)) throw new UsageError("bad_option", "lrfu halfLife must be >= 0 and halfLifeFactor > 0");
  }

  touch(key: number): void {
    this.cached.add(key);
    const h = this.halfLife || this.factor * Math.max(1, this.cached.size);
    this.weight *= 2 ** (1 / h);
    this.score.set(key, (this.score.get(key) ?? 0) + this.weight);
    if (this.weight > 1e200) {
      for (const [k, s] of this.score) {
        const v = s / this.weight;
        if (v < 1e-300 && !this.cached.has(k)) this.score.delete(k);
        else this.score.set(k, v);
      }
      this.weight = 1;
    }
  }

  remove(key: number): void {
    this.cached.delete(key);
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    let best: number | undefined;
    let bs = Infinity;
    for (const k of this.cached) {
      const s = this.score.get(k)!;
      if (s < bs && evictable(k)) [best, bs] = [k, s];
    }
    return best;
  }
}

export const POLICY_NAMES = ["lru", "slru", "lfu", "lrfu"] as const;
/**
 * The default to wire into StreamingExperts: on replayed decode traces at 2x a token's experts, LFU hit
 * 63% vs LRU's 45% (a3b-8L, realistic routing) and 84% vs 74% (tiny, realistic); Belady 75% and 90%.
 */
export const RECOMMENDED_POLICY = "lfu";
export type PolicyName = (typeof POLICY_NAMES)[number];

/** Parameters each policy takes by name (policyByName's params, the CLI's name:key=value). */
const PARAMS: Record<PolicyName, readonly string[]> = {
  lru: [],
  slru: ["protected"],
  lfu: ["halveEvery", "agingFactor", "history"],
  lrfu: ["halfLife", "halfLifeFactor"],
};

/** A fresh policy by name; params as numbers (history: 0 or 1). */
export function policyByName(name: string, params: Record<string, number> = {}): EvictionPolicy {
  if (!(POLICY_NAMES as readonly string[]).includes(name)) throw new UsageError("bad_option", `unknown eviction policy '${name}' (known: ${POLICY_NAMES.join(", ")})`);
  const n = name as PolicyName;
  for (const k of Object.keys(params)) {
    if (!PARAMS[n].includes(k)) throw new UsageError("bad_option", `policy ${n} has no parameter '${k}'${PARAMS[n].length ? ` (it takes ${PARAMS[n].join(", ")})` : ""}`);
  }
  switch (n) {
    case "lru":
      return new LruPolicy();
    case "slru":
      return new SlruPolicy(params.protected);
    case "lfu":
      return new LfuPolicy({ halveEvery: params.halveEvery, agingFactor: params.agingFactor, history: params.history === undefined ? undefined : params.history !== 0 });
    case "lrfu":
      return new LrfuPolicy({ halfLife: params.halfLife, halfLifeFactor: params.halfLifeFactor });
  }
}

/** "slru:protected=0.8" -> { name, params }; the spelling the CLI and reports use. */
export function parsePolicySpec(spec: string): { name: string; params: Record<string, number> } {
  const [name, ...rest] = spec.trim().split(":");
  const params: Record<string, number> = {};
  for (const kv of rest.join(":").split(",").filter((s) => s.trim() !== "")) {
    const [k, v] = kv.split("=");
    const x = Number(v);
    if (!k || v === undefined || v.trim() === "" || !Number.isFinite(x)) throw new UsageError("bad_option", `policy '${spec}': expected name:key=number,..., got '${kv}'`);
    params[k.trim()] = x;
  }
  policyByName(name, params); // validate now, not at the first replay
  return { name, params };
}
