// llama.cpp teacher-forced parity on tiny qwen3moe models whose experts are i-quants (sampled in the quantised
// domain: moestream decodes them only), the rest Q8_0. The scalar backend runs them; wasm has its own IQ2_XXS
// kernel (Q8_K activations, as llama.cpp quantises them for these dots); native has no i-quant kernels yet and
// hands those matmuls to the scalar reference, saying so at load.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { testModel } from "../helpers/models.js";
import { teacherForcedParity } from "../helpers/llama-parity.js";
// Relative RMSE bound per expert type (the Q8_0 bound of qwen3moe-llama.test.ts, with room for the
// activations' Q8_K rounding in llama.cpp's i-quant dots). Measured here (seed 11), scalar / wasm: IQ4_XS 1.09e-2 /
// 1.11e-2, IQ3_XXS 1.40e-2 / 1.36e-2, IQ2_XXS 1.28e-2 / 1.41e-2.
const TOL: Record<string, number> = { IQ4_XS: 0.02, IQ3_XXS: 0.02, IQ2_XXS: 0.02 };

const iqModel = (type: string) => testModel({ type: "Q8_0", seed: 11, expertSynthesis: "direct", typeOverrides: [{ pattern: /_exps\.weight$/, type }] });

for (const type of Object.keys(TOL)) {
  // wasm's own kernels for each type (IQ2_XXS on wasm: with the load-warning check below)
  for (const backend of type === "IQ2_XXS" ? ["scalar"] as const : ["scalar", "wasm"] as const) {
    test(`tiny, experts ${type} (${backend}): teacher-forced logits match llama.cpp`, async () => {
      console.log(`# ${await teacherForcedParity(await iqModel(type), backend, TOL[type], `experts ${type} (${backend})`)}`);
    });
  }
}

/** Whether the backend has its own IQ2_XXS matmul kernel (else it hands the type to the scalar reference and warns). */
const OWN_IQ2_XXS = { native: false, wasm: true };

for (const backend of ["native", "wasm"] as const) {
  const own = OWN_IQ2_XXS[backend];
  test(`${backend} runs IQ2_XXS experts ${own ? "on its own kernel" : "through the scalar reference, warning once per type,"} and matches llama.cpp`, async () => {
    const path = await iqModel("IQ2_XXS");
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend }));
    const warned = lm.warnings.filter((w) => w.includes("IQ2_XXS"));
    await lm.close();
    assert.equal(warned.length, own ? 0 : 1);
    if (!own) assert.match(warned[0], new RegExp(`^\\d+ tensor\\(s\\) of type IQ2_XXS have no ${backend} kernel yet: they run on the scalar reference \\(slow\\)$`));
    // The rest of the model runs on the backend's own kernels (Q8-rounded activations): held to llama.cpp, not to scalar's tokens.
    console.log(`# ${await teacherForcedParity(path, backend, TOL.IQ2_XXS, `experts IQ2_XXS (${backend})`)}`);
  });
}
