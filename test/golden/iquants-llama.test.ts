// llama.cpp teacher-forced parity on tiny qwen3moe models whose experts are i-quants (sampled in the quantised
// domain: moestream decodes them only), the rest Q8_0, on the scalar reference and on native's and wasm's own
// i-quant kernels (Q8_K activations, as llama.cpp quantises them for these dots; neither hands the type to the
// scalar reference, so load warns of nothing). The vocabulary is cut to its first 8192 tokens (byte tokens
// included): the 151k-row output head cost most of the time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { smallVocabModel } from "../helpers/models.js";
import { teacherForcedParity } from "../helpers/llama-parity.js";
// Relative RMSE bound per expert type (the Q8_0 bound of qwen3moe-llama.test.ts, with room for the
// activations' Q8_K rounding in llama.cpp's i-quant dots). Measured here (seed 11, 8192-token vocabulary), scalar /
// native / wasm: IQ4_XS 1.03e-2 / 1.12e-2 / 1.16e-2, IQ3_XXS 1.46e-2 / 1.49e-2 / 1.44e-2, IQ2_XXS 1.30e-2 / 1.18e-2 / 1.20e-2.
const TOL: Record<string, number> = { IQ4_XS: 0.02, IQ3_XXS: 0.02, IQ2_XXS: 0.02 };

const iqModel = (type: string) =>
  smallVocabModel({ type: "Q8_0", seed: 11, expertSynthesis: "direct", typeOverrides: [{ pattern: /_exps\.weight$/, type }], nVocab: 8192 });

for (const type of Object.keys(TOL)) {
  for (const backend of ["scalar", "native", "wasm"] as const) {
    test(`tiny, experts ${type} (${backend}): teacher-forced logits match llama.cpp${backend === "scalar" ? "" : ", on the backend's own kernel"}`, async () => {
      const path = await iqModel(type);
      if (backend !== "scalar") {
        const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend }));
        const warned = lm.warnings.filter((w) => w.includes(type));
        await lm.close();
        assert.deepEqual(warned, [], `${backend} hands ${type} to the scalar reference`);
      }
      console.log(`# ${await teacherForcedParity(path, backend, TOL[type], `experts ${type} (${backend})`)}`);
    });
  }
}
