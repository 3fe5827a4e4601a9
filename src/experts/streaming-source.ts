// Experts streamed from an ExpertReader into a byte-budgeted cache of fixed-size slots. A slot holds
// one record; experts of an unreleased acquire() are pinned and never evicted; the rest go by policy.
import type { Backend, Weight } from "../backends/backend.js";
import { UsageError } from "../util/errors.js";
import type { ExpertSource, ExpertWeights } from "./source.js";
import type { ExpertReader } from "./store.js";
import { Staging } from "./prefetch.js";

/** Which unpinned cached expert to evict; keys are opaque numbers. */
export interface EvictionPolicy {
  /** `key` entered the cache or was used again. */
  touch(key: number): void;
  /** `key` left the cache. */
  remove(key: number): void;
  /** The key to evict next among those `evictable` accepts (unpinned), or undefined. */
  victim(evictable: (key: number) => boolean): number | undefined;
}

/** Least recently used: a Map keeps insertion order, so re-inserting on use makes the first key the oldest. */
export class LruPolicy implements EvictionPolicy {
  private readonly order = new Map<number, true>();
  touch(key: number): void {
    this.order.delete(key);
    this.order.set(key, true);
  }
  remove(key: number): void {
    this.order.delete(key);
  }
  victim(evictable: (key: number) => boolean): number | undefined {
    for (const k of this.order.keys()) if (evictable(k)) return k;
    return undefined;
  }
}

/** The cache cannot hold what one acquire() needs at once. */
export class ExpertBudgetError extends UsageError {
  constructor(readonly needBytes: number, readonly budgetBytes: number, detail: string) {
    super("expert_budget", `expert cache budget of ${budgetBytes} bytes is too small: ${detail}; need at least ${needBytes} bytes`);
  }
}

export interface StreamingOptions {
  /** Bytes for expert slots; each slot holds the largest record of any layer. */
  budgetBytes: number;
  /** Experts one acquire() needs at least (the model's experts per token); checked here, not at the first token. */
  minExperts?: number;
  policy?: EvictionPolicy;
  /** Staging slots for speculative reads (0 or absent: no prefetch). */
  prefetchSlots?: number;
}

export interface StreamingStats {
  hits: number;
  /** Experts not in the cache (served by a demand read or by a staged prefetch). */
  misses: number;
  /** Misses served by a staged prefetch rather than a demand read. */
  prefetched: number;
  evictions: number;
  /** Bytes of records read on demand into slots. */
  bytesRead: number;
  /** Demand reads completed. */
  reads: number;
  /** Milliseconds acquire() spent waiting for reads (demand or staged) to land: the model's I/O wait. */
  ioWaitMs: number;
}

/** Latencies of recent demand reads (ms), a ring of the last `capacity`; `count` is the total ever recorded. */
export class LatencyLog {
  readonly samples: Float64Array;
  count = 0;
  constructor(readonly capacity = 1 << 16) {
    this.samples = new Float64Array(capacity);
  }
  add(ms: number): void {
    this.samples[this.count++ % this.capacity] = ms;
  }
  /** Percentiles (0..1) of the samples recorded since `since` (a previous `count`), as far as the ring holds them. */
  percentiles(since: number, qs: number[]): number[] {
    const n = Math.min(this.count - since, this.capacity);
    if (n <= 0) return qs.map(() => 0);
    const xs = Float64Array.from({ length: n }, (_, i) => this.samples[(this.count - n + i) % this.capacity]).sort();
    return qs.map((q) => xs[Math.min(n - 1, Math.floor(q * n))]);
  }
}

interface Entry {
  readonly key: number;
  readonly slot: number;
  pins: number;
  /** Settles when the record is read and uploaded; rejected reads leave the cache before it settles. */
  readonly ready: Promise<void>;
  weights?: ExpertWeights;
}

const NONE: ReadonlySet<number> = new Set();

/** Slots are carved from arenas of at most this size (one huge ArrayBuffer may exceed V8's limits). */
const ARENA_BYTES = 1 << 30;

export class StreamingExperts implements ExpertSource {
  readonly slotBytes: number;
  readonly nSlots: number;
  readonly stats: StreamingStats = { hits: 0, misses: 0, prefetched: 0, evictions: 0, bytesRead: 0, reads: 0, ioWaitMs: 0 };
  readonly readLatency = new LatencyLog();
  /** Speculative reads, when prefetch is on. */
  readonly staging: Staging | undefined;
  /** Each layer's experts at its last decode-sized acquire: the "previous token" prediction. */
  private readonly lastIds = new Map<number, number[]>();
  /** Slot buffers; a staged prefetch's buffer replaces a slot's, the old one goes to staging (no copy). */
  private readonly slotBufs: Uint8Array[] = [];
  /** Keys of the acquire being pinned: never evicted by it. */
  private protect: ReadonlySet<number> = NONE;
  private readonly policy: EvictionPolicy;
  private readonly entries = new Map<number, Entry>();
  private readonly freeSlots: number[] = [];
  private nextFresh = 0;
  private readonly arenas: Uint8Array[] = [];
  private readonly slotsPerArena: number;
  private readonly keyStride: number;

  constructor(private readonly reader: ExpertReader, private readonly backend: Backend, private readonly opts: StreamingOptions) {
    this.slotBytes = Math.max(...reader.layers.map((l) => reader.recordBytes(l)));
    this.keyStride = Math.max(...reader.layers.map((l) => reader.expertCount(l)));
    if (!(opts.budgetBytes >= 0) || !Number.isFinite(opts.budgetBytes)) throw new UsageError("bad_option", `expert cache budget must be a finite number of bytes, got ${opts.budgetBytes}`);
    this.nSlots = Math.floor(opts.budgetBytes / this.slotBytes);
    const min = Math.max(1, opts.minExperts ?? 1);
    if (this.nSlots < min) {
      throw new ExpertBudgetError(min * this.slotBytes, opts.budgetBytes, `it holds ${this.nSlots} expert slots of ${this.slotBytes} bytes, and one layer's active experts need ${min}`);
    }
    this.slotsPerArena = Math.max(1, Math.floor(ARENA_BYTES / this.slotBytes));
    this.policy = opts.policy ?? new LruPolicy();
    this.staging = opts.prefetchSlots ? new Staging(reader, { slots: opts.prefetchSlots, slotBytes: this.slotBytes }) : undefined;
  }

  /**
   * Hint that `layer` will soon want `predicted` (router lookahead); the previous token's experts for the
   * layer are added. Only experts not cached are read, into staging slots.
   */
  prefetch(layer: number, predicted: readonly number[]): void {
    const st = this.staging;
    if (!st) return;
    const want = (e: number) => !this.entries.has(layer * this.keyStride + e);
    for (const e of predicted) if (want(e)) st.issue(layer, e, "lookahead");
    for (const e of this.lastIds.get(layer) ?? []) if (want(e)) st.issue(layer, e, "prev");
  }

  /** Drop all speculative reads and wait until none is in flight (reset, state load, shutdown). */
  async cancelPrefetch(): Promise<void> {
    await this.staging?.cancel();
  }

  get capacity(): number {
    return this.nSlots;
  }

  /** Read every expert of every layer into the cache (resident mode); needs slots for all of them. */
  async preloadAll(onProgress?: (done: number, total: number) => void): Promise<void> {
    const total = this.reader.layers.reduce((a, l) => a + this.reader.expertCount(l), 0);
    let done = 0;
    for (const layer of this.reader.layers) {
      const ids = Array.from({ length: this.reader.expertCount(layer) }, (_, e) => e);
      await this.acquire(layer, ids);
      this.release(layer, ids);
      onProgress?.((done += ids.length), total);
    }
  }

  async acquire(layer: number, ids: readonly number[]): Promise<ExpertWeights[]> {
    const n = this.reader.expertCount(layer); // refuses a layer without experts
    for (const e of ids) if (!Number.isInteger(e) || e < 0 || e >= n) throw new RangeError(`expert ${e} out of range [0, ${n}) in layer ${layer}`);
    const distinct = [...new Set(ids)];
    const keys = distinct.map((e) => layer * this.keyStride + e);
    this.checkFits(layer, keys);
    // Pin everything synchronously first, so reads started here cannot evict each other; while pinning,
    // none of this acquire's experts may be chosen as a victim (it would only be read again).
    this.protect = new Set(keys);
    let mine: Entry[];
    try {
      mine = keys.map((k, i) => this.pin(k, layer, distinct[i]));
    } finally {
      this.protect = NONE;
    }
    this.staging?.settleLayer(layer);
    if (distinct.length <= (this.opts.minExperts ?? 1)) this.lastIds.set(layer, distinct);
    const t0 = performance.now();
    const settled = await Promise.allSettled(mine.map((en) => en.ready));
    this.stats.ioWaitMs += performance.now() - t0;
    const bad = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (bad) {
      for (const en of mine) this.unpin(en);
      throw bad.reason;
    }
    const byId = new Map(distinct.map((e, i) => [e, mine[i].weights!]));
    return ids.map((e) => byId.get(e)!);
  }

  release(layer: number, ids: readonly number[]): void {
    for (const e of new Set(ids)) {
      const en = this.entries.get(layer * this.keyStride + e);
      if (en) this.unpin(en);
    }
  }

  /** Experts of `layer` whose records are fully in the cache. */
  cached(layer: number): number[] {
    const out: number[] = [];
    for (const en of this.entries.values()) if (en.weights && Math.floor(en.key / this.keyStride) === layer) out.push(en.key % this.keyStride);
    return out.sort((a, b) => a - b);
  }

  /** Slots held by acquires not yet released. */
  pinned(): number {
    let n = 0;
    for (const en of this.entries.values()) if (en.pins > 0) n++;
    return n;
  }

  private checkFits(layer: number, keys: number[]): void {
    const want = new Set(keys);
    let pinnedElsewhere = 0;
    for (const en of this.entries.values()) if (en.pins > 0 && !want.has(en.key)) pinnedElsewhere++;
    if (keys.length <= this.nSlots - pinnedElsewhere) return;
    const held = pinnedElsewhere > 0 ? ` (${pinnedElsewhere} more are pinned by unreleased acquires)` : "";
    throw new ExpertBudgetError((keys.length + pinnedElsewhere) * this.slotBytes, this.opts.budgetBytes,
      `layer ${layer} needs ${keys.length} experts at once${held}, the cache holds ${this.nSlots} slots of ${this.slotBytes} bytes`);
  }

  private pin(key: number, layer: number, e: number): Entry {
    const hit = this.entries.get(key);
    if (hit) {
      hit.pins++;
      this.stats.hits++;
      this.policy.touch(key);
      return hit;
    }
    this.stats.misses++;
    const slot = this.takeSlot();
    const staged = this.staging?.take(layer, e);
    let bytes: Uint8Array;
    let read: Promise<void>;
    if (staged) {
      this.stats.prefetched++;
      this.staging!.give(this.slot(slot));
      bytes = this.slotBufs[slot] = staged.buf;
      read = staged.ready;
    } else {
      bytes = this.slot(slot);
      const t0 = performance.now();
      read = this.reader.readExpert(layer, e, bytes).then(() => {
        this.stats.bytesRead += this.reader.recordBytes(layer);
        this.stats.reads++;
        this.readLatency.add(performance.now() - t0);
      });
    }
    const entry: Entry = { key, slot, pins: 1, ready: read.then(() => void (entry.weights = this.weightsOf(layer, e, bytes))) };
    // A failed read leaves no half-filled slot behind: the entry goes, its slot is free again.
    entry.ready.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      this.policy.remove(key);
      this.freeSlots.push(slot);
    });
    this.entries.set(key, entry);
    this.policy.touch(key);
    return entry;
  }

  private weightsOf(layer: number, e: number, bytes: Uint8Array): ExpertWeights {
    const w: Partial<Record<string, Weight>> = {};
    for (const p of this.reader.parts(layer)) {
      // With CPU backends upload keeps a view of the slot: valid until the slot is reused, which pins prevent.
      w[p.name] = this.backend.upload({ name: `${p.tensor}[${e}]`, type: p.type, shape: p.shape, bytes: bytes.subarray(p.offset, p.offset + p.byteLength) });
    }
    return { gate: w.gate!, up: w.up!, down: w.down! };
  }

  private unpin(en: Entry): void {
    if (en.pins > 0) en.pins--;
  }

  private takeSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.nextFresh < this.nSlots) return this.nextFresh++;
    const victim = this.policy.victim((k) => (this.entries.get(k)?.pins ?? 1) === 0 && !this.protect.has(k));
    // checkFits ran first, so an unpinned entry exists.
    if (victim === undefined) throw new Error("internal: no evictable expert slot");
    const en = this.entries.get(victim)!;
    this.entries.delete(victim);
    this.policy.remove(victim);
    this.stats.evictions++;
    return en.slot;
  }

  private slot(i: number): Uint8Array {
    const have = this.slotBufs[i];
    if (have) return have;
    const a = Math.floor(i / this.slotsPerArena);
    // Arenas are allocated on first use, so a large budget costs nothing until it fills.
    this.arenas[a] ??= new Uint8Array(Math.min(this.slotsPerArena, this.nSlots - a * this.slotsPerArena) * this.slotBytes);
    const at = (i % this.slotsPerArena) * this.slotBytes; // a multiple of 4096: records are
    return (this.slotBufs[i] = this.arenas[a].subarray(at, at + this.slotBytes));
  }
}
