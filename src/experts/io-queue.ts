// Expert reads scheduled by priority under a cap on reads in flight: demand reads (the forward waits on
// them) go first and keep a reserve of the cap, speculative reads (prefetch, background fill) use the rest,
// nearest layer first; a speculative read still queued when its layer is served is dropped unread.
// It also measures what the forward got while it waited: bytes landed per ms of wait, and how many reads
// were in flight meanwhile (time-weighted).
import type { ExpertReader } from "./store.js";

/** Priorities: lower runs sooner. Prefetch uses its lookahead depth (1, 2, ...). */
export const DEMAND = 0;
export const FILL = 1000;

/** A read dropped from the queue before it started: its buffer was never written. */
export class ReadCancelled extends Error {
  constructor(layer: number, e: number) {
    super(`speculative read of expert ${e} in layer ${layer} cancelled before it started`);
    this.name = "ReadCancelled";
  }
}

export interface IoTicket {
  /** Settles when the bytes are in dst (or the read failed, or it was cancelled while queued). */
  readonly done: Promise<void>;
  /** Move a queued read up to `prio` (a demand arrived for it); no effect once started. */
  promote(prio: number): void;
  /** Drop the read if it has not started (true: dst untouched, done rejects with ReadCancelled). */
  cancel(): boolean;
}

interface Job {
  layer: number;
  e: number;
  dst: Uint8Array;
  prio: number;
  /** false: the reader's integrity check is deferred (IoQueue.check runs it when the bytes are used). */
  check: boolean;
  seq: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** In-flight depth buckets of the wait histogram: 0, 1, 2, 3-4, 5-8, 9-16, 17+. */
export const DEPTH_BUCKETS = ["0", "1", "2", "3-4", "5-8", "9-16", "17+"] as const;
const bucket = (n: number) => (n <= 2 ? n : n <= 4 ? 3 : n <= 8 ? 4 : n <= 16 ? 5 : 6);

export interface IoStats {
  /** Reads completed and their bytes, by kind. */
  demandReads: number;
  demandBytes: number;
  speculativeReads: number;
  speculativeBytes: number;
  /** Speculative reads dropped while still queued (no bytes read). */
  cancelled: number;
  /** Time some caller waited on reads (ms), and bytes landed during it (each read's bytes spread evenly over its run). */
  waitMs: number;
  bytesDuringWait: number;
  /** ms of wait spent with 0, 1, 2, 3-4, 5-8, 9-16, 17+ reads in flight (DEPTH_BUCKETS). */
  waitDepthMs: number[];
}

export interface IoQueueOptions {
  /** Most reads in flight (match the libuv pool: more only queue there, first come first served). */
  depth: number;
  /** Of `depth`, slots speculative reads may not take, so a demand read starts at once. */
  demandReserve?: number;
}

/** libuv's default thread pool size: reads beyond it would only queue inside libuv, out of priority order. */
export const DEFAULT_IO_DEPTH = 4;

export class IoQueue {
  readonly stats: IoStats = {
    demandReads: 0, demandBytes: 0, speculativeReads: 0, speculativeBytes: 0, cancelled: 0,
    waitMs: 0, bytesDuringWait: 0, waitDepthMs: DEPTH_BUCKETS.map(() => 0),
  };
  readonly depth: number;
  private readonly reserve: number;
  private readonly queue: Job[] = [];
  private seq = 0;
  private running = 0;
  private runningSpec = 0;
  private waiters = 0;
  /** Wait clock: total ms waited up to `last`. */
  private waited = 0;
  private last = performance.now();

  constructor(private readonly reader: ExpertReader, opts: IoQueueOptions) {
    this.depth = Math.max(1, Math.floor(opts.depth));
    this.reserve = Math.min(this.depth - 1, Math.max(0, opts.demandReserve ?? Math.ceil(this.depth / 4)));
  }

  /**
   * Queue a read of expert e of `layer` into dst at priority `prio` (DEMAND, a depth, FILL). `check: false`
   * defers the reader's integrity check: the caller runs check() before it uses the bytes.
   */
  read(layer: number, e: number, dst: Uint8Array, prio: number, check = true): IoTicket {
    let job!: Job;
    const done = new Promise<void>((resolve, reject) => {
      job = { layer, e, dst, prio, check, seq: this.seq++, resolve, reject };
    });
    this.queue.push(job);
    this.pump();
    return {
      done,
      promote: (p) => void (job.prio = Math.min(job.prio, p), this.pump()),
      cancel: () => {
        const i = this.queue.indexOf(job);
        if (i < 0) return false;
        this.queue.splice(i, 1);
        this.stats.cancelled++;
        job.reject(new ReadCancelled(layer, e));
        return true;
      },
    };
  }

  recordBytes(layer: number): number {
    return this.reader.recordBytes(layer);
  }

  /** The integrity check a read with `check: false` deferred, on its bytes. */
  async check(layer: number, e: number, rec: Uint8Array): Promise<void> {
    await this.reader.checkExpert?.(layer, e, rec);
  }

  /** Reads queued or running. */
  get pending(): number {
    return this.queue.length + this.running;
  }

  /** A caller starts waiting on reads (acquire); pair with endWait(). */
  beginWait(): void {
    this.tick();
    this.waiters++;
  }

  endWait(): void {
    this.tick();
    this.waiters = Math.max(0, this.waiters - 1);
  }

  /** Advance the wait clock and the depth histogram to now. */
  private tick(): number {
    const now = performance.now();
    if (this.waiters > 0) {
      const dt = now - this.last;
      this.waited += dt;
      this.stats.waitMs += dt;
      this.stats.waitDepthMs[bucket(this.running)] += dt;
    }
    this.last = now;
    return this.waited;
  }

  private pump(): void {
    while (this.running < this.depth && this.queue.length) {
      let best = -1;
      for (let i = 0; i < this.queue.length; i++) {
        const j = this.queue[i];
        if (j.prio !== DEMAND && this.runningSpec >= this.depth - this.reserve) continue;
        if (best < 0 || j.prio < this.queue[best].prio || (j.prio === this.queue[best].prio && j.seq < this.queue[best].seq)) best = i;
      }
      if (best < 0) return;
      const [job] = this.queue.splice(best, 1);
      this.start(job);
    }
  }

  private start(job: Job): void {
    const spec = job.prio !== DEMAND;
    this.tick();
    this.running++;
    if (spec) this.runningSpec++;
    const t0 = this.last, w0 = this.waited; // the wait clock's own instants: the waited share never exceeds the run
    const bytes = this.reader.recordBytes(job.layer);
    const finish = (ok: boolean) => {
      const w1 = this.tick();
      const t1 = this.last;
      this.running--;
      if (spec) this.runningSpec--;
      if (ok) {
        if (spec) (this.stats.speculativeReads++, (this.stats.speculativeBytes += bytes));
        else (this.stats.demandReads++, (this.stats.demandBytes += bytes));
        this.stats.bytesDuringWait += t1 > t0 ? (bytes * (w1 - w0)) / (t1 - t0) : 0;
      }
      this.pump();
    };
    let p: Promise<void>;
    try {
      p = this.reader.readExpert(job.layer, job.e, job.dst, job.check ? undefined : false);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      () => (finish(true), job.resolve()),
      (err) => (finish(false), job.reject(err)),
    );
  }
}
