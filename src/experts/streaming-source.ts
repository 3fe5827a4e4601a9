// Experts streamed from an ExpertReader into a byte-budgeted cache of fixed-size slots. A slot holds
// one record; experts of an unreleased acquire() are pinned and never evicted; the rest go by policy.
import { allocHost, type Backend, type WeightArena } from "../backends/backend.js";
import { UsageError } from "../util/errors.js";
import type { ExpertSource, ExpertWeights } from "./source.js";
import type { ExpertReader } from "./store.js";
import { Staging } from "./prefetch.js";
import { DEMAND, FILL, IoQueue, DEFAULT_IO_DEPTH, type IoTicket } from "./io-queue.js";
import { SlotTable } from "./slot-table.js";
import { LruPolicy, type EvictionPolicy } from "./eviction.js";
import { LatencyLog } from "./latency-log.js";
import { recordWeights, type MadeWeights } from "./record-weights.js";

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
  /** Staging slots per lookahead layer for speculative reads (0 or absent: no prefetch). */
  prefetchSlots?: number;
  /** How many layers ahead the model predicts and prefetches (router lookahead + previous token); default 2. */
  prefetchDepth?: number;
  /**
   * Share of the router's ranked predictions read from two or more layers ahead (default 0.5: the top half,
   * measured at 86-99% precision on a3b; the lower ranks, 33-75%, wait for the one-layer-ahead prediction).
   */
  deepShare?: number;
  /** Most expert reads in flight; default: the libuv pool size (UV_THREADPOOL_SIZE, 4 unless set). */
  ioDepth?: number;
  /** When every expert fits the budget, read the ones not yet cached in the background at idle I/O (default on). */
  fill?: boolean;
  /**
   * Host bytes only: a device tier above this cache (device-tier.ts) binds the records into slots of its own, so
   * there is no binding tier here and acquireRecords() hands out the records' bytes.
   */
  hostOnly?: boolean;
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
  /** Experts read by the background fill, and their bytes. */
  filled: number;
  fillBytes: number;
}

interface Entry {
  readonly key: number;
  readonly slot: number;
  pins: number;
  /** Settles when the record is read and uploaded; rejected reads leave the cache before it settles. */
  readonly ready: Promise<void>;
  weights?: ExpertWeights;
  /** The buffer the record lands in (a slot's, or a staged read's that replaced it). */
  bytes?: Uint8Array;
  /** The read filling this slot while it is queued or running (a hit promotes it to a demand read). */
  ticket?: IoTicket;
  /** hostOnly: weights a host backend made over the record (acquireMade), perhaps rewriting it, and their undoing. */
  made?: MadeWeights;
}

const NONE: ReadonlySet<number> = new Set();

/** Slots are carved from arenas of at most this size (one huge ArrayBuffer may exceed V8's limits). */
const ARENA_BYTES = 1 << 30;

export class StreamingExperts implements ExpertSource {
  readonly slotBytes: number;
  readonly nSlots: number;
  readonly stats: StreamingStats = { hits: 0, misses: 0, prefetched: 0, evictions: 0, bytesRead: 0, reads: 0, ioWaitMs: 0, filled: 0, fillBytes: 0 };
  readonly readLatency = new LatencyLog();
  /** Speculative reads, when prefetch is on. */
  readonly staging: Staging | undefined;
  /** Every read (demand, prefetch, fill) goes through this queue. */
  readonly io: IoQueue;
  /** Each layer's experts at its last decode-sized acquire: the "previous token" prediction. */
  private readonly lastIds = new Map<number, number[]>();
  /** Slot buffers; a staged prefetch's buffer replaces a slot's, the old one goes to staging (no copy). */
  private readonly slotBufs: Uint8Array[] = [];
  /** Keys of the acquire being pinned: never evicted by it. */
  private protect: ReadonlySet<number> = NONE;
  private readonly policy: EvictionPolicy;
  private readonly table: SlotTable<Entry>;
  private readonly entries: Map<number, Entry>;
  /** Slot memory, each arena aligned as the reader asks (direct I/O); allocated by prepare(). */
  private readonly arenas: Uint8Array[] = [];
  /**
   * The binding tier: where the backend keeps weights in memory of its own (deviceWeights: wasm, a GPU), one
   * backend slot per cache slot, written when a record lands (the budget counts it; see decideExpertIO). On
   * host backends it is empty: weights are zero-copy views of the cache slots.
   */
  private readonly bound: WeightArena[] = [];
  private readonly slotsPerArena: number;
  private readonly keyStride: number;
  private prepared: Promise<void> | undefined;
  private ready = false;
  private depth: number;
  private preloading = false;
  private filling: Promise<void> | undefined;
  private fillStop = false;
  private readonly fillEntries = new Set<Entry>();
  private readonly totalExperts: number;

  constructor(readonly reader: ExpertReader, private readonly backend: Backend, private readonly opts: StreamingOptions) {
    this.slotBytes = Math.max(...reader.layers.map((l) => reader.recordBytes(l)));
    this.keyStride = Math.max(...reader.layers.map((l) => reader.expertCount(l)));
    if (!(opts.budgetBytes >= 0) || !Number.isFinite(opts.budgetBytes)) throw new UsageError("bad_option", `expert cache budget must be a finite number of bytes, got ${opts.budgetBytes}`);
    this.nSlots = Math.floor(opts.budgetBytes / this.slotBytes);
    const min = Math.max(1, opts.minExperts ?? 1);
    if (this.nSlots < min) {
      throw new ExpertBudgetError(min * this.slotBytes, opts.budgetBytes, `it holds ${this.nSlots} expert slots of ${this.slotBytes} bytes, and one layer's active experts need ${min}`);
    }
    this.slotsPerArena = Math.max(1, Math.floor(ARENA_BYTES / this.slotBytes));
    this.totalExperts = reader.layers.reduce((a, l) => a + reader.expertCount(l), 0);
    this.policy = opts.policy ?? new LruPolicy();
    this.table = new SlotTable(this.nSlots, this.policy);
    this.entries = this.table.entries;
    this.io = new IoQueue(reader, { depth: opts.ioDepth ?? DEFAULT_IO_DEPTH });
    this.depth = Math.max(1, Math.floor(opts.prefetchDepth ?? 2));
    // Buffers come from prepare(), aligned like the cache slots they swap with.
    this.staging = opts.prefetchSlots ? new Staging(this.io, { slots: 0, slotBytes: this.slotBytes, buffers: [] }) : undefined;
  }

  /** Layers ahead the model should predict for prefetch() (0: no prefetch, or every expert is cached). */
  get prefetchDepth(): number {
    return this.staging && this.entries.size < this.totalExperts ? this.depth : 0;
  }

  /** Change the prefetch depth (benches, tuning); staging grows to prefetchSlots per layer of depth. */
  async setPrefetchDepth(depth: number): Promise<void> {
    this.depth = Math.max(1, Math.floor(depth));
    if (this.ready) await this.growStaging();
  }

  /**
   * Allocate slot and staging memory, aligned for the reader's direct I/O (virtual memory: pages are
   * committed as reads land). acquire() does this on first use; call it early to keep it out of a prompt.
   */
  prepare(): Promise<void> {
    return (this.prepared ??= (async () => {
      for (let a = 0; a * this.slotsPerArena < this.nSlots; a++) {
        const slots = Math.min(this.slotsPerArena, this.nSlots - a * this.slotsPerArena);
        this.arenas.push(await this.alignedArena(slots));
        if (this.backend.deviceWeights && !this.opts.hostOnly) this.bound.push(this.backend.allocWeights(slots * this.slotBytes));
      }
      await this.growStaging();
      this.ready = true;
    })());
  }

  private async alignedArena(slots: number): Promise<Uint8Array> {
    const bytes = slots * this.slotBytes;
    const raw = allocHost(this.backend, bytes + 4096);
    const at = (await this.reader.alignOffset?.(raw)) ?? 0;
    return raw.subarray(at, at + bytes);
  }

  private async growStaging(): Promise<void> {
    const st = this.staging;
    if (!st) return;
    const want = (this.opts.prefetchSlots ?? 0) * this.depth - st.slots;
    if (want <= 0) return;
    const arena = await this.alignedArena(want);
    st.addBuffers(Array.from({ length: want }, (_, i) => arena.subarray(i * this.slotBytes, (i + 1) * this.slotBytes)));
  }

  /**
   * Hint that `layer` will soon want `predicted` (router lookahead from `depth` layers before it); the
   * previous token's experts for the layer are added. Only experts not cached are read, into staging slots.
   */
  prefetch(layer: number, predicted: readonly number[], depth = 1): void {
    const st = this.staging;
    if (!st || !this.ready) return;
    const want = (e: number) => !this.entries.has(layer * this.keyStride + e);
    const n = depth === 1 ? predicted.length : Math.ceil(predicted.length * (this.opts.deepShare ?? 0.5));
    predicted.forEach((e, rank) => rank < n && want(e) && st.issue(layer, e, "lookahead", depth, rank));
    for (const e of this.lastIds.get(layer) ?? []) if (want(e)) st.issue(layer, e, "prev", depth);
  }

  /** Drop all speculative reads and the background fill, and wait until none is in flight (reset, state load, shutdown). */
  async cancelPrefetch(): Promise<void> {
    this.fillStop = true;
    for (const en of this.fillEntries) if (en.pins === 0) en.ticket?.cancel();
    await Promise.all([this.staging?.cancel(), this.filling]);
    this.filling = undefined;
    this.fillStop = false;
  }

  /** Resolves when the background fill has read every expert (or stopped); at once when none runs. */
  async whenFilled(): Promise<void> {
    await this.filling;
  }

  /** Every expert fits: read those not cached at fill priority (the queue runs demand reads first), into free slots (never evicting). */
  private startFill(): void {
    if (this.filling || this.opts.fill === false || this.preloading || this.nSlots < this.totalExperts) return;
    this.filling = (async () => {
      const inFlight = new Set<Promise<unknown>>();
      for (const layer of this.reader.layers) {
        for (let e = 0; e < this.reader.expertCount(layer); e++) {
          while (inFlight.size >= this.io.depth && !this.fillStop) await Promise.race(inFlight);
          const key = layer * this.keyStride + e;
          if (this.fillStop) break;
          if (this.entries.has(key)) continue;
          const en = this.insert(key, layer, e, FILL, 0);
          this.fillEntries.add(en);
          const p = en.ready.then(
            () => void ((this.stats.filled++), (this.stats.fillBytes += this.reader.recordBytes(layer))),
            () => undefined,
          ).finally(() => {
            inFlight.delete(p);
            this.fillEntries.delete(en);
          });
          inFlight.add(p);
        }
      }
      await Promise.all(inFlight);
    })();
  }

  get capacity(): number {
    return this.nSlots;
  }

  /** Read every expert of every layer into the cache (resident mode); needs slots for all of them. */
  async preloadAll(onProgress?: (done: number, total: number) => void): Promise<void> {
    const total = this.reader.layers.reduce((a, l) => a + this.reader.expertCount(l), 0);
    let done = 0;
    this.preloading = true;
    try {
      for (const layer of this.reader.layers) {
        const ids = Array.from({ length: this.reader.expertCount(layer) }, (_, e) => e);
        await this.acquire(layer, ids);
        this.release(layer, ids);
        onProgress?.((done += ids.length), total);
      }
    } finally {
      this.preloading = false;
    }
  }

  async acquire(layer: number, ids: readonly number[]): Promise<ExpertWeights[]> {
    const byId = await this.acquireEntries(layer, ids);
    return ids.map((e) => byId.get(e)!.weights!);
  }

  /**
   * Records of `ids` in `layer` (their first recordBytes bytes, as read: weights made over one are undone first),
   * pinned as acquire() pins them until release().
   */
  async acquireRecords(layer: number, ids: readonly number[]): Promise<Uint8Array[]> {
    const byId = await this.acquireEntries(layer, ids);
    const n = this.reader.recordBytes(layer);
    return ids.map((e) => {
      const en = byId.get(e)!;
      if (en.made) (en.made.undo(), (en.made = undefined));
      return en.bytes!.subarray(0, n);
    });
  }

  /**
   * The record of expert e of `layer`, as read, handed to `use` in the same tick as any weights made over it are
   * undone (no acquireMade can repack it in between), then released: `use`'s result, or undefined (use not
   * called) while another acquire holds the record (its made weights may be in use). A split tier's background
   * admission copies it up this way (the forward waits for it before its next acquire: its pin never holds a slot
   * a forward needs).
   */
  async withRecord<T>(layer: number, e: number, use: (record: Uint8Array) => T): Promise<T | undefined> {
    const en = (await this.acquireEntries(layer, [e])).get(e)!;
    try {
      if (en.pins > 1) return undefined;
      if (en.made) (en.made.undo(), (en.made = undefined));
      return use(en.bytes!.subarray(0, this.reader.recordBytes(layer)));
    } finally {
      this.release(layer, [e]);
    }
  }

  /**
   * hostOnly: weights of `ids` in `layer` that `make` builds over each record once while it stays cached (a host
   * backend may repack the bytes in place: they are the entry's alone), pinned as acquire() pins them.
   */
  async acquireMade(layer: number, ids: readonly number[], make: (e: number, record: Uint8Array) => MadeWeights): Promise<ExpertWeights[]> {
    const byId = await this.acquireEntries(layer, ids);
    const n = this.reader.recordBytes(layer);
    return ids.map((e) => {
      const en = byId.get(e)!;
      return (en.made ??= make(e, en.bytes!.subarray(0, n))).weights;
    });
  }

  private async acquireEntries(layer: number, ids: readonly number[]): Promise<Map<number, Entry>> {
    const n = this.reader.expertCount(layer); // refuses a layer without experts
    for (const e of ids) if (!Number.isInteger(e) || e < 0 || e >= n) throw new RangeError(`expert ${e} out of range [0, ${n}) in layer ${layer}`);
    const distinct = [...new Set(ids)];
    const keys = distinct.map((e) => layer * this.keyStride + e);
    this.checkFits(layer, keys);
    if (!this.ready) await this.prepare();
    this.startFill();
    if (!this.preloading) this.policy.begin?.(keys); // loading every expert is no routing
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
    const result = () => new Map(distinct.map((e, i) => [e, mine[i]]));
    // Every one already in memory (resident, or a warm cache): no wait to settle or account for.
    if (mine.every((en) => en.weights)) return result();
    const t0 = performance.now();
    this.io.beginWait();
    const settled = await Promise.allSettled(mine.map((en) => en.ready));
    this.io.endWait();
    this.stats.ioWaitMs += performance.now() - t0;
    const bad = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (bad) {
      for (const en of mine) this.unpin(en);
      throw bad.reason;
    }
    return result();
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
    return this.table.pinned();
  }

  private checkFits(layer: number, keys: number[]): void {
    const pinnedElsewhere = this.table.pinned(new Set(keys));
    if (keys.length <= this.nSlots - pinnedElsewhere) return;
    const held = pinnedElsewhere > 0 ? ` (${pinnedElsewhere} more are pinned by unreleased acquires)` : "";
    throw new ExpertBudgetError((keys.length + pinnedElsewhere) * this.slotBytes, this.opts.budgetBytes,
      `layer ${layer} needs ${keys.length} experts at once${held}, the cache holds ${this.nSlots} slots of ${this.slotBytes} bytes`);
  }

  private pin(key: number, layer: number, e: number): Entry {
    const hit = this.entries.get(key);
    if (hit) {
      this.table.pin(hit);
      this.stats.hits++;
      this.policy.touch(key);
      hit.ticket?.promote(DEMAND); // a background fill still queued: the forward waits on it now
      return hit;
    }
    this.stats.misses++;
    return this.insert(key, layer, e, DEMAND, 1);
  }

  /** A new entry for expert e in a free (or evicted) slot, read from staging or the disk at `prio`. */
  private insert(key: number, layer: number, e: number, prio: number, pins: number): Entry {
    const slot = this.takeSlot(key);
    // A staged prediction becomes the entry (no second read); the fill adopts one without counting it.
    const staged = this.staging?.take(layer, e, prio, prio === DEMAND);
    let bytes: Uint8Array;
    let read: Promise<void>;
    let ticket: IoTicket | undefined;
    if (staged) {
      if (prio === DEMAND) this.stats.prefetched++;
      this.staging!.give(this.slot(slot));
      bytes = this.slotBufs[slot] = staged.buf;
      read = staged.ready.then(() => this.io.check(layer, e, staged.buf)); // staged reads skip the integrity check
    } else {
      bytes = this.slot(slot);
      const t0 = performance.now();
      ticket = this.io.read(layer, e, bytes, prio);
      read = prio !== DEMAND ? ticket.done : ticket.done.then(() => {
        this.stats.bytesRead += this.reader.recordBytes(layer);
        this.stats.reads++;
        this.readLatency.add(performance.now() - t0);
      });
    }
    const entry: Entry = { key, slot, pins, ticket, bytes, ready: read.then(() => void ((entry.weights = this.weightsOf(layer, e, bytes, slot)), (entry.ticket = undefined))) };
    // A failed read leaves no half-filled slot behind: the entry goes, its slot is free again.
    entry.ready.catch(() => {
      this.table.drop(entry);
    });
    this.table.add(entry);
    return entry;
  }

  private weightsOf(layer: number, e: number, bytes: Uint8Array, slot: number): ExpertWeights {
    if (this.opts.hostOnly) return {}; // the device tier binds the bytes
    const arena = this.bound[Math.floor(slot / this.slotsPerArena)];
    const base = (slot % this.slotsPerArena) * this.slotBytes;
    if (arena) arena.write(base, bytes.subarray(0, this.reader.recordBytes(layer))); // the binding tier's copy
    // A fused part (gate_up) is read as one and handed out as its parts, each a view of its rows.
    // Host backends: a view of the slot, valid until the slot is reused, which pins prevent. The slot's bytes are
    // this entry's alone (a reused slot is read again), so a backend may rewrite them (repack).
    return recordWeights(this.reader.parts(layer), e, (desc, at, n) => (arena ? arena.view(desc, base + at) : this.backend.upload({ ...desc, bytes: bytes.subarray(at, at + n), owned: true })));
  }

  /** Release the binding tier's backend memory (the model is closed). */
  free(): void {
    for (const a of this.bound) a.free();
    this.bound.length = 0;
  }

  private unpin(en: Entry): void {
    this.table.unpin(en);
  }

  private takeSlot(incoming: number): number {
    const { slot, evicted } = this.table.take(incoming, this.protect); // checkFits ran first: an unpinned entry exists
    if (evicted) this.stats.evictions++;
    return slot;
  }

  private slot(i: number): Uint8Array {
    const have = this.slotBufs[i];
    if (have) return have;
    const a = Math.floor(i / this.slotsPerArena);
    const at = (i % this.slotsPerArena) * this.slotBytes; // a multiple of 4096: records are
    return (this.slotBufs[i] = this.arenas[a].subarray(at, at + this.slotBytes));
  }
}
