// A forward-only little-endian reader over a ByteSource that buffers the header in chunks.
// Callers check `avail()` and only `await fill(n)` when the buffer runs short, so parsing a
// 150k-entry string array costs a handful of reads and almost no promise turns.
import { FormatError } from "../../util/errors.js";
import type { ByteSource } from "./byte-source.js";

const CHUNK = 1 << 20;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
// ignoreBOM: a string that starts with U+FEFF keeps it (Llama 2 / Mistral have a token that is just U+FEFF).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export class HeaderCursor {
  /** Absolute offset of the next byte to read. */
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.buf.buffer);
  /** Absolute offset of buf[0]. */
  private bufStart = 0;

  constructor(readonly src: ByteSource) {}

  get file(): string {
    return this.src.name;
  }

  /** Bytes buffered from `pos` on. */
  avail(): number {
    return this.bufStart + this.buf.byteLength - this.pos;
  }

  /** Bytes left in the source from `pos` on. */
  remaining(): number {
    return this.src.size - this.pos;
  }

  fail(code: string, detail: string, offset: number = this.pos): never {
    throw new FormatError(code, this.file, offset, detail);
  }

  /** Make sure `n` bytes from `pos` are buffered; "truncated" if the source ends first. */
  async fill(n: number, what: string): Promise<void> {
    if (this.avail() >= n) return;
    if (n > this.remaining()) {
      this.fail("truncated", `file ends after ${this.remaining()} bytes while reading ${what} (needs ${n})`);
    }
    const len = Math.min(Math.max(n, CHUNK), this.remaining());
    const b = await this.src.read(this.pos, len);
    if (b.byteLength < n) this.fail("truncated", `short read while reading ${what}: got ${b.byteLength} of ${n} bytes`);
    this.buf = b;
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.bufStart = this.pos;
  }

  // The fixed-width readers below assume the bytes were filled.
  private at(n: number): number {
    const p = this.pos - this.bufStart;
    this.pos += n;
    return p;
  }
  u8(): number {
    return this.view.getUint8(this.at(1));
  }
  i8(): number {
    return this.view.getInt8(this.at(1));
  }
  u16(): number {
    return this.view.getUint16(this.at(2), true);
  }
  i16(): number {
    return this.view.getInt16(this.at(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.at(4), true);
  }
  i32(): number {
    return this.view.getInt32(this.at(4), true);
  }
  f32(): number {
    return this.view.getFloat32(this.at(4), true);
  }
  f64(): number {
    return this.view.getFloat64(this.at(8), true);
  }
  u64(): bigint {
    return this.view.getBigUint64(this.at(8), true);
  }
  i64(): bigint {
    return this.view.getBigInt64(this.at(8), true);
  }

  /** A u64 count, size or offset that must be a safe integer (the file cannot be bigger anyway). */
  u64Safe(what: string, code = "implausible_count"): number {
    const start = this.pos;
    const v = this.u64();
    if (v > MAX_SAFE) this.fail(code, `${what} ${v} is beyond 2^53`, start);
    return Number(v);
  }

  /**
   * The next string if it is wholly buffered, else undefined with nothing consumed. Lets tight
   * loops (token arrays) skip a promise per item.
   */
  tryString(maxBytes: number): string | undefined {
    const p = this.pos - this.bufStart;
    if (p + 8 > this.buf.byteLength) return undefined;
    const lo = this.view.getUint32(p, true);
    const hi = this.view.getUint32(p + 4, true);
    if (hi !== 0 || lo > maxBytes || p + 8 + lo > this.buf.byteLength) return undefined; // slow path reports errors
    const bytes = this.buf.subarray(p + 8, p + 8 + lo);
    let s: string;
    try {
      s = utf8.decode(bytes);
    } catch {
      return undefined;
    }
    this.pos += 8 + lo;
    return s;
  }

  /** GGUF string: u64 byte length then UTF-8 bytes (no terminator). */
  async string(what: string, maxBytes: number): Promise<string> {
    if (this.avail() < 8) await this.fill(8, `${what} length`);
    const start = this.pos;
    const len = this.u64Safe(`${what} length`);
    if (len > maxBytes) this.fail("implausible_count", `${what} length ${len} exceeds the limit of ${maxBytes} bytes`, start);
    if (len > this.remaining()) this.fail("truncated", `${what} length ${len} runs past the end of the file (${this.remaining()} bytes left)`, start);
    if (this.avail() < len) await this.fill(len, what);
    const p = this.at(len);
    try {
      return utf8.decode(this.buf.subarray(p, p + len));
    } catch {
      return this.fail("bad_string", `${what} is not valid UTF-8`, start + 8);
    }
  }
}
