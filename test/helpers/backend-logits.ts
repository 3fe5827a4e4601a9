// A whole model's logits on one backend: what the "this architecture on the wasm backend equals the scalar
// reference" tests compare.
import assert from "node:assert/strict";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { defaultEngineConfig, type BackendName } from "../../src/engine/config.js";

/** Logits at every position of `tokens` (one forward from an empty cache) of the model at `path` on `backend`; `check` sees the loaded model first. */
export async function backendLogits(path: string, backend: BackendName, tokens: ArrayLike<number>, check?: (lm: LoadedModel) => void): Promise<Float32Array> {
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend, expertIo: "resident" }));
  try {
    assert.equal(lm.backend.name, backend);
    check?.(lm);
    return await lm.model.forward(Int32Array.from(tokens), lm.model.makeCache(64), { logits: "all" });
  } finally {
    await lm.close();
  }
}
