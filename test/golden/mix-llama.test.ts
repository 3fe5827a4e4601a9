// llama.cpp teacher-forced parity on a tiny qwen3moe in the UD-like mix (gen --mix ud: IQ2_XXS / IQ3_XXS routed
// gate/up, IQ3_XXS / IQ4_XS downs, Q4_K / Q6_K attention, Q8_0 tied embeddings), on native's own kernels for every
// type in it (load warns of none). The vocabulary is cut to its first 8192 tokens, as the other quant goldens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { inspectGGUF } from "../../src/engine/inspect.js";
import { smallVocabModel } from "../helpers/models.js";
import { teacherForcedParity } from "../helpers/llama-parity.js";

// Relative RMSE bound: the i-quant goldens' (iquants-llama.test.ts), whose IQ2_XXS / IQ3_XXS experts this mix
// holds. Measured here (seed 11, 8192-token vocabulary), native: 1.14e-2.
const TOL = 0.02;

test("tiny in the UD-like mix (native): teacher-forced logits match llama.cpp, on native's own kernels for every type", async () => {
  const path = await smallVocabModel({ type: "Q8_0", mix: "ud", seed: 11, expertSynthesis: "direct", nVocab: 8192 });
  const f = await inspectGGUF(path);
  const types = new Set(f.tensors.filter((t) => t.type !== "F32").map((t) => t.type));
  assert.deepEqual([...types].sort(), ["IQ2_XXS", "IQ3_XXS", "IQ4_XS", "Q4_K", "Q6_K", "Q8_0"], "the mix's types");
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend: "native" }));
  const warned = [...lm.warnings];
  await lm.close();
  assert.deepEqual(warned, [], "native hands a type of the mix to the scalar reference");
  console.log(`# ${await teacherForcedParity(path, "native", TOL, "UD-like mix (native)")}`);
});
