// llama.cpp teacher-forced parity on tiny qwen3moe models whose experts are i-quants (sampled in the quantised
// domain: moestream decodes them only), the rest Q8_0. The scalar backend runs them (native and wasm have no
// i-quant kernels and refuse them at load); llama.cpp quantises the activations to Q8_K for these dots.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { UsageError } from "../../src/util/errors.js";
import { testModel } from "../helpers/models.js";
import { teacherForcedParity } from "../helpers/teacher-forced.js";

const PROMPT = "The capital of France is Paris. 日本語のテキスト 🙂 def f(x):\n    return x ** 2  # done";
const N = 32;
// Relative RMSE bound per expert type (the Q8_0 bound of qwen3moe-llama.test.ts, with room for the
// activations' Q8_K rounding in llama.cpp's i-quant dots). Measured here (seed 11): IQ4_XS 1.09e-2, IQ3_XXS 1.40e-2, IQ2_XXS 1.28e-2.
const TOL: Record<string, number> = { IQ4_XS: 0.02, IQ3_XXS: 0.02, IQ2_XXS: 0.02 };

const iqModel = (type: string) => testModel({ type: "Q8_0", seed: 11, expertSynthesis: "direct", typeOverrides: [{ pattern: /_exps\.weight$/, type }] });

for (const type of Object.keys(TOL)) {
  test(`tiny, experts ${type} (scalar): teacher-forced logits match llama.cpp`, async () => {
    await teacherForcedParity(await iqModel(type), { label: `experts ${type} (scalar)`, backend: "scalar", tol: TOL[type], prompt: PROMPT, n: N });
  });
}

for (const backend of ["native", "wasm"] as const) {
  test(`${backend} refuses i-quant experts at load, naming the tensor and the type`, async () => {
    await assert.rejects(loadModel(await iqModel("IQ2_XXS"), defaultEngineConfig({ ctxSize: 256, backend })), (e: unknown) =>
      e instanceof UsageError && new RegExp(`backend '${backend}' cannot run matmul on IQ2_XXS weights \\(tensor 'blk\\.0\\.ffn_\\w+_exps\\.weight'\\)`).test(e.message));
  });
}
