/// <reference types="@webgpu/types" />
// Benches' per-dispatch GPU time (WebGpuBackend.profileBegin/profileEnd): while a profile is open each dispatch is a
// compute pass of its own between two timestamps, and the pass times are summed by pipeline key. Dawn must be
// opened without timestamp quantization (device.ts) or every time is rounded to ~22 µs.

/** Dispatches timed per query set (4096 timestamps, WebGPU's most per set). */
const PAIRS = 2048;
const MAP_READ = 0x01, COPY_SRC = 0x04, COPY_DST = 0x08, QUERY_RESOLVE = 0x200;

/** What the profiler needs from the backend: its device, the open encoder (any pass ended), and a submit. */
export interface ProfilerHost {
  readonly device: GPUDevice;
  /** The command encoder with no compute pass open. */
  passFreeEncoder(): GPUCommandEncoder;
  flush(): void;
}

export type KernelTimes = Map<string, { count: number; us: number }>;

export class DispatchProfiler {
  private readonly qs: GPUQuerySet;
  private keys: string[] = [];
  private readonly reads: Promise<void>[] = [];
  private readonly totals: KernelTimes = new Map();

  constructor(private readonly host: ProfilerHost) {
    this.qs = host.device.createQuerySet({ type: "timestamp", count: 2 * PAIRS });
  }

  /** The timestamp writes of the pass of the dispatch `key` about to be recorded. */
  next(key: string): GPUComputePassTimestampWrites {
    const i = this.keys.length;
    this.keys.push(key);
    return { querySet: this.qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }
  /** After the dispatch's pass has ended: resolve and read the set once it is full. */
  ended(): void {
    if (this.keys.length === PAIRS) this.drain();
  }
  /** GPU time by pipeline key (dispatch count, total µs) of every dispatch timed. */
  async end(): Promise<KernelTimes> {
    this.drain();
    this.host.flush();
    await Promise.all(this.reads);
    this.qs.destroy();
    return this.totals;
  }

  private drain(): void {
    const keys = this.keys;
    this.keys = [];
    if (!keys.length) return;
    const bytes = keys.length * 16;
    const res = this.host.device.createBuffer({ size: bytes, usage: QUERY_RESOLVE | COPY_SRC });
    const rb = this.host.device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
    const enc = this.host.passFreeEncoder();
    enc.resolveQuerySet(this.qs, 0, 2 * keys.length, res, 0);
    enc.copyBufferToBuffer(res, 0, rb, 0, bytes);
    this.host.flush();
    this.reads.push(
      rb.mapAsync(1).then(() => {
        const t = new BigUint64Array(rb.getMappedRange().slice(0));
        keys.forEach((k, i) => {
          const e = this.totals.get(k) ?? { count: 0, us: 0 };
          e.count++;
          if (t[2 * i + 1] > t[2 * i]) e.us += Number(t[2 * i + 1] - t[2 * i]) / 1000;
          this.totals.set(k, e);
        });
        rb.unmap();
        rb.destroy();
        res.destroy();
      }),
    );
  }
}
