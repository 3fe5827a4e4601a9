// Token-by-token decoding for the per-architecture model tests: the resident reference, streamed decode with prefetch
// and router lookahead under a small expert cache, and one backend's all-row logits.
import assert from "node:assert/strict";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";

/** Last-row logits of each token fed one at a time into a fresh cache of 64. */
export async function stepLogits(lm: LoadedModel, tokens: readonly number[]): Promise<Float32Array[]> {
  const kv = lm.model.makeCache(64);
  try {
    const out: Float32Array[] = [];
    for (const t of tokens) out.push(await lm.model.forward(Int32Array.of(t), kv, { logits: "last" }));
    return out;
  } finally {
    kv.free();
  }
}

/** The scalar resident model's step logits (given to `also` before it closes). */
export async function residentSteps(path: string, tokens: readonly number[], also?: (lm: LoadedModel, steps: Float32Array[]) => Promise<void>): Promise<Float32Array[]> {
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend: "scalar", expertIo: "resident" }));
  try {
    const steps = await stepLogits(lm, tokens);
    await also?.(lm, steps);
    return steps;
  } finally {
    await lm.close();
  }
}

/** Streamed decode with prefetch and 2-layer router lookahead in an `expertCache`-byte cache equals `ref` bit for bit, with evictions. */
export async function checkStreamedDecode(path: string, tokens: readonly number[], expertCache: number, ref: readonly Float32Array[]): Promise<void> {
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend: "scalar", expertIo: "stream", expertCache, prefetch: true, prefetchDepth: 2 }));
  try {
    assert.equal(lm.expertIO.mode, "stream");
    assert.deepEqual(await stepLogits(lm, tokens), ref);
    const s = lm.experts.stats;
    assert.ok(s.evictions > 0 && s.misses > 0, `expected a cache under pressure: ${JSON.stringify(s)}`);
  } finally {
    await lm.close();
  }
}

/** All-row logits of `tokens` through the resident model on `backend`. */
export async function backendLogits(path: string, backend: "scalar" | "wasm" | "native", tokens: readonly number[]): Promise<Float32Array> {
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend, expertIo: "resident" }));
  try {
    assert.equal(lm.backend.name, backend);
    return await lm.model.forward(Int32Array.from(tokens), lm.model.makeCache(64), { logits: "all" });
  } finally {
    await lm.close();
  }
}
