// The memory plan of a model from its sizes alone: context, KV, prefetch staging, then resident or streamed
// experts and the cache size. loadModel and doctor both call it, so doctor's forecast names the engine's own
// decision before any weight is read (doctor from a header, even a remote one).
import type { ModelInfo } from "../models/model.js";
import { formatBytes } from "../util/bytes.js";
import { UsageError } from "../util/errors.js";
import type { EngineConfig } from "./config.js";
import { autoContextSize, type AutoContext } from "./context-size.js";
import { decideExpertIO, type ExpertIODecision } from "./expert-io.js";
import { memoryBudget, type MemoryBudget } from "./memory-limit.js";

export interface PlanInputs {
  info: ModelInfo;
  /** The per-sequence state (KV cache) of n tokens. */
  stateBytes(nCtx: number): number;
  denseBytes: number;
  /** All routed experts' records. */
  expertBytes: number;
  /** The widest record (a cache slot). */
  slotBytes: number;
  /** Copies of each cached expert (2 where the backend keeps its own). */
  copies: number;
  /** What the process holds before the model's weights. */
  heldBytes: number;
}

export interface MemoryPlan {
  budget: MemoryBudget;
  ctx: AutoContext;
  kvBytes: number;
  stagingBytes: number;
  decision: ExpertIODecision;
}

export function planMemory(cfg: EngineConfig, x: PlanInputs, budget: MemoryBudget = memoryBudget(cfg.memBudget)): MemoryPlan {
  const ctx = cfg.ctxSize ? { ctxSize: cfg.ctxSize, reason: `context ${cfg.ctxSize} tokens (--ctx-size)` } : autoContextSize(x.info.nCtxTrain, x.stateBytes, budget.bytes, x.denseBytes);
  const kvBytes = x.stateBytes(ctx.ctxSize);
  if (kvBytes > budget.bytes) {
    throw new UsageError("ctx_too_large", `--ctx-size ${ctx.ctxSize} needs ${formatBytes(kvBytes)} of per-sequence state (KV cache), more than the memory budget (${budget.why}); lower --ctx-size`);
  }
  const stagingBytes = cfg.prefetch ? 2 * x.info.nExpertUsed * cfg.prefetchDepth * x.slotBytes : 0; // prefetchSlots x depth (load.ts)
  const decision = decideExpertIO(cfg, {
    expertBytes: x.expertBytes, denseBytes: x.denseBytes, kvBytes, slotBytes: x.slotBytes, minSlots: x.info.nExpertUsed, copies: x.copies, heldBytes: x.heldBytes, stagingBytes,
  }, budget);
  return { budget, ctx, kvBytes, stagingBytes, decision };
}
