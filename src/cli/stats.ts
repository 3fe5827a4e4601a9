// The one-line summary printed after generation.
import type { ExpertPhaseStats, GenerationStats } from "../engine/session.js";

const rate = (n: number, ms: number) => (ms > 0 ? ((n * 1000) / ms).toFixed(2) : "-");

const pct = (n: number, of: number) => ((100 * n) / Math.max(1, of)).toFixed(1);

function experts(name: string, p: ExpertPhaseStats, tokens: number, phaseMs: number): string {
  const total = p.hits + p.misses;
  const gpu = p.gpuHits + p.gpuMisses + p.gpuHostRuns;
  if (total === 0 && gpu === 0) return `${name} -`;
  const mib = (p.bytesRead + p.prefetchBytes) / 2 ** 20 / Math.max(1, tokens);
  const pf = p.prefetchIssued ? `, prefetch ${p.prefetchUsed}/${p.prefetchIssued} used` : "";
  const io = p.reads ? `, io wait ${((100 * p.ioWaitMs) / Math.max(1e-9, phaseMs)).toFixed(0)}% (read p50 ${p.readP50Ms.toFixed(1)} ms, p99 ${p.readP99Ms.toFixed(1)} ms)` : "";
  // With a GPU tier every lookup ends in one of three places: the device, the host cache, the disk; a split tier
  // also says how many ran on the CPU (host hits and disk reads count their lookups too).
  const up = p.uploadMs > 0 ? `, upload ${(p.uploadBytes / p.uploadMs / 1e6).toFixed(2)} GB/s` : "";
  const cpu = p.gpuHostRuns ? ` (cpu run ${pct(p.gpuHostRuns, gpu)}%${p.gpuAdmits ? `, ${p.gpuAdmits} admitted` : ""})` : "";
  const hit = gpu ? `gpu hit ${pct(p.gpuHits, gpu)}%${cpu} host hit ${pct(p.hits, gpu)}% disk ${pct(p.misses, gpu)}%${up}` : `hit ${pct(p.hits, total)}%`;
  return `${name} ${hit}${pf} ${mib.toFixed(2)} MiB/tok${io}`;
}

export function formatStats(s: GenerationStats): string {
  const decoded = Math.max(0, s.generatedTokens - 1); // the first token comes from the prompt's logits
  const parts = [
    `prompt ${s.promptTokens} tok ${rate(s.promptTokens, s.promptMs)} tok/s`,
    `decode ${s.generatedTokens} tok ${rate(decoded, s.decodeMs)} tok/s`,
    `experts ${s.expertIO}: ${experts("prefill", s.experts.prefill, s.promptTokens, s.promptMs)}, ${experts("decode", s.experts.decode, decoded, s.decodeMs)}`,
    s.finishReason,
  ];
  return parts.join(" | ");
}
