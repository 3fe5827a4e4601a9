/// <reference types="@webgpu/types" />
// Device slots of the GPU expert tier (experts/device-tier.ts decides what goes where): fixed-size slots of one
// expert record each, carved from weight arenas of at most the adapter's largest binding, so no slot straddles two
// buffers and a MoE dispatch binds a whole arena. Records go up through the backend's mapped staging (staging.ts), or
// when none is free through a staging ring: queue.writeBuffer copies them into the ring at once (either way the host
// cache may reuse its buffer as soon as write() returns) and a copy recorded into the
// current command stream moves them into the slot, after every op recorded before it (which may still read the
// evicted expert) and before every op after it; nothing is submitted for an upload, so the layer's work stays in one
// submission and the GPU keeps computing what was submitted while the next records are staged.
import type { Weight, WeightDesc } from "../backend.js";
import { UsageError } from "../../util/errors.js";
import { formatBytes } from "../../util/bytes.js";
import { allocArenas, type GpuArena } from "./arena.js";
import type { WebGpuBackend } from "./webgpu.js";

const COPY_SRC = 0x04, COPY_DST = 0x08;

/** Upload counters: records written, their bytes, and the ms the calling thread spent handing them to the queue. */
export interface UploadStats {
  uploads: number;
  bytes: number;
  ms: number;
}

export class GpuExpertSlots {
  readonly uploadStats: UploadStats = { uploads: 0, bytes: 0, ms: 0 };
  readonly slotsPerArena: number;
  private readonly ring: GPUBuffer;
  private readonly ringBytes: number;
  private head = 0;
  /** Slots start 16 bytes apart at least, so a record's parts sit where 16-byte readers may read them. */
  private readonly stride: number;

  private constructor(private readonly be: WebGpuBackend, readonly slotBytes: number, readonly nSlots: number, private readonly arenas: GpuArena[], ringSlots: number, align: number) {
    this.stride = slotStride(slotBytes);
    this.slotsPerArena = slotsPerArena(be, slotBytes, align);
    this.ringBytes = Math.max(1, ringSlots) * slotBytes;
    this.ring = be.device.createBuffer({ size: this.ringBytes, usage: COPY_SRC | COPY_DST });
  }

  /**
   * `want` slots of `slotBytes`, or, where the device refuses that memory (an out-of-memory error scope) and
   * `halve` is set, half as many again and again down to `min`. Refused at `min` (or at `want` without
   * halve): a UsageError naming the sizes. `ringSlots` records of staging ring. `align`: slots per arena are a
   * multiple of it where a binding holds that many (a layer's experts, filled in order, then share one binding).
   */
  static async allocate(be: WebGpuBackend, slotBytes: number, want: number, opts: { min: number; halve: boolean; ringSlots: number; what: string; align?: number }): Promise<GpuExpertSlots> {
    const align = opts.align ?? 1;
    const per = slotsPerArena(be, slotBytes, align);
    for (let n = want; ; n = Math.max(opts.min, Math.floor(n / 2))) {
      const sizes: number[] = [];
      for (let s = 0; s < n; s += per) sizes.push(Math.min(per, n - s) * slotStride(slotBytes));
      const arenas = await allocArenas(be, sizes);
      if (Array.isArray(arenas)) return new GpuExpertSlots(be, slotBytes, n, arenas, opts.ringSlots, align);
      if (!opts.halve || n <= opts.min) {
        throw new UsageError("gpu_memory", `${opts.what}: ${be.adapterName} refused ${formatBytes(n * slotBytes)} of expert slots (${n} x ${formatBytes(slotBytes)}): ${arenas.message}`);
      }
    }
  }

  /** Record bytes into `slot`, ordered with the recorded ops (see the top of this file). */
  write(slot: number, bytes: Uint8Array): void {
    const t0 = performance.now();
    if (bytes.byteLength > this.slotBytes || bytes.byteLength % 4 !== 0) throw new RangeError(`webgpu expert slot: a record of ${bytes.byteLength} bytes does not fit a slot of ${this.slotBytes} in whole words`);
    const { arena, base } = this.place(slot);
    arena.invalidate(base, bytes.byteLength);
    // Through mapped staging when a buffer is free (staging.ts: several times writeBuffer's rate), else the ring.
    let src = bytes.byteLength <= this.be.rec.stagePieceBytes ? this.be.rec.stageUpload(bytes) : undefined;
    if (!src) {
      // Ring room is reused only after a submit: a copy still recorded (unsubmitted) must read what was staged for it.
      if (this.head + bytes.byteLength > this.ringBytes) {
        this.be.rec.flushForQueueWrite();
        this.head = 0;
      }
      this.be.device.queue.writeBuffer(this.ring, this.head, bytes);
      src = { buffer: this.ring, offset: this.head };
      this.head += bytes.byteLength;
    }
    for (let done = 0; done < bytes.byteLength; ) {
      const dst = arena.locate(base + done); // a record larger than a binding spans the arena's chunks
      const n = Math.min(bytes.byteLength - done, dst.room);
      this.be.rec.copyBytes(src.buffer, src.offset + done, dst.buffer, dst.at, n);
      done += n;
    }
    this.uploadStats.uploads++;
    this.uploadStats.bytes += bytes.byteLength;
    this.uploadStats.ms += performance.now() - t0;
  }

  /** A weight over bytes [offset, offset + its size) of `slot`'s record. */
  view(slot: number, desc: WeightDesc, offset: number): Weight {
    const { arena, base } = this.place(slot);
    return arena.view(desc, base + offset);
  }

  free(): void {
    for (const a of this.arenas) a.free();
    this.be.rec.release(this.ring);
  }

  private place(slot: number): { arena: GpuArena; base: number } {
    if (!(Number.isInteger(slot) && slot >= 0 && slot < this.nSlots)) throw new RangeError(`webgpu expert slot ${slot} out of range [0, ${this.nSlots})`);
    return { arena: this.arenas[Math.floor(slot / this.slotsPerArena)], base: (slot % this.slotsPerArena) * this.stride };
  }
}

const slotStride = (slotBytes: number) => Math.ceil(slotBytes / 16) * 16;

/**
 * Whole slots per arena: as many as one binding holds, rounded down to a multiple of `align` when at least that
 * many fit (one, if a record is larger: its parts then bind on their own).
 */
function slotsPerArena(be: WebGpuBackend, slotBytes: number, align: number): number {
  const per = Math.max(1, Math.floor(be.maxBinding / slotStride(slotBytes)));
  return per >= align ? per - (per % align) : per;
}
