// The resident/stream gate and the expert cache size, decided once from bytes and the memory budget.
import { totalmem } from "node:os";
import { formatBytes } from "../util/bytes.js";
import { UsageError } from "../util/errors.js";
import type { EngineConfig } from "./config.js";

export interface ExpertIOInputs {
  expertBytes: number;
  denseBytes: number;
  kvBytes: number;
  /** One expert record (a cache slot). */
  slotBytes: number;
  /** Experts one token routes to per layer: the fewest slots that can work. */
  minSlots: number;
}

export interface ExpertIODecision {
  mode: "resident" | "stream";
  /** Bytes of expert cache (all experts when resident). */
  cacheBytes: number;
  /** One line saying why, printed once by the CLI. */
  reason: string;
}

/** Stream when experts exceed this share of the budget (the rest is dense weights, KV, activations, OS). */
export const STREAM_THRESHOLD = 0.75;
/** Kept free of the budget when deriving the cache: activations, buffers, the JS heap. */
const HEADROOM = (budget: number) => Math.max(256 * 2 ** 20, 0.1 * budget);

const gib = formatBytes;

export function decideExpertIO(cfg: Pick<EngineConfig, "expertIo" | "memBudget" | "expertCache">, x: ExpertIOInputs): ExpertIODecision {
  const budget = cfg.memBudget || totalmem();
  const budgetWhy = cfg.memBudget ? `--mem-budget ${gib(budget)}` : `physical RAM ${gib(budget)}`;
  let mode: "resident" | "stream";
  let why: string;
  if (cfg.expertIo === "auto") {
    mode = x.expertBytes > STREAM_THRESHOLD * budget ? "stream" : "resident";
    why = `experts ${gib(x.expertBytes)} ${mode === "stream" ? ">" : "<="} ${STREAM_THRESHOLD} x ${budgetWhy}`;
  } else {
    mode = cfg.expertIo;
    why = `--expert-io ${cfg.expertIo}`;
  }
  if (mode === "resident") return { mode, cacheBytes: x.expertBytes, reason: `experts resident (${why})` };

  const minBytes = x.minSlots * x.slotBytes;
  let cache: number;
  let cacheWhy: string;
  if (cfg.expertCache) {
    cache = cfg.expertCache;
    cacheWhy = `--expert-cache ${gib(cache)}`;
  } else {
    cache = Math.max(minBytes, budget - x.denseBytes - x.kvBytes - HEADROOM(budget));
    cacheWhy = `budget - dense ${gib(x.denseBytes)} - KV ${gib(x.kvBytes)} - headroom`;
  }
  cache = Math.min(cache, Math.ceil(x.expertBytes / x.slotBytes) * x.slotBytes);
  if (cache < minBytes) {
    throw new UsageError("expert_budget", `expert cache of ${gib(cache)} holds fewer than the ${x.minSlots} experts one token needs per layer (${gib(minBytes)})`);
  }
  return { mode, cacheBytes: cache, reason: `experts streamed from disk (${why}); cache ${gib(cache)} = ${Math.floor(cache / x.slotBytes)} slots (${cacheWhy})` };
}
