// Speculative reads into staging slots, never straight into the cache: a prediction only costs a slot of
// staging memory until the real routing arrives, when predictions are matched as a set (any staged
// expert the layer asks for is taken, whatever order it was predicted in) and the rest count as wasted.
// Sources: the previous token's experts for the same layer, and the router lookahead the model supplies.
// Each source backs off when its measured precision cannot repay the bytes it reads.
import type { ExpertReader } from "./store.js";

export type PrefetchSource = "prev" | "lookahead";

export interface PrefetchStats {
  issued: number;
  used: number;
  wasted: number;
  bytesRead: number;
}

interface Staged {
  layer: number;
  expert: number;
  source: PrefetchSource;
  buf: Uint8Array;
  ready: Promise<void>;
  /** Set once the read settled (the buffer may be reused only then). */
  settled: boolean;
}

export interface StagingOptions {
  slots: number;
  slotBytes: number;
  /** Below this precision (used / issued over the last `window` prefetches) a source pauses. */
  minPrecision?: number;
  window?: number;
  /** Acquires a paused source sits out before it is tried again. */
  pause?: number;
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

export class Staging {
  readonly stats: Record<PrefetchSource, PrefetchStats> = {
    prev: { issued: 0, used: 0, wasted: 0, bytesRead: 0 },
    lookahead: { issued: 0, used: 0, wasted: 0, bytesRead: 0 },
  };
  private readonly free: Uint8Array[] = [];
  private readonly staged = new Map<string, Staged>();
  private readonly gates: Record<PrefetchSource, SourceGate>;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly reader: ExpertReader, opts: StagingOptions) {
    for (let i = 0; i < opts.slots; i++) this.free.push(new Uint8Array(opts.slotBytes));
    const o = { minPrecision: opts.minPrecision ?? 0.15, window: opts.window ?? 64, pause: opts.pause ?? 512 };
    this.gates = { prev: new SourceGate(o), lookahead: new SourceGate(o) };
  }

  isStaged(layer: number, e: number): boolean {
    return this.staged.has(`${layer}:${e}`);
  }

  /** Start a speculative read of expert e of layer, if the source is not paused and a slot is free. */
  issue(layer: number, e: number, source: PrefetchSource): void {
    const key = `${layer}:${e}`;
    if (this.staged.has(key) || !this.gates[source].open) return;
    const buf = this.free.pop();
    if (!buf) return;
    const st: Staged = { layer, expert: e, source, buf, settled: false, ready: Promise.resolve() };
    const bytes = this.reader.recordBytes(layer);
    st.ready = this.reader.readExpert(layer, e, buf).finally(() => void (st.settled = true));
    // A failed speculative read is dropped quietly: the demand path will read (and report) for real.
    const done = st.ready.then(
      () => void (this.stats[source].bytesRead += bytes),
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
  }

  /**
   * The staged read of expert e, if any: the caller takes its buffer (and must hand back another of the
   * same size with give()) and awaits `ready` before using the bytes.
   */
  take(layer: number, e: number): { buf: Uint8Array; ready: Promise<void> } | undefined {
    const key = `${layer}:${e}`;
    const st = this.staged.get(key);
    if (!st) return undefined;
    this.staged.delete(key);
    this.stats[st.source].used++;
    this.gates[st.source].resolve(true);
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
      this.gates[st.source].resolve(false);
      this.recycle(st);
    }
    this.gates.prev.tick();
    this.gates.lookahead.tick();
  }

  /** Drop every prediction (reset, state load, shutdown); resolves when no speculative read is in flight. */
  async cancel(): Promise<void> {
    for (const [key, st] of this.staged) {
      this.staged.delete(key);
      this.recycle(st);
    }
    await Promise.allSettled([...this.pending]);
  }

  /** Reads in flight or staged (for tests: nothing leaks after cancel()). */
  get outstanding(): number {
    return this.staged.size + this.pending.size;
  }

  private recycle(st: Staged): void {
    // A buffer whose read is still in flight is reused only after the read lands.
    if (st.settled) this.free.push(st.buf);
    else {
      const back = () => void this.free.push(st.buf);
      void st.ready.then(back, back);
    }
  }
}
