// The one-line summary printed after generation.
import type { GenerationStats } from "../engine/session.js";

export function formatStats(s: GenerationStats): string {
  const rate = (n: number, ms: number) => (ms > 0 ? ((n * 1000) / ms).toFixed(2) : "-");
  return `prompt ${s.promptTokens} tok ${rate(s.promptTokens, s.promptMs)} tok/s | decode ${s.generatedTokens} tok ${rate(Math.max(0, s.generatedTokens - 1), s.decodeMs)} tok/s | ${s.finishReason}`;
}
