/// <reference types="@webgpu/types" />
// Reads back to the host: buffers copied into one mappable buffer recorded in order with the ops, the submission
// sealed (held while host values it reads are not in yet), then mapped. Mappable buffers are kept by size for reuse:
// a split tier reads back every layer, and making one each time cost more than the copy (H100 profile, session 13).
import type { GpuBuf } from "./buffers.js";
import type { Recorder } from "./recorder.js";

const MAP_READ = 0x01, COPY_DST = 0x08;
/** Mappable buffers kept per size (reads overlap only across sessions). */
const KEPT = 4;

export class Readbacks {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** What a read of each size last waited for its map (ms, an average): mapDelay's base. */
  private readonly waited = new Map<number, number>();

  constructor(private readonly device: GPUDevice, private readonly rec: Recorder) {}

  /**
   * The values of bufs, each a copy. idle: called once the read's submission has gone, before the wait for the GPU
   * (not while later work is held for host values: what it records could not go in order); mapping: likewise, once
   * the map is asked for. mapDelay: sleep on a timer for that share of what a read of this size last
   * waited, before the map (Dawn polls a pending map from setImmediate, spinning a core and allocating as it goes).
   */
  async read(bufs: readonly GpuBuf[], mapDelay: number, idle?: () => void, mapping?: () => void): Promise<Float32Array[]> {
    const rec = this.rec;
    rec.counters.reads++;
    const total = bufs.reduce((a, b) => a + b.length * 4, 0);
    const size = Math.max(16, Math.ceil(total / 256) * 256);
    const rb = this.free.get(size)?.pop() ?? this.device.createBuffer({ size, usage: MAP_READ | COPY_DST });
    let at = 0;
    for (const b of bufs) {
      if (b.length) rec.copyBytes(b.buffer, 0, rb, at, b.length * 4);
      at += b.length * 4;
    }
    // Held while host values it or earlier work reads (ids, addLater's) are not in yet: wait until it is submitted.
    const submitted = rec.seal();
    if (submitted) {
      const t = rec.timeHost ? performance.now() : 0;
      await submitted;
      if (rec.timeHost) rec.counters.heldWaitMs += performance.now() - t;
    }
    const late = rec.takeHoldError();
    if (late !== undefined) {
      rb.destroy(); // after its copy was submitted: the work ran, with zeros for the values that never came
      throw late;
    }
    if (idle && !rec.holding) idle();
    const t0 = performance.now(), waited = this.waited.get(size);
    if (mapDelay > 0 && waited !== undefined && waited * mapDelay >= 1) await new Promise((r) => setTimeout(r, Math.min(waited * mapDelay, 50)));
    try {
      const mapped = rb.mapAsync(1);
      if (mapping && !rec.holding) mapping(); // work submitted now: the map does not wait for it
      await mapped;
      const w = performance.now() - t0;
      if (rec.timeHost) rec.counters.mapWaitMs += w;
      this.waited.set(size, waited === undefined ? w : 0.75 * waited + 0.25 * w);
    } catch (e) {
      rb.destroy();
      throw e;
    }
    const all = new Float32Array(rb.getMappedRange(0, size));
    at = 0;
    const out = bufs.map((b) => all.slice(at, (at += b.length))); // copies, before the range goes with unmap()
    rb.unmap();
    const free = this.free.get(size) ?? this.free.set(size, []).get(size)!;
    if (free.length < KEPT) free.push(rb);
    else rb.destroy();
    return out;
  }

  destroy(): void {
    for (const free of this.free.values()) for (const b of free) b.destroy();
    this.free.clear();
  }
}
