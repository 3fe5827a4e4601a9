/// <reference types="@webgpu/types" />
// Weight memory on the device. An arena is one or more GPU buffers of at most the adapter's largest storage
// binding (lavapipe: 128 MiB), so a kernel can bind any of them whole; a weight that straddles two is copied into
// a buffer of its own when it is bound, and one larger than a binding (a big vocabulary's embedding or output on a
// device that binds little) is bound as runs of whole rows where they sit (GpuSplitWeight). Bytes are ggml-encoded
// as written; view() repacks a weight whose type has unaligned blocks (Q8_0, Q6_K) in place, on the device, once per
// write of its range.
import type { Weight, WeightArena, WeightDesc } from "../backend.js";
import { tensorBytes } from "../backend.js";
import { GPU_QUANTS, type GpuQuant } from "./quant/index.js";

/** A weight on the device: `wordOffset` words into `buffer`, in the layout its quant module reads. */
export class GpuWeight implements Weight {
  constructor(readonly name: string, readonly type: number, readonly shape: readonly number[], readonly buffer: GPUBuffer, readonly wordOffset: number, readonly quant: GpuQuant) {}
}

/**
 * A 2-D weight of more bytes than the adapter binds at once, as runs of whole rows: part i is rows [row0, row0 +
 * its n) in a binding of its own reach (a run within one arena buffer, bound where it sits; a row across two
 * buffers, copied into one of its own). matmul and embed run it part by part; other ops refuse it by name.
 */
export class GpuSplitWeight implements Weight {
  constructor(readonly name: string, readonly type: number, readonly shape: readonly number[], readonly parts: readonly { readonly w: GpuWeight; readonly row0: number }[]) {}
}

/** What an arena needs from the backend: buffers, ordered commands, and the repack kernel. */
export interface ArenaHost {
  readonly device: GPUDevice;
  readonly maxBinding: number;
  /** Submit recorded work first, so a write lands after every earlier op and before every later one. */
  flush(): void;
  /** Submit before a queue.writeBuffer into a buffer recorded work may read (refused while work waits for token ids). */
  flushForQueueWrite(): void;
  /** Whole words in mapped staging for a recorded copy (ordered with the ops), or undefined: then flush and writeBuffer. */
  stageUpload(bytes: Uint8Array): { buffer: GPUBuffer; offset: number } | undefined;
  readonly stagePieceBytes: number;
  copyBytes(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void;
  repack(w: GPUBuffer, wordOffset: number, raw: GPUBuffer, nBlocks: number, r: NonNullable<GpuQuant["repack"]>): void;
  /** Destroy once the work recorded so far has been submitted. */
  release(b: GPUBuffer): void;
}

const STORAGE = 0x80, COPY_SRC = 0x04, COPY_DST = 0x08;

/**
 * Arenas of these sizes, or the device's out-of-memory error where it refuses them (none kept then): WebGPU tells
 * no memory size, so asking is how to know.
 */
export async function allocArenas(be: ArenaHost, sizes: readonly number[]): Promise<GpuArena[] | GPUError> {
  be.device.pushErrorScope("out-of-memory");
  const arenas = sizes.map((n) => new GpuArena(be, n));
  const oom = await be.device.popErrorScope();
  if (!oom) return arenas;
  for (const a of arenas) a.free();
  be.flush();
  return oom;
}
export const WEIGHT_USAGE = STORAGE | COPY_SRC | COPY_DST;
const ceil4 = (n: number) => Math.ceil(n / 4) * 4;
const ceil16 = (n: number) => Math.ceil(n / 16) * 16;

export class GpuArena implements WeightArena {
  private readonly chunks: GPUBuffer[] = [];
  private readonly chunkBytes: number;
  /** Views repacked since their range was last written: offset -> type and bytes. */
  private readonly repacked = new Map<number, { type: number; bytes: number }>();
  private readonly spills: GPUBuffer[] = [];
  private freed = false;

  constructor(private readonly be: ArenaHost, readonly byteLength: number) {
    if (!(Number.isInteger(byteLength) && byteLength >= 0)) throw new RangeError(`webgpu weight arena: bad size ${byteLength}`);
    this.chunkBytes = be.maxBinding;
    for (let at = 0; at < byteLength || at === 0; at += this.chunkBytes) {
      const size = Math.max(16, ceil16(Math.min(this.chunkBytes, byteLength - at))); // whole vec4s: 16-byte readers bind it
      this.chunks.push(be.device.createBuffer({ size, usage: WEIGHT_USAGE }));
      if (byteLength === 0) break;
    }
  }

  /** Bytes go in at a 4-byte boundary; a length that is not a multiple of 4 is padded with zeros to the next one. */
  write(offset: number, src: Uint8Array): void {
    this.check(offset, src.byteLength);
    if (offset % 4 !== 0) throw new RangeError(`webgpu weight arena: write at offset ${offset} is not 4-byte aligned`);
    this.invalidate(offset, src.byteLength);
    let data = src;
    if (src.byteLength % 4 !== 0) {
      data = new Uint8Array(ceil4(src.byteLength));
      data.set(src);
    }
    let flushed = false;
    for (let done = 0; done < data.byteLength;) {
      const at = offset + done, c = Math.floor(at / this.chunkBytes), inChunk = at - c * this.chunkBytes;
      const n = Math.min(data.byteLength - done, this.chunkBytes - inChunk, this.be.stagePieceBytes);
      const st = this.be.stageUpload(data.subarray(done, done + n));
      if (st) this.be.copyBytes(st.buffer, st.offset, this.chunks[c], inChunk, n);
      else {
        if (!flushed) this.be.flushForQueueWrite();
        flushed = true;
        this.be.device.queue.writeBuffer(this.chunks[c], inChunk, data, done, n);
      }
      done += n;
    }
  }

  /** Bytes [offset, offset + n) are being rewritten by a copy the caller records (expert-tier.ts): views over them repack again. */
  invalidate(offset: number, n: number): void {
    this.check(offset, n);
    for (const [at, r] of this.repacked) if (at < offset + n && offset < at + r.bytes) this.repacked.delete(at);
  }

  /** The device buffer holding arena byte `offset`, and where in it (a range from there may run to the chunk's end). */
  locate(offset: number): { buffer: GPUBuffer; at: number; room: number } {
    this.check(offset, 0);
    const c = Math.floor(offset / this.chunkBytes);
    const at = offset - c * this.chunkBytes;
    return { buffer: this.chunks[c], at, room: this.chunks[c].size - at };
  }

  view(w: WeightDesc, offset: number): Weight {
    const q = GPU_QUANTS.get(w.type);
    if (!q) throw new RangeError(`webgpu backend: weight '${w.name}' has ggml type ${w.type}, which has no WGSL kernel`);
    const n = tensorBytes(w);
    this.check(offset, n);
    if (offset % 4 !== 0) throw new RangeError(`webgpu weight arena: weight '${w.name}' at offset ${offset} is not 4-byte aligned`);
    if (n > this.be.maxBinding) return this.splitView(w, offset, n, q);
    const c = Math.floor(offset / this.chunkBytes);
    const byteOff = offset - c * this.chunkBytes;
    // Straddles two bindings: a buffer of its own.
    if (byteOff + n > this.chunkBytes) return this.bind(w, w.shape, offset, n, q, this.joined(c, byteOff, n));
    return this.bind(w, w.shape, offset, n, q, { buffer: this.chunks[c], byteOff, inPlace: true });
  }

  /** A weight over more bytes than one binding, as runs of whole rows (GpuSplitWeight). */
  private splitView(w: WeightDesc, offset: number, n: number, q: GpuQuant): GpuSplitWeight {
    const [k, rows] = w.shape;
    const rowBytes = n / rows;
    const why = w.shape.length !== 2 ? "it is not 2-D" : rowBytes > this.be.maxBinding ? `a row of it has ${rowBytes} bytes` : rowBytes % 4 !== 0 ? `its rows of ${rowBytes} bytes do not start at 4-byte boundaries` : "";
    if (why) throw new RangeError(`webgpu backend: weight '${w.name}' has ${n} bytes, more than the adapter binds at once (${this.be.maxBinding}), and cannot be bound as runs of rows: ${why}`);
    const parts: { w: GpuWeight; row0: number }[] = [];
    for (let r = 0; r < rows; ) {
      const at = offset + r * rowBytes, c = Math.floor(at / this.chunkBytes), byteOff = at - c * this.chunkBytes;
      const fit = Math.min(rows - r, Math.floor((this.chunkBytes - byteOff) / rowBytes));
      const m = Math.max(1, fit); // none fits: the row across the two buffers, in one of its own
      const where = fit ? { buffer: this.chunks[c], byteOff, inPlace: true } : this.joined(c, byteOff, rowBytes);
      parts.push({ w: this.bind(w, [k, m], at, m * rowBytes, q, where), row0: r });
      r += m;
    }
    return new GpuSplitWeight(w.name, w.type, w.shape, parts);
  }

  /** Bytes [byteOff, byteOff + n) of chunk c and on into the next, copied into a buffer of their own (ceil4: chunks are padded to whole words). */
  private joined(c: number, byteOff: number, n: number): { buffer: GPUBuffer; byteOff: number; inPlace: false } {
    const buffer = this.be.device.createBuffer({ size: ceil16(n), usage: WEIGHT_USAGE });
    const first = this.chunkBytes - byteOff;
    this.be.copyBytes(this.chunks[c], byteOff, buffer, 0, first);
    this.be.copyBytes(this.chunks[c + 1], 0, buffer, first, ceil4(n) - first);
    this.spills.push(buffer);
    return { buffer, byteOff: 0, inPlace: false };
  }

  /**
   * The weight (shape `shape`, n bytes at arena offset `at`) where it sits: repacked there first where its type needs
   * it, once per write of its range in place (`inPlace`: an arena buffer), each time in a buffer of its own.
   */
  private bind(w: WeightDesc, shape: readonly number[], at: number, n: number, q: GpuQuant, where: { buffer: GPUBuffer; byteOff: number; inPlace: boolean }): GpuWeight {
    const { buffer, byteOff, inPlace } = where;
    if (q.repack) {
      const done = this.repacked.get(at);
      if (done && (done.type !== w.type || done.bytes !== n)) throw new Error(`webgpu weight arena: bytes at ${at} were bound as type ${done.type} (${done.bytes} bytes) and again as '${w.name}' without a write between`);
      if (!done || !inPlace) {
        const raw = this.be.device.createBuffer({ size: ceil4(n), usage: WEIGHT_USAGE });
        this.be.copyBytes(buffer, byteOff, raw, 0, ceil4(n));
        this.be.repack(buffer, byteOff / 4, raw, n / q.repack.rawBytes, q.repack);
        this.be.release(raw);
        if (inPlace) this.repacked.set(at, { type: w.type, bytes: n });
      }
    }
    return new GpuWeight(w.name, w.type, shape, buffer, byteOff / 4, q);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    for (const b of [...this.chunks, ...this.spills]) this.be.release(b);
  }

  private check(offset: number, n: number): void {
    if (this.freed) throw new Error("webgpu weight arena used after free()");
    if (!(offset >= 0 && offset + n <= this.byteLength)) throw new RangeError(`webgpu weight arena range [${offset}, ${offset + n}) outside its ${this.byteLength} bytes`);
  }
}
