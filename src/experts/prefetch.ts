// Speculative reads into staging slots, never straight into the cache: a prediction only costs a slot of
// staging memory until the real routing arrives, when predictions are matched as a set (any staged
// expert the layer asks for is taken, whatever order it was predicted in) and the rest count as wasted.
// Sources: the previous token's experts for the same layer, and the router lookahead the model supplies,
// each at a depth (how many layers ahead of the forward it was issued). Reads go through the IoQueue at
// their depth's priority, so demand reads and nearer layers go first, and a prediction whose layer was
// served before its read started is dropped unread. Each (source, depth) backs off on its own when its
// measured precision cannot repay the bytes it reads.
import { IoQueue, type IoTicket } from "./io-queue.js";
import type { ExpertReader } from "./store.js";

export type PrefetchSource = "prev" | "lookahead";

export interface PrefetchStats {
  issued: number;
  used: number;
  wasted: number;
  /** Of the wasted, dropped before their read started (no bytes read). */
  cancelled: number;
  bytesRead: number;
}

interface Staged {
  layer: number;
  expert: number;
  source: PrefetchSource;
  depth: number;
  /** Position in the router's ranking (lookahead), -1 otherwise. */
  rank: number;
  buf: Uint8Array;
  ticket: IoTicket;
  ready: Promise<void>;
  /** Set once the read settled (the buffer may be reused only then). */
  settled: boolean;
}

export interface StagingOptions {
  slots: number;
  slotBytes: number;
  /** Buffers to use instead of allocating `slots` of `slotBytes` (e.g. aligned for direct I/O). */
  buffers?: Uint8Array[];
  /** Below this precision (used / issued over the last `window` prefetches) a source pauses. */
  minPrecision?: number;
  window?: number;
  /** Acquires a paused source sits out before it is tried again. */
  pause?: number;
  /** Reads in flight when the staging owns its queue (a reader was passed, not an IoQueue). */
  ioDepth?: number;
}

class SourceGate {
  issued = 0;
  used = 0;
  pausedFor = 0;
  constructor(private readonly o: Required<Pick<StagingOptions, "minPrecision" | "window" | "pause">>) {}
  get open(): boolean {
    return this.pausedFor === 0;
  }
  tick(): void {
    if (this.pausedFor > 0) this.pausedFor--;
  }
  /** Called when a prediction of this source is resolved (used or wasted). */
  resolve(used: boolean): void {
    this.issued++;
    if (used) this.used++;
    if (this.issued >= this.o.window) {
      if (this.used / this.issued < this.o.minPrecision) this.pausedFor = this.o.pause;
      this.issued = this.used = 0;
    }
  }
}

const emptyStats = (): PrefetchStats => ({ issued: 0, used: 0, wasted: 0, cancelled: 0, bytesRead: 0 });

export class Staging {
  /** Totals per source, over all depths. */
  readonly stats: Record<PrefetchSource, PrefetchStats> = { prev: emptyStats(), lookahead: emptyStats() };
  /** Per source and depth (index = depth; 0 unused). */
  readonly byDepth: Record<PrefetchSource, PrefetchStats[]> = { prev: [], lookahead: [] };
  /** Lookahead predictions issued and used by depth, then by rank in the router's top-k. */
  readonly byRank: { issued: number[]; used: number[] }[] = [];
  readonly io: IoQueue;
  private readonly free: Uint8Array[] = [];
  private readonly staged = new Map<string, Staged>();
  private readonly gates = new Map<string, SourceGate>();
  private readonly gateOpts: Required<Pick<StagingOptions, "minPrecision" | "window" | "pause">>;
  private readonly pending = new Set<Promise<void>>();
  private nBuffers = 0;

  /** `io`: the engine's shared read queue, or a reader (the staging then queues its own reads). */
  constructor(io: IoQueue | ExpertReader, opts: StagingOptions) {
    this.io = io instanceof IoQueue ? io : new IoQueue(io, { depth: opts.ioDepth ?? 64, demandReserve: 0 });
    this.addBuffers(opts.buffers ?? Array.from({ length: opts.slots }, () => new Uint8Array(opts.slotBytes)));
    this.gateOpts = { minPrecision: opts.minPrecision ?? 0.15, window: opts.window ?? 64, pause: opts.pause ?? 512 };
  }

  /** More staging slots (deeper prefetch). */
  addBuffers(bufs: Uint8Array[]): void {
    this.free.push(...bufs);
    this.nBuffers += bufs.length;
  }

  get slots(): number {
    return this.nBuffers;
  }

  isStaged(layer: number, e: number): boolean {
    return this.staged.has(`${layer}:${e}`);
  }

  private gate(source: PrefetchSource, depth: number): SourceGate {
    const k = `${source}@${depth}`;
    let g = this.gates.get(k);
    if (!g) this.gates.set(k, (g = new SourceGate(this.gateOpts)));
    return g;
  }

  private depthStats(source: PrefetchSource, depth: number): PrefetchStats {
    const a = this.byDepth[source];
    while (a.length <= depth) a.push(emptyStats());
    return a[depth];
  }

  /** Start a speculative read of expert e of layer, `depth` layers ahead, if its gate is open and a slot is free. */
  issue(layer: number, e: number, source: PrefetchSource, depth = 1, rank = -1): void {
    const key = `${layer}:${e}`;
    if (this.staged.has(key) || !this.gate(source, depth).open) return;
    const buf = this.free.pop();
    if (!buf) return;
    const bytes = this.io.recordBytes(layer);
    // Unchecked: most predictions are never used; insert() checks the ones taken (no cycles on wasted reads).
    const ticket = this.io.read(layer, e, buf, depth, false);
    const st: Staged = { layer, expert: e, source, depth, rank, buf, ticket, settled: false, ready: ticket.done };
    if (rank >= 0) ((this.byRank[depth] ??= { issued: [], used: [] }).issued[rank] ??= 0), this.byRank[depth].issued[rank]++;
    void st.ready.then(() => void (st.settled = true), () => void (st.settled = true));
    // A failed speculative read is dropped quietly: the demand path will read (and report) for real.
    const done = st.ready.then(
      () => {
        this.stats[source].bytesRead += bytes;
        this.depthStats(source, depth).bytesRead += bytes;
      },
      () => {
        // Still staged: the buffer is ours again. Taken or recycled: its new owner handles it.
        if (this.staged.get(key) === st) {
          this.staged.delete(key);
          this.free.push(buf);
        }
      },
    );
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
    this.staged.set(key, st);
    this.stats[source].issued++;
    this.depthStats(source, depth).issued++;
  }

  /**
   * The staged read of expert e, if any: the caller takes its buffer (and must hand back another of the
   * same size with give()) and awaits `ready` before using the bytes; a read still queued moves up to `prio`.
   * `counts`: false when the background fill adopts it (no prediction was tested).
   */
  take(layer: number, e: number, prio = 0, counts = true): { buf: Uint8Array; ready: Promise<void> } | undefined {
    const key = `${layer}:${e}`;
    const st = this.staged.get(key);
    if (!st) return undefined;
    this.staged.delete(key);
    st.ticket.promote(prio);
    if (!counts) return { buf: st.buf, ready: st.ready }; // adopted by the background fill: neither used nor wasted
    this.stats[st.source].used++;
    this.depthStats(st.source, st.depth).used++;
    if (st.rank >= 0) this.byRank[st.depth].used[st.rank] = (this.byRank[st.depth].used[st.rank] ?? 0) + 1;
    this.gate(st.source, st.depth).resolve(true);
    return { buf: st.buf, ready: st.ready };
  }

  /** A buffer for the staging pool (the cache slot a taken buffer replaced). */
  give(buf: Uint8Array): void {
    this.free.push(buf);
  }

  /** The real routing of `layer` has been served: predictions for it that were not taken are wasted. */
  settleLayer(layer: number): void {
    for (const [key, st] of this.staged) {
      if (st.layer !== layer) continue;
      this.staged.delete(key);
      this.stats[st.source].wasted++;
      const d = this.depthStats(st.source, st.depth);
      d.wasted++;
      if (this.drop(st)) {
        this.stats[st.source].cancelled++;
        d.cancelled++;
      }
      this.gate(st.source, st.depth).resolve(false);
    }
    for (const g of this.gates.values()) g.tick();
  }

  /** Drop every prediction (reset, state load, shutdown); resolves when no speculative read is in flight. */
  async cancel(): Promise<void> {
    for (const [key, st] of this.staged) {
      this.staged.delete(key);
      this.drop(st);
    }
    await Promise.allSettled([...this.pending]);
  }

  /** Reads in flight or staged (for tests: nothing leaks after cancel()). */
  get outstanding(): number {
    return this.staged.size + this.pending.size;
  }

  /** Free buffers (for tests: every slot comes back). */
  get idle(): number {
    return this.free.length;
  }

  /** Give a no-longer-staged prediction's buffer back; true when its read had not started (no bytes read). */
  private drop(st: Staged): boolean {
    if (st.ticket.cancel()) {
      this.free.push(st.buf);
      return true;
    }
    // A buffer whose read is still in flight is reused only after the read lands.
    if (st.settled) this.free.push(st.buf);
    else {
      const back = () => void this.free.push(st.buf);
      void st.ready.then(back, back);
    }
    return false;
  }
}
