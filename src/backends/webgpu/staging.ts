/// <reference types="@webgpu/types" />
// Host bytes to the device through mapped staging buffers. Dawn's queue.writeBuffer moved 1.0-1.1 GB/s on the
// H100 machine (and 0.24 GB/s on lavapipe, where this staging moved 5.2-5.3): the bytes are set straight into a
// buffer's mapped memory, a copy recorded in the command stream moves them into place (ordered with every op
// recorded before and after it), and the buffer is unmapped just before the submit that carries the copy, then
// mapped again; the GPU's copy done, it takes more bytes. With no mapped buffer free, the caller falls back.

const MAP_WRITE = 0x02, COPY_SRC = 0x04;

export class MappedStaging {
  /** Mapped and empty, ready to take bytes. */
  private readonly ready: GPUBuffer[] = [];
  /** Taking bytes now: the buffer and how many it holds. */
  private cur: { buf: GPUBuffer; fill: number } | undefined;
  /** Holding bytes whose copies are recorded: unmapped before the next submit, then mapped again. */
  private filled: GPUBuffer[] = [];
  /** Being mapped again (their mapAsync not yet settled). */
  private readonly mapping = new Set<GPUBuffer>();
  private count = 0;
  private dead = false;
  /** How bytes go into mapped memory: set() unless a faster copy is given (a CPU backend's copyBytes on its thread pool). */
  copy: (dst: Uint8Array, src: Uint8Array) => void = (dst, src) => dst.set(src);

  constructor(private readonly device: GPUDevice, readonly bufferBytes: number, readonly maxBuffers: number) {}

  /** `bytes` (a multiple of 4) in mapped staging, at (buffer, offset) for the caller's recorded copy; undefined if no buffer is free. */
  stage(bytes: Uint8Array): { buffer: GPUBuffer; offset: number } | undefined {
    const n = bytes.byteLength;
    if (this.dead || n === 0 || n % 4 !== 0 || n > this.bufferBytes) return undefined;
    if (!this.cur || this.cur.fill + n > this.bufferBytes) {
      if (this.cur) this.filled.push(this.cur.buf);
      this.cur = undefined;
      const buf = this.ready.pop() ?? (this.count < this.maxBuffers ? this.create() : undefined);
      if (!buf) return undefined;
      this.cur = { buf, fill: 0 };
    }
    const offset = this.cur.fill;
    this.copy(new Uint8Array(this.cur.buf.getMappedRange(offset, n)), bytes);
    this.cur.fill = Math.ceil((offset + n) / 8) * 8; // getMappedRange's offsets are multiples of 8
    return { buffer: this.cur.buf, offset };
  }

  /** Before a submit: the buffers holding staged bytes are unmapped (their copies are in it). */
  beforeSubmit(): GPUBuffer[] {
    if (this.cur && this.cur.fill > 0) this.filled.push(this.cur.buf);
    else if (this.cur) this.ready.push(this.cur.buf);
    this.cur = undefined;
    const out = this.filled;
    this.filled = [];
    for (const b of out) b.unmap();
    return out;
  }
  /** After that submit: each is mapped again, ready once the GPU has run its copies. */
  afterSubmit(bufs: GPUBuffer[]): void {
    for (const b of bufs) {
      this.mapping.add(b);
      b.mapAsync(MAP_WRITE).then(
        () => {
          this.mapping.delete(b);
          if (this.dead) b.destroy();
          else this.ready.push(b);
        },
        () => {
          this.mapping.delete(b); // destroyed, or the device lost: the buffer is gone
          this.count--;
        },
      );
    }
  }

  /** Destroys every buffer; one still being mapped has its mapAsync rejected by that (Dawn aborts the process if a map is left unsettled). */
  destroy(): void {
    this.dead = true;
    for (const b of [...this.ready, ...this.filled, ...this.mapping, ...(this.cur ? [this.cur.buf] : [])]) b.destroy();
    this.ready.length = 0;
    this.filled = [];
    this.cur = undefined;
  }

  private create(): GPUBuffer {
    this.count++;
    return this.device.createBuffer({ size: this.bufferBytes, usage: MAP_WRITE | COPY_SRC, mappedAtCreation: true });
  }
}
