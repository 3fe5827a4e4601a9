// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by ext4, iSCSI and RocksDB.
// Node 20 has only zlib's CRC-32, so this is slicing-by-8 over eight 256-entry tables (0.5-0.7 GB/s here; a
// wasm slicing-by-8 and a JS slicing-by-16 measured no faster). The native addon's CRC instructions run 12-19
// GB/s: the engine injects them where it is built (Checksums).

const POLY = 0x82f63b78;
const T = new Uint32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  for (let t = 1; t < 8; t++) T[t * 256 + n] = (T[(t - 1) * 256 + n] >>> 8) ^ T[T[(t - 1) * 256 + n] & 0xff];
}

const EMPTY = new Uint32Array(0);

/** CRC-32C of `data`; pass a previous result as `crc` to continue over a following chunk. */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  let i = 0;
  const n = data.length;
  // Byte steps up to a 4-byte boundary, so the bulk can be read as u32 words (little-endian, as on every Node platform).
  const head = Math.min(n, (4 - (data.byteOffset & 3)) & 3);
  for (; i < head; i++) c = (c >>> 8) ^ T[(c ^ data[i]) & 0xff];
  const pairs = (n - i) >>> 3;
  // No view when there are no words: a short buffer may end before the 4-byte boundary (a view there throws).
  const w = pairs ? new Uint32Array(data.buffer, data.byteOffset + i, pairs * 2) : EMPTY;
  for (let j = 0; j < w.length; j += 2) {
    const lo = c ^ w[j];
    const hi = w[j + 1];
    c =
      T[1792 + (lo & 0xff)] ^ T[1536 + ((lo >>> 8) & 0xff)] ^ T[1280 + ((lo >>> 16) & 0xff)] ^ T[1024 + (lo >>> 24)] ^
      T[768 + (hi & 0xff)] ^ T[512 + ((hi >>> 8) & 0xff)] ^ T[256 + ((hi >>> 16) & 0xff)] ^ T[hi >>> 24];
  }
  i += pairs * 8;
  for (; i < n; i++) c = (c >>> 8) ^ T[(c ^ data[i]) & 0xff];
  return ~c >>> 0;
}

/**
 * How the readers checksum what they read. The engine injects the native addon's (hardware CRC, off the JS
 * thread); without it, jsChecksums.
 */
export interface Checksums {
  /** crc32c of buf; may run off the JS thread (buf must not change until it settles). */
  crc32c(buf: Uint8Array): number | Promise<number>;
  /**
   * Fill dst from fd at `position` (short only at end of file) and return the crc32c of the bytes read, computed
   * by the thread that read them (no second trip). Rejects with an fs-style error (code, errno).
   */
  preadCrc32c?(fd: number, dst: Uint8Array, position: number): Promise<{ bytesRead: number; crc: number }>;
}

export const jsChecksums: Checksums = { crc32c: (buf) => crc32c(buf) };
