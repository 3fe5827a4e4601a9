// The committed wasm kernels (src/backends/wasm/kernels.wasm.ts) are what wasm/assembly/kernels.ts builds to:
// rebuilding with the pinned AssemblyScript gives the same bytes, so the artefact never drifts from its source.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { KERNELS_SHARED_WASM_BASE64, KERNELS_WASM_BASE64 } from "../../src/backends/wasm/kernels.wasm.js";

const ASC = resolve(import.meta.dirname, "..", "..", "node_modules", "assemblyscript", "bin", "asc.js");

test("kernels.wasm.ts is fresh (npm run build:wasm)", { skip: !existsSync(ASC) && "assemblyscript not installed" }, async () => {
  // @ts-expect-error: a plain .mjs script without typings
  const build = (await import("../../scripts/build-wasm.mjs")) as { compileKernels(): { single: Buffer; shared: Buffer } };
  const fresh = build.compileKernels();
  const stale = "src/backends/wasm/kernels.wasm.ts is stale: run npm run build:wasm";
  assert.ok(Buffer.from(KERNELS_WASM_BASE64, "base64").equals(fresh.single), stale);
  assert.ok(Buffer.from(KERNELS_SHARED_WASM_BASE64, "base64").equals(fresh.shared), stale);
});
