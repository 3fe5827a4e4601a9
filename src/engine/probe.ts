// doctor's machine probe, a few seconds: memory read bandwidth as the decode kernels see it (all compute
// threads reading a buffer well past the caches, on huge pages as the engine holds weights) and random reads of
// expert-record size at the engine's reads in flight, O_DIRECT where the filesystem allows (what packs use).
import { constants } from "node:fs";
import { open, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { loadNativeAddon } from "../backends/cpu/native-addon.js";
import { NativeBackend, nativeAvailable } from "../backends/cpu/native.js";
import { readRecords, shuffled, type RecordRef } from "../util/disk-read.js";

export interface MemoryBandwidth {
  /** GB/s (1e9 bytes), the median of the reps: the machine as loaded now, not its best moment. */
  gbps: number;
  best: number;
  threads: number;
  how: string;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Reads `bytes` (filled: untouched pages all map one zero page) `reps` times with `threads` threads. */
export function probeMemoryBandwidth(threads = availableParallelism(), bytes = 256 * 2 ** 20, reps = 9): MemoryBandwidth {
  const addon = nativeAvailable() ? loadNativeAddon() : undefined;
  const runs: number[] = [];
  if (addon) {
    const before = addon.getThreads();
    const be = new NativeBackend({ threads });
    const buf = be.allocHost(bytes).fill(1);
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      addon.memRead(buf);
      runs.push(bytes / ((performance.now() - t0) / 1000) / 1e9);
    }
    addon.setThreads(before);
    return { gbps: median(runs), best: Math.max(...runs), threads: be.threads, how: `native read of ${bytes / 2 ** 20} MiB by ${be.threads} threads, median of ${reps}` };
  }
  // Without the addon the engine runs wasm or scalar kernels, far from this limit; one JS thread still says what memory gives.
  const words = new Float64Array(bytes / 8).fill(1);
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    let s = 0;
    for (let i = 0; i < words.length; i += 4) s += words[i] + words[i + 1] + words[i + 2] + words[i + 3];
    if (s < 0) throw new Error("unreachable");
    runs.push(bytes / ((performance.now() - t0) / 1000) / 1e9);
  }
  return { gbps: median(runs), best: Math.max(...runs), threads: 1, how: `JS read of ${bytes / 2 ** 20} MiB by 1 thread (no native addon), median of ${reps}` };
}

export interface DiskProbe {
  /**
   * GB/s of whole records read at random positions, `inFlight` at a time, over the probe's wall time: on a busy
   * machine this counts the JS thread's delays in issuing the next read, as the engine's reads see them.
   */
  gbps: number;
  /** inFlight x record / mean read latency (Little's law): what the disk itself gives, delays in issuing left out. */
  diskGBps: number;
  p50Ms: number;
  p99Ms: number;
  recordBytes: number;
  inFlight: number;
  reads: number;
  direct: boolean;
  how: string;
}

/** O_DIRECT where the filesystem takes it (tmpfs and some others refuse it: then the page cache, said so). */
async function directWorks(file: string): Promise<boolean> {
  try {
    await (await open(file, constants.O_RDONLY | constants.O_DIRECT)).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Random record reads spread over `files` (the model's expert data), 4 KiB-aligned positions, about `totalBytes`
 * in all (at least 2 rounds of `inFlight`). Positions are seeded: runs read the same places.
 */
export async function probeDisk(files: readonly string[], recordBytes: number, inFlight: number, totalBytes = 192 * 2 ** 20, seed = 1): Promise<DiskProbe> {
  const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
  const usable = files.map((file, i) => ({ file, slots: Math.floor((sizes[i] - recordBytes) / 4096) })).filter((f) => f.slots > 0);
  if (usable.length === 0) throw new RangeError(`no file of ${files.join(", ")} holds a ${recordBytes}-byte record`);
  const n = Math.max(2 * inFlight, Math.ceil(totalBytes / recordBytes));
  // A fixed grid of candidate positions, shuffled by seed; spread over every file.
  const refs: RecordRef[] = [];
  const grid = Array.from({ length: n }, (_, i) => i);
  for (const i of shuffled(grid, seed)) {
    const f = usable[i % usable.length];
    const slot = Math.floor(((i * 2654435761) % 2 ** 32) / 2 ** 32 * f.slots);
    refs.push({ file: f.file, position: slot * 4096 });
  }
  const direct = await directWorks(usable[0].file);
  const r = await readRecords(refs, recordBytes, inFlight, direct);
  const how = `${refs.length} random ${(recordBytes / 2 ** 20).toFixed(2)} MiB reads, ${inFlight} in flight, ${direct ? "O_DIRECT" : "through the page cache (O_DIRECT refused here: cached pages read at memory speed)"}`;
  const diskGBps = (inFlight * recordBytes) / (r.meanMs / 1000) / 1e9;
  return { gbps: r.gbps, diskGBps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, recordBytes, inFlight, reads: refs.length, direct, how };
}
