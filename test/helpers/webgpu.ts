// The WebGPU device the tests run on: Mesa 25's lavapipe where scripts/lavapipe.sh installed it (CI always), else
// whatever adapter Dawn finds. No adapter fails the test: the WebGPU tests are never skipped.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { openGpuDevice, type GpuDevice } from "../../src/backends/webgpu/device.js";
import { WebGpuBackend } from "../../src/backends/webgpu/webgpu.js";

export const LAVAPIPE_ICD = "/opt/mesa25/lvp_icd.json";

/** The env a child process (the CLI) needs to find lavapipe: the Vulkan loader reads VK_DRIVER_FILES when Dawn starts. */
export function gpuEnv(): NodeJS.ProcessEnv {
  return existsSync(LAVAPIPE_ICD) && !process.env.VK_DRIVER_FILES ? { ...process.env, VK_DRIVER_FILES: LAVAPIPE_ICD } : { ...process.env };
}

let opened: Promise<GpuDevice> | undefined;

/** One device per test process (Dawn's instance is created once; measured: setting VK_DRIVER_FILES before that is enough, no LD_LIBRARY_PATH). */
export function gpuDevice(): Promise<GpuDevice> {
  return (opened ??= (async () => {
    if (existsSync(LAVAPIPE_ICD) && !process.env.VK_DRIVER_FILES) process.env.VK_DRIVER_FILES = LAVAPIPE_ICD;
    const d = await openGpuDevice();
    assert.ok(!("reason" in d), `the WebGPU tests need an adapter (run scripts/lavapipe.sh): ${"reason" in d ? d.reason : ""}`);
    return d as GpuDevice;
  })());
}

/**
 * A backend on the test device; `maxBinding` shrinks the binding size to exercise weights split over buffers;
 * `subgroups: false` runs the matvec's workgroup-memory sums where the device has subgroups.
 */
export async function gpuBackend(opts: { maxBinding?: number; subgroups?: boolean } = {}): Promise<WebGpuBackend> {
  const d = await gpuDevice();
  return new WebGpuBackend(opts.maxBinding ? { ...d, maxBinding: opts.maxBinding } : d, { subgroups: opts.subgroups });
}
