// Prints the WebGPU adapter Dawn finds (on lavapipe when scripts/lavapipe.sh installed it) or exits 1 saying why.
// CI runs it so a machine without a usable adapter fails before the tests, not inside them.
import { existsSync } from "node:fs";
const icd = `${process.env.LAVAPIPE_DIR ?? "/opt/mesa25"}/lvp_icd.json`;
// The Vulkan loader reads VK_DRIVER_FILES when Dawn creates its instance, so setting it here is early enough.
if (!process.env.VK_DRIVER_FILES && existsSync(icd)) process.env.VK_DRIVER_FILES = icd;
let webgpu;
try {
  webgpu = await import("webgpu");
} catch (e) {
  console.error(`webgpu-adapter: the webgpu package is not installed (${e.message})`);
  process.exit(1);
}
const adapter = await webgpu.create([]).requestAdapter();
if (!adapter) {
  console.error(`webgpu-adapter: Dawn found no adapter (VK_DRIVER_FILES=${process.env.VK_DRIVER_FILES ?? "unset"}); run scripts/lavapipe.sh`);
  process.exit(1);
}
const i = adapter.info;
console.log(`webgpu adapter: ${i.vendor} ${i.architecture} ${i.device} ${i.description}; maxStorageBufferBindingSize ${adapter.limits.maxStorageBufferBindingSize}; shader-f16 ${adapter.features.has("shader-f16")}`);
