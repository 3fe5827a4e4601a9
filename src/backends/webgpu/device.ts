/// <reference types="@webgpu/types" />
// Opening a WebGPU device: in a browser through navigator.gpu, under Node through Dawn (the optional `webgpu`
// package). No adapter, or no package, is an answer with a reason, not an exception: the caller decides.
// On Linux without a GPU, Mesa's lavapipe gives Dawn a software device: run scripts/lavapipe.sh and set
// VK_DRIVER_FILES=/opt/mesa25/lvp_icd.json (the Vulkan loader reads it when Dawn starts).

export interface GpuDevice {
  readonly device: GPUDevice;
  /** e.g. "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)" or "nvidia-h100-80gb-hbm3". */
  readonly adapterName: string;
  /** Largest storage binding: weights bigger than it are split (lavapipe 128 MiB, an H100 2 GiB). */
  readonly maxBinding: number;
  readonly maxBuffer: number;
  /** The device has the subgroups feature (WGSL subgroupAdd: the matvec's sums). */
  readonly subgroups: boolean;
  /** WGSL's packed 4x8-bit integer dot products (dot4I8Packed, pack4xI8): the intDot matvec readers need them. */
  readonly int8Dot: boolean;
  /** The device has the timestamp-query feature (benches time their passes with it). */
  readonly timestamps: boolean;
  /** The GPU object itself: dawn.node's device must not outlive it (keep it reachable). */
  readonly gpu: GPU;
}

/** Software rasterisers that present as adapters: slower than the CPU backends, never picked by auto. */
export function isSoftwareAdapter(name: string): boolean {
  return /llvmpipe|lavapipe|softpipe|swiftshader|basic render|warp/i.test(name);
}

/**
 * Dawn's flags under Node (create(): enable-dawn-features=..., disable-dawn-features=...). A browser guards pages from
 * each other's shaders; this process runs only its own kernels, each tested against the scalar reference, so it
 * drops what that guard costs: the bounds clamp Dawn adds to every buffer access (robustness: 1.9x on decode
 * attention, 1.15x on a 2x768x2048 Q4_K gate+up, H100 2026-12-06), the zeroing of workgroup memory at every
 * workgroup's start, and the coarsening of timestamps (to 21.8 µs there, which hid what each kernel costs).
 */
export const DEFAULT_DAWN_FLAGS: readonly string[] = [
  "enable-dawn-features=disable_robustness,disable_workgroup_init",
  "disable-dawn-features=timestamp_quantization",
];
let dawnFlags: readonly string[] = DEFAULT_DAWN_FLAGS;
/** Benches: the Dawn flags later devices open with (toggles compared in one run). */
export function setDawnFlags(flags: readonly string[]): void {
  dawnFlags = [...flags];
}

/** A device, or why there is none. */
export async function openGpuDevice(): Promise<GpuDevice | { reason: string }> {
  let gpu: GPU | undefined = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    try {
      const dawn = (await import("webgpu")) as { create(flags: string[]): GPU };
      gpu = dawn.create([...dawnFlags]);
    } catch (e) {
      return { reason: `the optional 'webgpu' package (Dawn for Node) is not installed or does not load here: ${(e as Error).message.split("\n")[0]}` };
    }
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return { reason: "no WebGPU adapter found (no GPU driver Dawn accepts; on Linux without a GPU: scripts/lavapipe.sh, then VK_DRIVER_FILES=/opt/mesa25/lvp_icd.json)" };
  const l = adapter.limits;
  const timestamps = adapter.features.has("timestamp-query");
  const subgroups = adapter.features.has("subgroups");
  const device = await adapter.requestDevice({
    requiredFeatures: [...(timestamps ? ["timestamp-query" as GPUFeatureName] : []), ...(subgroups ? ["subgroups" as GPUFeatureName] : [])],
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(l.maxStorageBuffersPerShaderStage, 10),
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    },
  });
  const info = adapter.info;
  const adapterName = info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") || "unknown adapter";
  // Binding sizes must be multiples of 4; keep a 256-byte margin so offsets stay aligned.
  const maxBinding = Math.floor(Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize) / 256) * 256;
  const int8Dot = gpu.wgslLanguageFeatures?.has("packed_4x8_integer_dot_product") ?? false;
  return { device, adapterName, maxBinding, maxBuffer: l.maxBufferSize, timestamps, subgroups, int8Dot, gpu };
}
