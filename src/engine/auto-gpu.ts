// --backend auto and the GPU: auto runs a model on the WebGPU backend when a hardware adapter is here, the
// backend has every op and weight type the model needs, and every expert fits on the GPU (resident). Otherwise
// (a software adapter, a missing op, experts that would stream through the GPU tier, which the CPU backends run
// faster today) it loads on the CPU, with the reason as one warning line when a GPU was there.
import { existsSync, readdirSync } from "node:fs";
import { isSoftwareAdapter, openGpuDevice, type GpuDevice } from "../backends/webgpu/device.js";

/**
 * Whether a GPU may be here, cheaply, before loading Dawn (which takes ~0.2 s and writes its own errors to stderr
 * when it finds none): on Linux a GPU device node (/dev/nvidia0, /dev/dri/renderD*); elsewhere yes (Metal, D3D12).
 */
export function gpuLikelyPresent(): boolean {
  if (process.platform !== "linux") return true;
  if (existsSync("/dev/nvidia0")) return true;
  try {
    return readdirSync("/dev/dri").some((f) => f.startsWith("renderD"));
  } catch {
    return false;
  }
}

/** Set once a probe found no hardware adapter: later loads in this process do not probe again. */
let noGpu = false;

/** A hardware GPU device for auto, or undefined (no device node, no package, no adapter, or a software one). */
export async function autoGpuDevice(): Promise<GpuDevice | undefined> {
  if (noGpu || !gpuLikelyPresent()) return undefined;
  const gpu = await openGpuDevice();
  if (!("reason" in gpu) && !isSoftwareAdapter(gpu.adapterName)) return gpu;
  if (!("reason" in gpu)) gpu.device.destroy();
  noGpu = true;
  return undefined;
}

/** Thrown inside a load that auto started on the GPU: the model is better off on the CPU, for this reason. */
export class AutoGpuDeclined extends Error {}
