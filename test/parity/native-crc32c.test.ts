// The native CRC-32C (CRC instructions on three interleaved streams, or slicing-by-8) against the definition:
// RFC 3720's check values, a bit-at-a-time reference, and the JS slicing-by-8 on buffers of many lengths and
// alignments; the async and read-and-checksum calls agree with the synchronous one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Stream } from "../../src/gen/random.js";
import { crc32c as jsCrc } from "../../src/util/crc32c.js";
import { needNative } from "../helpers/parity.js";

/** CRC-32C one bit at a time, straight from the definition (reflected polynomial 0x82F63B78). */
function bitwise(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

function randomBytes(n: number, seed: string): Uint8Array {
  const s = new Stream(5, seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = s.nextU32() & 0xff;
  return out;
}

const RFC3720: [string, Uint8Array, number][] = [
  ["123456789", new TextEncoder().encode("123456789"), 0xe3069283],
  ["32 zeros", new Uint8Array(32), 0x8a9136aa],
  ["32 x 0xff", new Uint8Array(32).fill(0xff), 0x62a8ab43],
  ["0..31", Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
  ["31..0", Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
];

test("native crc32c: RFC 3720 check values, sync and async", async () => {
  const a = needNative();
  assert.ok(["sse4.2", "armv8-crc", "slicing-by-8"].includes(a.crc32cImpl()), a.crc32cImpl());
  for (const [name, data, want] of RFC3720) {
    assert.equal(bitwise(data), want, `reference: ${name}`);
    assert.equal(a.crc32c(data), want, name);
    assert.equal(await a.crc32cAsync(data), want, `async: ${name}`);
  }
  assert.equal(a.crc32c(new Uint8Array(0)), 0);
});

test("native crc32c equals the bitwise definition and the JS crc at many lengths, alignments and starting values", () => {
  const a = needNative();
  const buf = randomBytes(300_000, "crc-lengths");
  const s = new Stream(9, "crc-cases");
  // Lengths around the 8-byte steps, the 3 x 256 and 3 x 8192 rounds, and beyond; every offset mod 64.
  const lengths = [0, 1, 7, 8, 9, 63, 767, 768, 769, 24575, 24576, 24577, 24576 + 768 + 13, 49152 + 1000];
  for (let i = 0; i < 300; i++) lengths.push(s.nextU32() % (i < 200 ? 4096 : 90_000));
  for (const [i, n] of lengths.entries()) {
    const off = i % 64;
    const x = buf.subarray(off, off + n);
    const start = i % 3 === 0 ? 0 : s.nextU32();
    const want = bitwise(x, start);
    assert.equal(a.crc32c(x, start), want, `length ${n} at offset ${off} from ${start}`);
    assert.equal(jsCrc(x, start), want, `JS: length ${n} at offset ${off}`);
    // Continuing across a split point gives the same as one pass.
    const k = n ? s.nextU32() % n : 0;
    assert.equal(a.crc32c(x.subarray(k), a.crc32c(x.subarray(0, k), start)), want, `split at ${k} of ${n}`);
  }
  // Record-sized buffers (a3b's are 2.5 MiB): against the JS slicing-by-8.
  const big = randomBytes(3 << 20, "crc-big");
  for (const [off, n] of [[0, 3 << 20], [4096, 2654208], [13, (3 << 20) - 13], [1, 1_000_003]]) {
    assert.equal(a.crc32c(big.subarray(off, off + n)), jsCrc(big.subarray(off, off + n)), `${n} bytes at ${off}`);
  }
});

test("native crc32cAsync: many at once, each equal to the synchronous result; any byte view", async () => {
  const a = needNative();
  const bufs = Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i * 7919, `async-${i}`));
  const got = await Promise.all(bufs.map((b, i) => a.crc32cAsync(b.subarray(i % 5))));
  bufs.forEach((b, i) => assert.equal(got[i], jsCrc(b.subarray(i % 5)), `buffer ${i}`));
  const f32 = new Float32Array([1.5, -2, 3e9]);
  assert.equal(await a.crc32cAsync(f32), jsCrc(new Uint8Array(f32.buffer)));
  assert.throws(() => a.crc32cAsync("nope" as never), TypeError);
});

test("native preadCrc32c: the bytes of the file at a position and their crc32c; short at the end; fs-style errors", async () => {
  const a = needNative();
  const dir = mkdtempSync(join(tmpdir(), "moestream-crc-"));
  try {
    const data = randomBytes(200_000, "pread-file");
    const path = join(dir, "f.bin");
    writeFileSync(path, data);
    const fd = openSync(path, "r");
    try {
      for (const [pos, n] of [[0, 4096], [4096, 65536], [12345, 777], [0, 200_000], [199_000, 1000]]) {
        const dst = new Uint8Array(n + 3).subarray(3);
        const r = await a.preadCrc32c(fd, dst, pos);
        assert.equal(r.bytesRead, n);
        assert.deepEqual(dst, data.subarray(pos, pos + n), `bytes at ${pos}`);
        assert.equal(r.crc, bitwise(data.subarray(pos, pos + n)), `crc at ${pos}`);
      }
      // Past the end: short, and the crc covers what was read.
      const dst = new Uint8Array(4096);
      const r = await a.preadCrc32c(fd, dst, 198_000);
      assert.equal(r.bytesRead, 2000);
      assert.equal(r.crc, jsCrc(data.subarray(198_000)));
      assert.deepEqual((await a.preadCrc32c(fd, dst, 500_000)), { bytesRead: 0, crc: 0 });
    } finally {
      closeSync(fd);
    }
    // A descriptor no process has open (a closed one's number may already be reused).
    await assert.rejects(a.preadCrc32c(1 << 30, new Uint8Array(16), 0), (e: NodeJS.ErrnoException) => e.code === "EBADF" && e.syscall === "pread" && /EBADF/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
