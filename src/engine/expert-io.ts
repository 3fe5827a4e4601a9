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
  /** Copies of each cached expert: 2 where the backend binds them into memory of its own (wasm), else 1. */
  copies?: number;
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
  // Where the backend keeps its own copy of each cached expert, the budget pays for both: every figure
  // below is host cache bytes, and the copy takes as much again.
  const copies = x.copies ?? 1;
  const twice = copies > 1 ? `, each cached expert held ${copies}x (host + backend copy)` : "";
  const budgetWhy = cfg.memBudget ? `--mem-budget ${gib(budget)}` : `physical RAM ${gib(budget)}`;
  let mode: "resident" | "stream";
  let why: string;
  if (cfg.expertIo === "auto") {
    mode = copies * x.expertBytes > STREAM_THRESHOLD * budget ? "stream" : "resident";
    why = `experts ${gib(x.expertBytes)}${copies > 1 ? ` x ${copies}` : ""} ${mode === "stream" ? ">" : "<="} ${STREAM_THRESHOLD} x ${budgetWhy}`;
  } else {
    mode = cfg.expertIo;
    why = `--expert-io ${cfg.expertIo}`;
  }
  if (mode === "resident") return { mode, cacheBytes: x.expertBytes, reason: `experts resident (${why})` };

  const minBytes = x.minSlots * x.slotBytes;
  let cache: number;
  let cacheWhy: string;
  if (cfg.expertCache) {
    cache = cfg.expertCache / copies;
    cacheWhy = `--expert-cache ${gib(cfg.expertCache)}${twice}`;
  } else {
    cache = Math.max(minBytes, (budget - x.denseBytes - x.kvBytes - HEADROOM(budget)) / copies);
    cacheWhy = `budget - dense ${gib(x.denseBytes)} - KV ${gib(x.kvBytes)} - headroom${twice}`;
  }
  cache = Math.min(cache, Math.ceil(x.expertBytes / x.slotBytes) * x.slotBytes);
  if (cache < minBytes) {
    throw new UsageError("expert_budget", `expert cache of ${gib(cache)} holds fewer than the ${x.minSlots} experts one token needs per layer (${gib(minBytes)})`);
  }
  return { mode, cacheBytes: cache, reason: `experts streamed from disk (${why}); cache ${gib(cache)} = ${Math.floor(cache / x.slotBytes)} slots (${cacheWhy})` };
}
