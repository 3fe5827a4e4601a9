// Eviction policies for StreamingExperts, chosen by replaying routing traces (experts/replay.ts).
// Keys are opaque; no policy is told the cache size, so sizes that matter (SLRU's protected segment,
// aging periods) scale with the number of keys the policy tracks, which is the slot count once full.
// victim() scans: a slot is an expert record (megabytes read from disk), so O(slots) per miss is noise.
import { UsageError } from "../util/errors.js";
import { LruPolicy, type EvictionPolicy } from "./eviction.js";
import { PerLayerPolicy } from "./layer-budget.js";
import { MarkovPolicy } from "./markov-policy.js";
import type { ExpertReader } from "./store.js";

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

/**
 * LFU with a per-token decay: every count loses `decay` of its weight per token (a forward call's
 * worth of touches, `touchesPerToken`), evicted keys keep theirs. That is LRFU with a half-life of
 * ln 2 / ln(1 / decay) tokens, so it is one: the knob is named as the measurements name it.
 */
export class LfuDecayPolicy extends LrfuPolicy {
  constructor(decay = 0.9, touchesPerToken = 1) {
    super({ halfLife: LfuDecayPolicy.halfLife(decay, touchesPerToken) });
  }

  static halfLife(decay: number, touchesPerToken: number): number {
    if (!(decay > 0 && decay < 1)) throw new UsageError("bad_option", `lfu-decay decay must be in (0, 1), got ${decay}`);
    if (!(touchesPerToken > 0)) throw new UsageError("bad_option", `lfu-decay perToken must be > 0, got ${touchesPerToken}`);
    return (touchesPerToken * Math.LN2) / -Math.log(decay);
  }
}

/**
 * LFU with dynamic aging (LFUDA, Arlitt et al. 2000): a key's priority is its count since it entered
 * plus the cache's age L, which becomes the priority of each evicted key; so new keys start level with
 * what was just worth evicting and old counts stop protecting experts no longer used. Evicted keys
 * forget their count (as the original). Ties go to the least recent.
 */
export class LfudaPolicy implements EvictionPolicy {
  private readonly count = new Map<number, number>();
  private readonly prio = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private age = 0;
  private clock = 0;

  touch(key: number): void {
    const c = (this.count.get(key) ?? 0) + 1;
    this.count.set(key, c);
    this.prio.set(key, this.age + c);
    this.last.set(key, ++this.clock);
  }

  remove(key: number): void {
    this.age = Math.max(this.age, this.prio.get(key) ?? 0);
    this.count.delete(key);
    this.prio.delete(key);
    this.last.delete(key);
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    let best: number | undefined;
    let bp = Infinity, bl = Infinity;
    for (const [k, p] of this.prio) {
      const l = this.last.get(k)!;
      if ((p < bp || (p === bp && l < bl)) && evictable(k)) [best, bp, bl] = [k, p, l];
    }
    return best;
  }
}

export interface S3FifoOptions {
  /** Share of the cached keys the small FIFO holds before it must give up its oldest (0.1 in the paper). */
  small?: number;
  /** Hits in the small FIFO that move a key to the main one instead of evicting it (default 1). */
  promote?: number;
}

/**
 * S3-FIFO (Yang et al., SOSP 2023): new keys enter a small FIFO; its oldest leaves to the ghost list
 * unless hit `promote` times there, then moves to the main FIFO. Keys in the ghost list (as many as
 * main's share of the cache, the most keys ever cached) re-enter straight into main. Main is FIFO with reinsertion: a key hit since it
 * was last passed (counts to 3) goes round again with one count less. Pinned keys are passed over and
 * stay where they are. victim() does the moves, as S3-FIFO's eviction does; remove() ends the chosen key.
 */
export class S3FifoPolicy implements EvictionPolicy {
  private readonly smallQ = new Map<number, true>();
  private readonly mainQ = new Map<number, true>();
  private readonly ghost = new Map<number, true>();
  private readonly freq = new Map<number, number>();
  /** The most keys cached at once: the slot count once the cache is full. */
  private peak = 0;
  private readonly small: number;
  private readonly promote: number;

  constructor(opts: S3FifoOptions = {}) {
    this.small = opts.small ?? 0.1;
    this.promote = opts.promote ?? 1;
    if (!(this.small > 0 && this.small < 1) || !(Number.isInteger(this.promote) && this.promote >= 1)) {
      throw new UsageError("bad_option", "s3fifo small must be in (0, 1) and promote an integer >= 1");
    }
  }

  touch(key: number): void {
    if (this.smallQ.has(key) || this.mainQ.has(key)) {
      this.freq.set(key, Math.min(3, this.freq.get(key)! + 1));
      return;
    }
    this.freq.set(key, 0);
    if (this.ghost.delete(key)) this.mainQ.set(key, true);
    else this.smallQ.set(key, true);
    this.peak = Math.max(this.peak, this.smallQ.size + this.mainQ.size);
  }

  remove(key: number): void {
    this.freq.delete(key);
    if (this.mainQ.delete(key) || !this.smallQ.delete(key)) return;
    // Out of the small FIFO: remembered, as many as main's share of the slots (at least one).
    this.ghost.set(key, true);
    const cap = Math.max(1, Math.round((1 - this.small) * this.peak));
    for (const k of this.ghost.keys()) {
      if (this.ghost.size <= cap) break;
      this.ghost.delete(k);
    }
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    const total = this.smallQ.size + this.mainQ.size;
    if (this.smallQ.size >= this.small * total) {
      for (const k of [...this.smallQ.keys()]) {
        if (!evictable(k)) continue;
        if (this.freq.get(k)! < this.promote) return k;
        this.smallQ.delete(k);
        this.mainQ.set(k, true);
        this.freq.set(k, 0);
      }
    }
    // A Map visits keys re-added during iteration, so this goes round until a count reaches 0 (<= 4 passes).
    for (const k of this.mainQ.keys()) {
      if (!evictable(k)) continue;
      const f = this.freq.get(k)!;
      if (f === 0) return k;
      this.freq.set(k, f - 1);
      this.mainQ.delete(k);
      this.mainQ.set(k, true);
    }
    // Main had nothing evictable: the small FIFO's oldest unpinned, promoted or not.
    for (const k of this.smallQ.keys()) if (evictable(k)) return k;
    return undefined;
  }
}

/**
 * ARC (Megiddo and Modha, FAST 2003): T1 holds keys seen once lately, T2 keys seen again; ghosts B1 and
 * B2 remember what each lost, and a hit in a ghost moves the target size p of T1 toward the list that
 * would have kept it. The cache size c is the most keys ever cached (the slot count once full).
 * One departure, from when victim() was not told the missing key (it is now, as `incoming`; measured
 * as is): p adapts at the touch, one miss late, and REPLACE's "x in B2 and |T1| = p" case is dropped
 * (T1 gives the victim when |T1| > p).
 */
export class ArcPolicy implements EvictionPolicy {
  private readonly t1 = new Map<number, true>();
  private readonly t2 = new Map<number, true>();
  private readonly b1 = new Map<number, true>();
  private readonly b2 = new Map<number, true>();
  private p = 0;
  private c = 0;

  touch(key: number): void {
    if (this.t1.delete(key) || this.t2.delete(key)) {
      this.t2.set(key, true);
      return;
    }
    if (this.b1.delete(key)) {
      this.p = Math.min(this.c, this.p + Math.max(this.b2.size / Math.max(1, this.b1.size), 1));
      this.t2.set(key, true);
    } else if (this.b2.delete(key)) {
      this.p = Math.max(0, this.p - Math.max(this.b1.size / Math.max(1, this.b2.size), 1));
      this.t2.set(key, true);
    } else this.t1.set(key, true);
    this.c = Math.max(this.c, this.t1.size + this.t2.size);
    this.trim();
  }

  remove(key: number): void {
    if (this.t1.delete(key)) this.b1.set(key, true);
    else if (this.t2.delete(key)) this.b2.set(key, true);
    this.trim();
  }

  victim(evictable: (key: number) => boolean): number | undefined {
    const first = (m: Map<number, true>) => {
      for (const k of m.keys()) if (evictable(k)) return k;
      return undefined;
    };
    return this.t1.size > 0 && this.t1.size > this.p ? (first(this.t1) ?? first(this.t2)) : (first(this.t2) ?? first(this.t1));
  }

  /** |T1| + |B1| <= c and all four lists <= 2c: the ghosts' oldest go. */
  private trim(): void {
    const drop = (m: Map<number, true>, n: number) => {
      for (const k of m.keys()) {
        if (n-- <= 0) break;
        m.delete(k);
      }
    };
    drop(this.b1, this.t1.size + this.b1.size - this.c);
    drop(this.b2, this.t1.size + this.t2.size + this.b1.size + this.b2.size - 2 * this.c);
  }
}

export const POLICY_NAMES = ["lru", "slru", "lfu", "lrfu", "lfu-decay", "lfuda", "s3fifo", "arc", "markov"] as const;
/**
 * The engine's default (EngineConfig.expertPolicy), chosen on the real routing traces (npm run bench --
 * replay; README, Expert streaming; docs/cache-policy.md): in each layer, under per-layer quotas, the
 * Markov policy (LFU with a per-token decay of 0.9, corrected by the next token's routing predicted from
 * the current one). At 2x / 4x a token's experts it hit 55.6 / 73.2% on Qwen3-30B-A3B (LFU-decay under
 * the same quotas, the previous default: 53.9 / 72.3), 56.7 / 73.6% on gemma (55.3 / 72.5), 34.4 / 48.5%
 * on gpt-oss (34.2 / 48.1), 62.8% on Mixtral at 2x (62.3), at or above it at every budget of every trace.
 * On the skewed `realistic` synthetic routing plain LFU in one pool does better: that routing is
 * stationary, real routing is not.
 */
export const RECOMMENDED_POLICY = "markov:perLayer=1";
export type PolicyName = (typeof POLICY_NAMES)[number];

/** What a policy may need to know of the model. */
export interface PolicyContext {
  /** The cache touches one token makes (k x layers with experts). */
  touchesPerToken?: number;
  /** Experts per layer, 0 for a layer without experts (keys are layer x max + expert): needed by perLayer=1. */
  layerExperts?: readonly number[];
}

/** What the engine tells a policy of a model read through `reader`: k touches per layer with experts, and each layer's experts. */
export function readerPolicyContext(reader: Pick<ExpertReader, "layers" | "expertCount">, nLayer: number, k: number): PolicyContext {
  return { touchesPerToken: k * reader.layers.length, layerExperts: Array.from({ length: nLayer }, (_, l) => (reader.layers.includes(l) ? reader.expertCount(l) : 0)) };
}

/** Parameters every policy takes: perLayer=1 budgets the slots per layer (layer-budget.ts), floor its quotas' floor. */
const COMMON = ["perLayer", "floor"] as const;
/** Parameters each policy takes by name (policyByName's params, the CLI's name:key=value), besides COMMON's. */
const PARAMS: Record<PolicyName, readonly string[]> = {
  lru: [],
  slru: ["protected"],
  lfu: ["halveEvery", "agingFactor", "history"],
  lrfu: ["halfLife", "halfLifeFactor"],
  "lfu-decay": ["decay", "perToken"],
  lfuda: [],
  s3fifo: ["small", "promote"],
  arc: [],
  markov: ["decay", "prior", "perToken"],
};

/**
 * A fresh policy by name; params as numbers (history, perLayer: 0 or 1). lfu-decay's token is
 * `params.perToken` touches, else the context's, else 1 (every touch a token: a one-layer top-1 model).
 * perLayer=1 gives each layer with experts its own policy of this name under slot quotas (layer-budget.ts);
 * it needs the context's layerExperts, and each layer's policy counts a token as its own layer's touches.
 */
export function policyByName(name: string, params: Record<string, number> = {}, ctx: PolicyContext = {}): EvictionPolicy {
  if (!(POLICY_NAMES as readonly string[]).includes(name)) throw new UsageError("bad_option", `unknown eviction policy '${name}' (known: ${POLICY_NAMES.join(", ")})`);
  const n = name as PolicyName;
  const takes = [...PARAMS[n], ...COMMON];
  for (const k of Object.keys(params)) {
    if (!takes.includes(k)) throw new UsageError("bad_option", `policy ${n} has no parameter '${k}' (it takes ${takes.join(", ")})`);
  }
  const { perLayer, floor, ...own } = params;
  if (perLayer !== undefined && perLayer !== 0 && perLayer !== 1) throw new UsageError("bad_option", `perLayer must be 0 (one pool) or 1 (a quota per layer), got ${perLayer}`);
  if (floor !== undefined && perLayer !== 1) throw new UsageError("bad_option", "floor is the per-layer quotas' floor: it needs perLayer=1");
  const layerExperts = ctx.layerExperts;
  const moe = layerExperts ? Math.max(1, layerExperts.filter((e) => e > 0).length) : 1;
  const touchesPerToken = ctx.touchesPerToken ?? moe;
  const model = { stride: layerExperts ? Math.max(...layerExperts) : undefined, k: touchesPerToken / moe };
  if (perLayer !== 1) return ownPolicy(n, own, { ...model, touchesPerToken: ctx.touchesPerToken });
  if (!layerExperts) throw new UsageError("bad_option", "perLayer=1 needs the model's experts per layer (policy context)");
  return new PerLayerPolicy({ layerExperts, floor, touchesPerToken }, () => ownPolicy(n, own, { ...model, touchesPerToken: model.k }));
}

/** What ownPolicy needs of the model: touches a token makes in the policy's keys, keys per layer, and k. */
interface OwnContext {
  touchesPerToken?: number;
  stride?: number;
  k: number;
}

function ownPolicy(n: PolicyName, params: Record<string, number>, ctx: OwnContext): EvictionPolicy {
  switch (n) {
    case "lru":
      return new LruPolicy();
    case "slru":
      return new SlruPolicy(params.protected);
    case "lfu":
      return new LfuPolicy({ halveEvery: params.halveEvery, agingFactor: params.agingFactor, history: params.history === undefined ? undefined : params.history !== 0 });
    case "lrfu":
      return new LrfuPolicy({ halfLife: params.halfLife, halfLifeFactor: params.halfLifeFactor });
    case "lfu-decay":
      return new LfuDecayPolicy(params.decay, params.perToken ?? ctx.touchesPerToken);
    case "lfuda":
      return new LfudaPolicy();
    case "s3fifo":
      return new S3FifoPolicy({ small: params.small, promote: params.promote });
    case "arc":
      return new ArcPolicy();
    case "markov":
      if (ctx.stride === undefined) throw new UsageError("bad_option", "markov needs the model's experts per layer (policy context)");
      return new MarkovPolicy({ stride: ctx.stride, decay: params.decay, prior: params.prior, perToken: params.perToken ?? ctx.k });
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
  policyByName(name, params, { layerExperts: [1] }); // validate now (on a one-expert model), not at the first replay
  return { name, params };
}
