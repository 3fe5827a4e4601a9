// The disk's ceiling for the engine's access pattern: whole expert records read by Node's positioned
// fs reads, in random order, at a fixed number in flight; through the page cache or with O_DIRECT into
// aligned buffers (as the engine reads packs). Run with UV_THREADPOOL_SIZE >= the reads in flight.
// The streaming benches and doctor's disk probe both measure with it.
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

export interface RecordRef {
  file: string;
  position: number;
}

/** Seeded Fisher-Yates (mulberry32), so runs read the same records. */
export function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A buffer O_DIRECT reads into: probe 4 KiB reads at 16-byte steps into an over-allocated one. */
async function alignedBuffer(fh: FileHandle, bytes: number): Promise<Uint8Array> {
  const raw = new Uint8Array(bytes + 4096);
  for (let at = 0; at < 4096; at += 16) {
    try {
      await fh.read(raw, at, 4096, 0);
      return raw.subarray(at, at + bytes);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EINVAL") throw e;
    }
  }
  throw new Error("no O_DIRECT-aligned offset found");
}

/**
 * Read every record (recordBytes each) with `inFlight` workers; returns GB/s (1e9 bytes) over the wall time, p50/p99
 * and mean per-read ms.
 */
export async function readRecords(records: readonly RecordRef[], recordBytes: number, inFlight: number, direct = false): Promise<{ gbps: number; p50Ms: number; p99Ms: number; meanMs: number; bytes: number }> {
  const handles = new Map<string, FileHandle>();
  const flags = direct ? constants.O_RDONLY | constants.O_DIRECT : constants.O_RDONLY;
  for (const r of records) if (!handles.has(r.file)) handles.set(r.file, await open(r.file, flags));
  const lat: number[] = [];
  let next = 0;
  const worker = async (buf: Uint8Array) => {
    while (next < records.length) {
      const r = records[next++];
      const fh = handles.get(r.file)!;
      const t = performance.now();
      for (let got = 0; got < recordBytes; ) {
        const n = (await fh.read(buf, got, recordBytes - got, r.position + got)).bytesRead;
        if (n === 0) throw new Error(`${r.file}: short read at ${r.position + got}`);
        got += n;
      }
      lat.push(performance.now() - t);
    }
  };
  let s: number;
  try {
    // Buffers first: finding an O_DIRECT-aligned offset takes up to 256 failed reads, which must not count as reading.
    const bufs: Uint8Array[] = [];
    for (let w = 0; w < inFlight; w++) bufs.push(direct ? await alignedBuffer(handles.values().next().value!, recordBytes) : new Uint8Array(recordBytes));
    const t0 = performance.now();
    await Promise.all(bufs.map(worker));
    s = (performance.now() - t0) / 1000;
  } finally {
    for (const fh of handles.values()) await fh.close();
  }
  lat.sort((a, b) => a - b);
  const bytes = records.length * recordBytes;
  const meanMs = lat.reduce((a, b) => a + b, 0) / lat.length;
  return { gbps: bytes / s / 1e9, p50Ms: lat[Math.floor(lat.length / 2)], p99Ms: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))], meanMs, bytes };
}
