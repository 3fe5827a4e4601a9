// The resident/stream gate and the expert cache size, decided once from bytes and the memory budget.
import type { ExpertTypeBytes } from "./expert-bytes.js";
import { formatBytes } from "../util/bytes.js";
import { UsageError } from "../util/errors.js";
import type { EngineConfig } from "./config.js";
import type { MemoryBudget } from "./memory-limit.js";

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
  /** What the process holds before this model (the runtime, the tokenizer, other models): the budget covers it too. */
  heldBytes?: number;
  /** Prefetch staging buffers, allocated only when streaming. */
  stagingBytes?: number;
}

export interface ExpertIODecision {
  mode: "resident" | "stream";
  /** Bytes of expert cache (all experts when resident). */
  cacheBytes: number;
  /** The budget the decision was made against, and the limit that set it. */
  budget: MemoryBudget;
  /** One line saying why, printed once by the CLI. */
  reason: string;
  /** One routed expert's bytes by quant type (set by the loader, which knows the parts). */
  perExpert?: ExpertTypeBytes[];
  /** The GPU expert tier (--backend webgpu): its slots, their bytes, and whether every expert has one. */
  gpu?: { slots: number; bytes: number; resident: boolean };
}

/** Stream when experts exceed this share of the budget (the rest is dense weights, KV, activations, OS). */
export const STREAM_THRESHOLD = 0.75;
/** Kept free of the budget when deriving the cache: activations, I/O buffers, JS heap growth, the kernel's share. */
export const HEADROOM = (budget: number) => Math.max(256 * 2 ** 20, 0.1 * budget);

const gib = formatBytes;

export function decideExpertIO(cfg: Pick<EngineConfig, "expertIo" | "expertCache">, x: ExpertIOInputs, budget: MemoryBudget): ExpertIODecision {
  const B = budget.bytes;
  // Where the backend keeps its own copy of each cached expert, the budget pays for both: every figure
  // below is host cache bytes, and the copy takes as much again.
  const copies = x.copies ?? 1;
  const held = x.heldBytes ?? 0;
  const twice = copies > 1 ? `, each cached expert held ${copies}x (host + backend copy)` : "";
  const experts = `experts ${gib(x.expertBytes)}${copies > 1 ? ` x ${copies}` : ""}`;
  // Everything but the experts: it stays inside the budget whichever way they go.
  const fixed = x.denseBytes + x.kvBytes + held + HEADROOM(B);
  let mode: "resident" | "stream";
  let why: string;
  if (cfg.expertIo !== "auto") {
    mode = cfg.expertIo;
    why = `--expert-io ${cfg.expertIo}`;
  } else if (copies * x.expertBytes > STREAM_THRESHOLD * B) {
    mode = "stream";
    why = `${experts} > ${STREAM_THRESHOLD} x ${budget.why}`;
  } else if (copies * x.expertBytes + fixed > B) {
    mode = "stream";
    why = `${experts} + dense ${gib(x.denseBytes)} + KV ${gib(x.kvBytes)} + held ${gib(held)} + headroom > ${budget.why}`;
  } else {
    mode = "resident";
    why = `${experts} <= ${STREAM_THRESHOLD} x ${budget.why}`;
  }
  if (mode === "resident") return { mode, cacheBytes: x.expertBytes, budget, reason: `experts resident (${why})` };

  const minBytes = x.minSlots * x.slotBytes;
  const staging = x.stagingBytes ?? 0;
  // Dense weights, KV and the fewest experts a token needs, with no headroom at all: past the budget, the process
  // would outgrow its limit (a cgroup kills it) — refused here, naming the figures.
  const floor = x.denseBytes + x.kvBytes + held + copies * minBytes;
  if (!cfg.expertCache && floor > B) {
    throw new UsageError("memory_budget", `dense ${gib(x.denseBytes)} + KV ${gib(x.kvBytes)} + held ${gib(held)} + the ${x.minSlots} experts one token needs (${gib(copies * minBytes)}) = ${gib(floor)} > ${budget.why}: the model cannot run in this memory (raise --mem-budget or the limit, or lower --ctx-size)`);
  }
  let cache: number;
  let cacheWhy: string;
  if (cfg.expertCache) {
    cache = cfg.expertCache / copies;
    cacheWhy = `--expert-cache ${gib(cfg.expertCache)}${twice}`;
  } else {
    cache = Math.max(minBytes, (B - fixed - staging) / copies);
    const stagingWhy = staging ? ` - prefetch staging ${gib(staging)}` : "";
    cacheWhy = `budget - dense ${gib(x.denseBytes)} - KV ${gib(x.kvBytes)} - held ${gib(held)}${stagingWhy} - headroom${twice}`;
  }
  cache = Math.min(cache, Math.ceil(x.expertBytes / x.slotBytes) * x.slotBytes);
  if (cache < minBytes) {
    throw new UsageError("expert_budget", `expert cache of ${gib(cache)} holds fewer than the ${x.minSlots} experts one token needs per layer (${gib(minBytes)})`);
  }
  return { mode, cacheBytes: cache, budget, reason: `experts streamed from disk (${why}); cache ${gib(cache)} = ${Math.floor(cache / x.slotBytes)} slots (${cacheWhy})` };
}
