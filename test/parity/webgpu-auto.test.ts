// --backend auto with a GPU (lavapipe stands in for one: loadAuto is given its device, as auto is given a hardware
// one): the model runs on webgpu when it runs every op there and every expert sits on the GPU; otherwise it loads
// on the CPU with one warning line saying why (an op the GPU lacks, experts that would stream).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadAuto } from "../../src/engine/load.js";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/config.js";
import { smallVocabModel } from "../helpers/models.js";
import { gpuDevice } from "../helpers/webgpu.js";
import { isSoftwareAdapter, openGpuDevice } from "../../src/backends/webgpu/device.js";
import { WebGpuBackend } from "../../src/backends/webgpu/webgpu.js";

async function backendOf(path: string, cfg: Partial<EngineConfig>) {
  await gpuDevice(); // VK_DRIVER_FILES set before Dawn starts
  const gpu = await openGpuDevice();
  assert.ok(!("reason" in gpu), "lavapipe is there");
  const lm = await loadAuto(path, defaultEngineConfig({ backend: "auto", ctxSize: 32, ...cfg }), { adapter: gpu.adapterName, backend: () => new WebGpuBackend(gpu) });
  try {
    const logits = await lm.model.forward(Int32Array.of(1, 2, 3), lm.model.makeCache(32), { logits: "last" });
    assert.ok(logits.every(Number.isFinite));
    return { name: lm.backend.name, warnings: lm.warnings, mode: lm.expertIO.mode };
  } finally {
    await lm.close();
  }
}

test("--backend auto keeps a GPU for a model whose experts all sit on it, and declines it, with the reason, for streamed experts", async () => {
  assert.ok(isSoftwareAdapter("llvmpipe (LLVM 15.0.6, 256 bits)") && !isSoftwareAdapter("NVIDIA: 580.159.04"), "a software adapter is never auto's pick");
  const moe = await smallVocabModel({ type: "Q8_0", seed: 5, peaked: 4, nVocab: 2048 });
  const on = await backendOf(moe, { expertIo: "resident" });
  assert.equal(on.name, "webgpu");
  assert.deepEqual(on.warnings.filter((w) => w.startsWith("backend auto")), []);
  const streamed = await backendOf(moe, { expertIo: "stream", expertCache: 1 << 20 });
  assert.notEqual(streamed.name, "webgpu");
  assert.equal(streamed.mode, "stream");
  assert.ok(streamed.warnings.some((w) => /^backend auto: not the GPU \(llvmpipe.*\): its experts stream from the file .*CPU backend/.test(w)), streamed.warnings.join("\n"));
  // Every architecture's ops and weight types run there (a DeltaNet model, i-quant experts are kept).
  const deltaNet = await smallVocabModel({ preset: "qwen35moe-tiny", type: "Q8_0", seed: 11, nVocab: 2048 });
  assert.equal((await backendOf(deltaNet, { expertIo: "resident" })).name, "webgpu");
  const iq2 = await smallVocabModel({ type: "Q8_0", expertType: "IQ2_XS", seed: 5, nVocab: 2048 });
  assert.equal((await backendOf(iq2, { expertIo: "resident" })).name, "webgpu");
});
