// How big the GPU expert tier is (--gpu-expert-cache, or auto), and its slots on the device.
// WebGPU tells no memory size, so auto starts from what the host may cache (the host expert cache's bytes:
// every expert when they are resident) and lets the device answer: the slots are allocated under an
// out-of-memory error scope and halved while it refuses them, never below one layer's top-k. The tier's
// bytes are device memory, outside the host memory budget (a discrete GPU's; on a unified-memory device
// such as lavapipe or a Mac they come out of the same RAM: give --gpu-expert-cache there).
import type { WebGpuBackend } from "../backends/webgpu/webgpu.js";
import { GpuExpertSlots } from "../backends/webgpu/expert-tier.js";
import { formatBytes } from "../util/bytes.js";
import { UsageError } from "../util/errors.js";
import type { EngineConfig } from "./config.js";

export interface GpuTierPlan {
  slots: GpuExpertSlots;
  /** Every expert has a slot: they are uploaded once, at load, and the host keeps no cache of them. */
  resident: boolean;
  /** One line: the size and why. */
  reason: string;
}

export async function allocGpuTier(be: WebGpuBackend, cfg: Pick<EngineConfig, "gpuExpertCache" | "cpuMoe">, x: { slotBytes: number; totalExperts: number; minSlots: number; hostCacheBytes: number; layerExperts: number }): Promise<GpuTierPlan> {
  const { slotBytes, totalExperts, minSlots } = x;
  if (cfg.cpuMoe) {
    // No expert slots: every routed expert runs on the CPU backend beside the GPU (a ring of one slot, never used).
    const slots = await GpuExpertSlots.allocate(be, slotBytes, 0, { min: 0, halve: false, ringSlots: 0, what: "--cpu-moe" });
    return { slots, resident: false, reason: "no GPU expert tier (--cpu-moe)" };
  }
  const given = cfg.gpuExpertCache > 0;
  const asked = given ? Math.floor(cfg.gpuExpertCache / slotBytes) : Math.max(minSlots, Math.floor(x.hostCacheBytes / slotBytes));
  if (given && asked < minSlots) {
    throw new UsageError("expert_budget", `--gpu-expert-cache ${formatBytes(cfg.gpuExpertCache)} holds ${asked} slots of ${formatBytes(slotBytes)}, and one layer's active experts need ${minSlots}: give at least ${formatBytes(minSlots * slotBytes)}`);
  }
  const want = Math.min(totalExperts, asked);
  const what = given ? `--gpu-expert-cache ${formatBytes(cfg.gpuExpertCache)}` : "the GPU expert tier (auto)";
  // Ring: two tokens' worth of one layer's experts in flight before a submit must free it.
  // All resident: a layer's experts fill slots in order, so arenas of whole layers keep each layer in one binding
  // (its routing and experts then stay on the device: webgpu routeOnDevice).
  const slots = await GpuExpertSlots.allocate(be, slotBytes, want, { min: minSlots, halve: !given, ringSlots: 2 * minSlots, what, align: want >= totalExperts ? x.layerExperts : 1 });
  const resident = slots.nSlots >= totalExperts;
  const why = given ? what : `auto: the host cache's ${formatBytes(x.hostCacheBytes)}${slots.nSlots < want ? `, halved to what ${be.adapterName} accepted` : ""}`;
  const reason = `GPU expert tier ${formatBytes(slots.nSlots * slotBytes)} = ${slots.nSlots} of ${totalExperts} experts (${why})${resident ? ": all resident on the GPU" : ""}`;
  return { slots, resident, reason };
}
