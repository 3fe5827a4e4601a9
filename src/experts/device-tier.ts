// The device tier: expert records in slots of a backend's own memory (a GPU's), above the host byte cache.
// A lookup that finds its expert in a device slot is a device hit; a miss takes the record from the host
// cache (a host hit, or a disk read there) and uploads it into a slot freed by the same eviction policy the
// host cache uses (another instance of it: each tier ranks its own keys). Experts of an unreleased acquire()
// are pinned in both tiers until their upload is recorded, and in this one until release(). A split tier (a
// host backend given) runs most misses on the host instead (HostSide, below).
import type { Backend, Weight, WeightDesc } from "../backends/backend.js";
import type { ExpertSource, ExpertWeights, HostExperts } from "./source.js";
import { ExpertBudgetError, type StreamingExperts } from "./streaming-source.js";
import type { EvictionPolicy } from "./eviction.js";
import { recordWeights } from "./record-weights.js";
import { SlotTable } from "./slot-table.js";

/** Fixed-size slots in device memory (backends/webgpu/expert-tier.ts). */
export interface DeviceSlots {
  readonly nSlots: number;
  readonly slotBytes: number;
  /** Put a record's bytes in `slot`, ordered after the ops recorded so far and before later ones; `bytes` may be reused on return. */
  write(slot: number, bytes: Uint8Array): void;
  /** A weight over bytes [offset, offset + its size) of the slot's record. */
  view(slot: number, desc: WeightDesc, offset: number): Weight;
  readonly uploadStats: { uploads: number; bytes: number; ms: number };
  free(): void;
}

export interface DeviceTierStats {
  /** Experts found in a device slot. */
  hits: number;
  /** Experts not on the device: each is one lookup in the host cache and one upload. */
  misses: number;
  evictions: number;
  /** Split tier (hostBackend given): lookups of experts that ran on the host instead of going up. */
  hostRuns: number;
  /** Split tier: experts admitted after running on the host, uploaded while the GPU worked (uploads, not lookups). */
  admits: number;
}

export interface DeviceTierOptions {
  /** One layer's top-k: the tier must hold at least that many slots. */
  minExperts?: number;
  /**
   * Run the experts the tier lacks on this host backend instead of uploading them (a split tier, as llama.cpp's
   * --n-cpu-moe): a missed expert goes up only while slots are free or when it has been used more often lately
   * than the expert it would evict (TinyLFU's admission), so the tier keeps the hot set and uploads stay rare.
   */
  hostBackend?: Backend;
  /**
   * Split tier: a miss is admitted over a victim only when looked up more than this many times as often lately
   * (an upload costs several CPU runs of the record: bench `tier` replays real routing). Default ADMIT_RATIO. An
   * admitted expert runs on the host that once and goes up in the background (admitQueued), on the device from
   * its next lookup.
   */
  admitRatio?: number;
}

/**
 * See DeviceTierOptions.admitRatio. Infinity: a missed expert goes up only while free slots last. On the H100 host
 * (session 17: a3b at a 25% tier, two alternating rounds) filling free slots only ran 14.18 / 15.57 tok/s against
 * 11.34 / 13.37 admitting at 8x when an admission went up before the layer's experts ran: an upload in the layer's
 * path (the victim's scan, the host record's repack undone) cost ~30 CPU runs of the record. Admissions now go up in
 * the background (admitQueued), not yet timed on a GPU; replayed over real routing (bench tier: Qwen3-30B-A3B at
 * 25%), 1x runs 75.0 experts a decode token on the CPU with 18.9 uploads against 148.8 with 9.8 for inf.
 */
export const ADMIT_RATIO = Infinity;

interface Entry {
  readonly key: number;
  readonly slot: number;
  pins: number;
  weights?: ExpertWeights;
  /** Settles when the record is in the slot; a failed one leaves the tier before it settles. */
  ready: Promise<void>;
}

export class DeviceTier implements ExpertSource {
  readonly stats: DeviceTierStats = { hits: 0, misses: 0, evictions: 0, hostRuns: 0, admits: 0 };
  readonly host?: HostExperts;
  private readonly table: SlotTable<Entry>;
  private readonly keyStride: number;
  private readonly totalExperts: number;
  private preloading = false;
  private readonly layers = new Map<number, readonly ExpertWeights[]>();

  constructor(readonly hostCache: StreamingExperts, readonly slots: DeviceSlots, private readonly policy: EvictionPolicy, opts: DeviceTierOptions = {}) {
    const minExperts = opts.minExperts ?? 1;
    this.table = new SlotTable(slots.nSlots, policy);
    const r = hostCache.reader;
    this.keyStride = Math.max(...r.layers.map((l) => r.expertCount(l)));
    this.totalExperts = r.layers.reduce((a, l) => a + r.expertCount(l), 0);
    if (opts.hostBackend) this.host = new HostSide(this, opts.hostBackend, (Math.max(...r.layers) + 1) * this.keyStride, opts.admitRatio ?? ADMIT_RATIO);
    if (slots.nSlots < minExperts) throw new ExpertBudgetError(minExperts * slots.slotBytes, slots.nSlots * slots.slotBytes, `the GPU tier holds ${slots.nSlots} slots and one layer's active experts need ${minExperts}`);
  }

  get capacity(): number {
    return this.slots.nSlots;
  }
  /** Every expert has a device slot: nothing is ever evicted or read again. */
  get resident(): boolean {
    return this.slots.nSlots >= this.totalExperts;
  }
  get prefetchDepth(): number {
    return this.table.entries.size < this.totalExperts ? (this.hostCache.prefetchDepth ?? 0) : 0;
  }

  /**
   * Every expert of the layer once all are resident (after preloadAll: none is ever evicted then). Device-routed
   * layers skip acquire(): each of their T·k lookups counts as a device hit here.
   */
  deviceLayer(layer: number): readonly ExpertWeights[] | undefined {
    if (!this.resident || this.preloading) return undefined;
    let all = this.layers.get(layer);
    if (!all) {
      const ws: ExpertWeights[] = [];
      for (let e = 0; e < this.hostCache.reader.expertCount(layer); e++) {
        const w = this.table.entries.get(this.keyOf(layer, e))?.weights;
        if (!w) return undefined;
        ws.push(w);
      }
      this.layers.set(layer, (all = ws));
    }
    return all;
  }
  /** `n` lookups a device-routed layer made (all hits: every expert is resident). */
  countDeviceRouted(n: number): void {
    this.stats.hits += n;
  }

  /** Upload every expert (the tier holds them all), through the host cache in groups it can hold. */
  async preloadAll(onProgress?: (done: number, total: number) => void): Promise<void> {
    const r = this.hostCache.reader;
    let done = 0;
    this.preloading = true;
    try {
      for (const layer of r.layers) {
        const ids = Array.from({ length: r.expertCount(layer) }, (_, e) => e);
        for (let at = 0; at < ids.length; at += this.capacity) {
          const g = ids.slice(at, at + this.capacity);
          await this.acquire(layer, g);
          this.release(layer, g);
          onProgress?.((done += g.length), this.totalExperts);
        }
      }
    } finally {
      this.preloading = false;
    }
  }

  prefetch(layer: number, ids: readonly number[], depth?: number): void {
    this.hostCache.prefetch(layer, ids.filter((e) => !this.table.entries.has(this.keyOf(layer, e))), depth);
  }

  async acquire(layer: number, ids: readonly number[]): Promise<ExpertWeights[]> {
    const n = this.hostCache.reader.expertCount(layer);
    for (const e of ids) if (!Number.isInteger(e) || e < 0 || e >= n) throw new RangeError(`expert ${e} out of range [0, ${n}) in layer ${layer}`);
    const distinct = [...new Set(ids)];
    const keys = distinct.map((e) => this.keyOf(layer, e));
    this.checkFits(layer, keys);
    if (!this.preloading) this.policy.begin?.(keys);
    // Pin all first (synchronously), so no slot this acquire needs is chosen as another's victim.
    const protect = new Set(keys);
    const mine: Entry[] = [];
    const missed: { e: number; en: Entry }[] = [];
    for (const [i, key] of keys.entries()) {
      let en = this.table.entries.get(key);
      if (en) {
        this.stats.hits++;
        this.policy.touch(key);
      } else {
        this.stats.misses++;
        const { slot, evicted } = this.table.take(key, protect); // checkFits ran first: an unpinned entry exists
        if (evicted) this.stats.evictions++;
        en = { key, slot, pins: 0, ready: Promise.resolve() };
        this.table.add(en);
        missed.push({ e: distinct[i], en });
      }
      this.table.pin(en);
      mine.push(en);
    }
    if (missed.length) {
      const up = this.upload(layer, missed);
      for (const m of missed) m.en.ready = up;
      up.catch(() => missed.forEach(({ en }) => this.table.drop(en)));
    }
    const settled = await Promise.allSettled(mine.map((en) => en.ready));
    const bad = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (bad) {
      for (const en of mine) this.table.unpin(en);
      throw bad.reason;
    }
    const byId = new Map(distinct.map((e, i) => [e, mine[i].weights!]));
    return ids.map((e) => byId.get(e)!);
  }

  release(layer: number, ids: readonly number[]): void {
    for (const e of new Set(ids)) {
      const en = this.table.entries.get(this.keyOf(layer, e));
      if (en) this.table.unpin(en);
    }
  }

  /** Experts pinned by acquires not yet released. */
  pinned(): number {
    return this.table.pinned();
  }

  free(): void {
    this.slots.free();
  }

  /**
   * Split tier: expert e of `layer` goes up into a slot (a free one, else the policy's victim's) once its record
   * is in hand, off any acquire: the entry joins the table only with its bytes written, so a lookup finds it
   * whole or not at all. Nothing when it is on the device already, every slot is pinned, or a host run holds its
   * record. An error (the record could not be read, the write refused) leaves it on the host: rejects with it.
   */
  async admit(layer: number, e: number): Promise<void> {
    const key = this.keyOf(layer, e);
    if (this.table.entries.has(key)) return;
    // In one tick with the host record's repack undone (withRecord): a host run cannot repack it mid-copy. Nothing
    // while a host run holds it.
    await this.hostCache.withRecord(layer, e, (record) => {
      const protect = new Set([key]);
      if (this.table.entries.has(key) || (this.freeSlots() === 0 && this.table.victim(protect, key) === undefined)) return;
      const { slot, evicted } = this.table.take(key, protect);
      if (evicted) this.stats.evictions++;
      const en: Entry = { key, slot, pins: 0, ready: Promise.resolve() };
      try {
        this.slots.write(slot, record);
      } catch (err) {
        this.table.drop(en); // not in the table yet: its slot goes back to the free list
        throw err;
      }
      en.weights = this.weightsOf(layer, e, slot);
      this.table.add(en);
      this.stats.admits++;
    });
  }

  /** Records of the missed experts from the host cache (in groups it can hold), each uploaded as it arrives. */
  private async upload(layer: number, missed: { e: number; en: Entry }[]): Promise<void> {
    const group = Math.max(1, this.hostCache.capacity);
    for (let at = 0; at < missed.length; at += group) {
      const part = missed.slice(at, at + group);
      const ids = part.map((m) => m.e);
      const recs = await this.hostCache.acquireRecords(layer, ids);
      try {
        part.forEach(({ e, en }, i) => {
          this.slots.write(en.slot, recs[i]);
          en.weights = this.weightsOf(layer, e, en.slot);
        });
      } finally {
        this.hostCache.release(layer, ids);
      }
    }
  }

  private weightsOf(layer: number, e: number, slot: number): ExpertWeights {
    return recordWeights(this.hostCache.reader.parts(layer), e, (desc, at) => this.slots.view(slot, desc, at));
  }

  /** Whether `key` has a device slot (uploaded, or being uploaded by an acquire). */
  onDevice(key: number): boolean {
    return this.table.entries.has(key);
  }
  /** Slots free or never used: misses take them without evicting. */
  freeSlots(): number {
    return this.slots.nSlots - this.table.entries.size;
  }
  /** The key a miss would evict now (unpinned, outside `protect`), without evicting it. */
  peekVictim(protect: ReadonlySet<number>, incoming: number): number | undefined {
    return this.table.victim(protect, incoming);
  }
  /** The key of expert `e` of `layer` in this tier's table and policy. */
  keyOf(layer: number, e: number): number {
    return layer * this.keyStride + e;
  }

  private checkFits(layer: number, keys: number[]): void {
    const elsewhere = this.table.pinned(new Set(keys));
    if (keys.length + elsewhere <= this.slots.nSlots) return;
    throw new ExpertBudgetError((keys.length + elsewhere) * this.slots.slotBytes, this.slots.nSlots * this.slots.slotBytes,
      `layer ${layer} needs ${keys.length} experts at once${elsewhere ? ` (${elsewhere} more are pinned)` : ""}, the GPU tier holds ${this.slots.nSlots} slots of ${this.slots.slotBytes} bytes`);
  }
}

/** Admissions held for admitQueued() at most (a token's layers' worth is far less; a reader that never drains stops here). */
const QUEUED_MAX = 256;

/**
 * The host side of a split tier: which routed experts go to the device, and host-backend weights over the host
 * cache's records for the rest. Admission counts each expert's lookups, halved every `8 x keys` lookups
 * (TinyLFU's aging), and admits a miss over a victim used less often; ties stay on the host, so two experts of
 * equal use do not take turns evicting each other.
 */
class HostSide implements HostExperts {
  private readonly freq: Float64Array;
  private lookups = 0;
  /** Admitted experts (layer, expert) that ran on the host and go up at the next admitQueued(). */
  private queued: [number, number][] = [];
  /** Free slots one batch (a prompt) may fill in a layer: an equal share of the tier. */
  private readonly batchShare: number;
  timing?: HostExperts["timing"];

  constructor(private readonly tier: DeviceTier, readonly backend: Backend, keys: number, private readonly admitRatio: number) {
    this.freq = new Float64Array(keys);
    this.batchShare = Math.max(1, Math.ceil(tier.capacity / Math.max(1, tier.hostCache.reader.layers.length)));
  }

  get capacity(): number {
    return this.tier.hostCache.capacity;
  }

  split(layer: number, ids: readonly number[]): { device: number[]; host: number[]; uploads: number } {
    const distinct = [...new Set(ids)];
    // A batch (a prompt) fills at most an equal share of the free slots in a layer, its most used experts first:
    // first come, a 64-token prompt's first layers took every slot (tiny model: 15 of 16 to layer 0, none to layers
    // 2-3) and, with nothing admitted later, kept them. A decode token's k a layer fill the slots evenly.
    const batch = distinct.length < ids.length;
    if (batch) {
      const uses = new Map<number, number>();
      for (const e of ids) uses.set(e, (uses.get(e) ?? 0) + 1);
      distinct.sort((a, b) => uses.get(b)! - uses.get(a)!); // stable: ties in order of first use
    }
    let fills = batch ? this.batchShare : Infinity;
    const keys = distinct.map((e) => this.tier.keyOf(layer, e));
    for (const k of keys) this.freq[k]++;
    if ((this.lookups += keys.length) >= 8 * this.freq.length) {
      for (let i = 0; i < this.freq.length; i++) this.freq[i] /= 2;
      this.lookups = 0;
    }
    const device: number[] = [], host: number[] = [];
    let free = this.tier.freeSlots(), uploads = 0;
    // The admission candidate: the most looked-up expert this split runs on the host (one a split). Whether it goes
    // up is asked at admitQueued(), while the GPU works: the policy's victim scan over the tier's slots cost ~50 µs
    // a layer on the H100 host (profile), too much for the layer's path.
    let cand = -1;
    for (const [i, e] of distinct.entries()) {
      const k = keys[i];
      if (this.tier.onDevice(k)) device.push(e);
      else if (free > 0 && fills > 0) (free--, fills--, uploads++, device.push(e));
      else {
        host.push(e);
        if (cand < 0 || this.freq[k] > this.freq[keys[cand]]) cand = i;
      }
    }
    if (cand >= 0 && this.admitRatio !== Infinity && this.queued.length < QUEUED_MAX) this.queued.push([layer, distinct[cand]]);
    this.tier.stats.hostRuns += host.length;
    return { device, host, uploads };
  }

  /**
   * The candidates split() queued since the last call, each admitted if looked up more than admitRatio times as
   * often lately as the policy's victim: uploaded while the GPU works (a read's wait), on the device from its next
   * lookup; it ran on the host meanwhile, where an upload in the layer's path cost ~30 CPU runs (session 17).
   * Settles when they are up; one that cannot go up stays on the host (the error is dropped: its lookups run there).
   */
  async admitQueued(): Promise<void> {
    const q = this.queued;
    if (!q.length) return;
    this.queued = [];
    const ups: Promise<void>[] = [];
    for (const [layer, e] of q) {
      const k = this.tier.keyOf(layer, e);
      if (this.tier.onDevice(k)) continue;
      const free = this.tier.freeSlots() > 0, victim = free ? undefined : this.tier.peekVictim(new Set([k]), k);
      if (free || (victim !== undefined && this.freq[k] > this.admitRatio * this.freq[victim])) ups.push(this.tier.admit(layer, e).catch(() => undefined));
    }
    await Promise.all(ups);
  }

  async acquire(layer: number, ids: readonly number[]): Promise<ExpertWeights[]> {
    const parts = this.tier.hostCache.reader.parts(layer);
    // Owned, so the native backend repacks the record for its faster kernels, once while it stays cached; if the
    // expert is later admitted to the device, acquireRecords() / withRecord() have the backend undo that before the upload.
    const owned = this.backend.disown !== undefined; // a backend may rewrite owned bytes only where it can undo that
    return this.tier.hostCache.acquireMade(layer, ids, (e, rec) => {
      const weights = recordWeights(parts, e, (desc, at, n) => this.backend.upload({ ...desc, bytes: rec.subarray(at, at + n), owned }));
      return { weights, undo: () => Object.values(weights).forEach((w) => this.backend.disown?.(w)) };
    });
  }

  release(layer: number, ids: readonly number[]): void {
    this.tier.hostCache.release(layer, ids);
  }
}
