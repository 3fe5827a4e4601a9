// The stats line after generation: with a GPU expert tier, each phase says where its lookups ended (device,
// host cache, disk) and the upload rate; without one, the host cache's hit rate as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatStats } from "../../src/cli/stats.js";
import type { ExpertPhaseStats, GenerationStats } from "../../src/engine/session.js";

const phase = (p: Partial<ExpertPhaseStats>): ExpertPhaseStats => ({
  hits: 0, misses: 0, prefetched: 0, bytesRead: 0, prefetchIssued: 0, prefetchUsed: 0, prefetchWasted: 0, prefetchBytes: 0,
  reads: 0, readP50Ms: 0, readP99Ms: 0, ioWaitMs: 0, gpuHits: 0, gpuMisses: 0, gpuHostRuns: 0, gpuAdmits: 0, uploadBytes: 0, uploadMs: 0, ...p,
});
const stats = (prefill: ExpertPhaseStats, decode: ExpertPhaseStats): GenerationStats => ({
  promptTokens: 4, generatedTokens: 3, promptMs: 100, decodeMs: 200, finishReason: "length", expertIO: "stream", experts: { prefill, decode },
});

test("stats line: a GPU tier's lookups split into gpu / host / disk shares and the upload rate; the host cache's hit rate without one", () => {
  // 40 lookups: 30 on the device, 10 missed it; of those the host cache had 6, the disk gave 4. 1e9 bytes in 500 ms = 2 GB/s.
  const line = formatStats(stats(phase({ gpuHits: 30, gpuMisses: 10, hits: 6, misses: 4, uploadBytes: 1e9, uploadMs: 500 }), phase({ gpuHits: 24 })));
  assert.match(line, /experts stream: prefill gpu hit 75\.0% host hit 15\.0% disk 10\.0%, upload 2\.00 GB\/s /);
  assert.match(line, /decode gpu hit 100\.0% host hit 0\.0% disk 0\.0% 0\.00 MiB\/tok/, "no upload: no rate");
  assert.match(formatStats(stats(phase({ hits: 3, misses: 1 }), phase({}))), /experts stream: prefill hit 75\.0% .*, decode -/);
});

test("stats line: a split tier also says what share of lookups ran on the CPU (those count as host lookups too)", () => {
  // 40 lookups: 20 on the device, 4 uploaded, 16 run on the CPU; the 20 host lookups: 18 cached, 2 from disk.
  const line = formatStats(stats(phase({ gpuHits: 20, gpuMisses: 4, gpuHostRuns: 16, hits: 18, misses: 2 }), phase({})));
  assert.match(line, /prefill gpu hit 50\.0% \(cpu run 40\.0%\) host hit 45\.0% disk 5\.0%/);
  // Admissions (uploads after a CPU run, not lookups) are counted apart.
  assert.match(formatStats(stats(phase({ gpuHits: 20, gpuMisses: 4, gpuHostRuns: 16, gpuAdmits: 3, hits: 18, misses: 2 }), phase({}))), /prefill gpu hit 50\.0% \(cpu run 40\.0%, 3 admitted\) host hit/);
});
