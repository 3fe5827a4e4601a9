// A ring of recent read latencies, for p50/p99 in session stats and benches; apart because it knows nothing
// of the cache that feeds it.

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
