// Positioned reads over a file or an in-memory buffer; nothing reads a whole model file.
import { open, type FileHandle } from "node:fs/promises";

export interface ByteSource {
  /** File path or a label, used in error messages. */
  readonly name: string;
  /** Total size in bytes (may exceed 4 GiB). */
  readonly size: number;
  /**
   * Read `length` bytes at absolute `offset` into dst (or a new buffer).
   * Returns the bytes actually available: shorter than `length` only at end of source.
   */
  read(offset: number, length: number, dst?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(private readonly buf: Uint8Array, readonly name = "<buffer>") {
    this.size = buf.byteLength;
  }
  async read(offset: number, length: number, dst?: Uint8Array): Promise<Uint8Array> {
    const end = Math.min(this.size, offset + length);
    const n = Math.max(0, end - offset);
    const out = dst ? dst.subarray(0, n) : new Uint8Array(n);
    out.set(this.buf.subarray(offset, offset + n));
    return out;
  }
  async close(): Promise<void> {}
}

export class FileSource implements ByteSource {
  private constructor(private readonly fh: FileHandle, readonly name: string, readonly size: number) {}

  static async open(path: string): Promise<FileSource> {
    const fh = await open(path, "r");
    const st = await fh.stat();
    return new FileSource(fh, path, st.size);
  }

  async read(offset: number, length: number, dst?: Uint8Array): Promise<Uint8Array> {
    const want = Math.max(0, Math.min(length, this.size - offset));
    const out = dst ? dst.subarray(0, want) : new Uint8Array(want);
    let got = 0;
    // fs reads may come back short, and take at most 2 GiB at a time; loop until done or EOF.
    while (got < want) {
      const { bytesRead } = await this.fh.read(out, got, Math.min(want - got, 1 << 30), offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === want ? out : out.subarray(0, got);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
