// deepseek2 against llama.cpp (node-llama-cpp 3.22.1, flash attention off): teacher-forced logits at every one of
// 32 positions after the prompt, on the tiny DeepSeek-V3-shaped model (MLA with q-lora and the latent cache, YaRN
// x40, a dense lead layer, sigmoid routing with a selection bias and 4 groups / 2 used, x2.5, a shared expert, an
// MTP block that must not run) and the V2-Lite-shaped one (plain attn_q, softmax routing, two shared experts,
// mscale_all_dim 0.707); and our one-batch prefill against token-by-token evaluation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import type { PresetName } from "../../src/gen/presets.js";
import { smallVocabModel } from "../helpers/models.js";
import { llamaGreedy } from "../helpers/llama.js";
import { checkTeacherForced, marginRecorder, relRmse, selectionBiases } from "../helpers/golden.js";

const PROMPT = "The capital of France is Paris. 日本語のテキスト 🙂 def f(x):\n    return x ** 2  # done";
const N = 32;
// Relative RMSE bound per type (measured here, seed 11, worst of 32 positions: F16 1.1e-3, Q8_0 2.0e-2, Q4_K 2.9e-2;
// the diagnostics each case prints). MLA chains more matmuls than GLM, each with llama.cpp's Q8 activations.
const TOL: Record<string, number> = { F16: 0.002, Q8_0: 0.025, Q4_K: 0.04 };
// A selection near-tie: where the k-th and (k+1)-th scores (or the last kept and first dropped group's) are this
// close, llama.cpp's rounding can pick the other expert; such positions are exempt from the tolerance, counted,
// capped. Wider for the quantised types, whose router inputs carry their larger error.
const NEAR_TIE: Record<string, number> = { F16: 0.004, Q8_0: 0.01, Q4_K: 0.02 };
const MAX_EXEMPT = 4;
// The first 8192 tokens of the Qwen3 vocabulary, as the glm4moe golden test cuts it.
const N_VOCAB = 8192;

const CASES: { preset: PresetName; type: string; backend: "scalar" | "native" }[] = [
  { preset: "deepseek2-tiny", type: "F16", backend: "scalar" },
  { preset: "deepseek2-tiny", type: "Q8_0", backend: "native" }, // the native kernels quantise activations to Q8 as llama.cpp does
  { preset: "deepseek2-tiny", type: "Q4_K", backend: "native" }, // attn_k_b rows of 64 stay Q8_0, as real Q4_K files keep them
  { preset: "deepseek2-lite-tiny", type: "F16", backend: "scalar" },
];
const model = (preset: PresetName, type: string) =>
  smallVocabModel({ preset, type, seed: 11, nVocab: N_VOCAB, typeOverrides: type === "Q4_K" ? [{ pattern: /attn_k_b/, type: "Q8_0" }] : undefined });

for (const { preset, type, backend } of CASES) {
  const label = `${preset} ${type} (${backend})`;
  test(`${label}: tokenization and teacher-forced logits match llama.cpp`, async () => {
    const path = await model(preset, type);
    const ref = await llamaGreedy(path, PROMPT, N, { flashAttention: false });
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256, backend, expertIo: "resident" }));
    try {
      const info = lm.model.info;
      const lite = preset === "deepseek2-lite-tiny";
      const biases = await selectionBiases(path, info.nLayer);
      assert.equal(biases.size, lite ? 0 : info.nLayer - 1, "V3 has a selection bias on each MoE layer, V2-Lite none");
      const prompt = lm.tokenizer.encode(PROMPT, { parseSpecial: true });
      assert.deepEqual(prompt, ref.promptTokens, "prompt tokenization differs from llama.cpp");
      const tokens = [...prompt, ...ref.tokens.slice(0, N - 1)];
      const { margin, routed, onRoute } = marginRecorder(tokens.length, info.nExpert, (layer) =>
        lite ? { gating: "softmax", k: info.nExpertUsed } : { gating: "sigmoid", bias: biases.get(layer)!, k: info.nExpertUsed, nGroup: 4, nGroupUsed: 2 });
      const all = await lm.model.forward(Int32Array.from(tokens), lm.model.makeCache(256), { logits: "all", hooks: { onRoute } });
      assert.deepEqual([...routed].sort(), [1, 2], "the MoE layers route, the dense lead layer and the MTP block do not");
      const { worst, mean, compared, exempt } = checkTeacherForced(all, ref.logits, { promptLen: prompt.length, tol: TOL[type], margin, nearTie: NEAR_TIE[type], maxExempt: MAX_EXEMPT });
      console.log(`# deepseek2 ${label}: relative RMSE worst ${worst.toExponential(3)}, mean ${mean.toExponential(3)}, argmax compared at ${compared}/${N} positions, ${exempt} selection near-tie positions exempt`);
    } finally {
      await lm.close();
    }
  });
}

test("deepseek2-tiny: prefill in one batch equals token-by-token evaluation (the latent cache read back at every step)", async () => {
  const lm = await loadModel(await model("deepseek2-tiny", "F16"), defaultEngineConfig({ ctxSize: 128, backend: "scalar", expertIo: "resident" }));
  try {
    const tokens = Int32Array.from(lm.tokenizer.encode(PROMPT, { parseSpecial: true }));
    const V = lm.model.info.nVocab;
    const batch = await lm.model.forward(tokens, lm.model.makeCache(128), { logits: "all" });
    const cache = lm.model.makeCache(128);
    let worst = 0;
    for (let t = 0; t < tokens.length; t++) {
      const one = await lm.model.forward(tokens.subarray(t, t + 1), cache, { logits: "last" });
      worst = Math.max(worst, relRmse(one, batch.subarray(t * V, (t + 1) * V)));
    }
    // The same f32 / f64 arithmetic per row either way: only summation order in nothing but the matmul's row loop.
    assert.ok(worst <= 1e-6, `token-by-token differs from the batch by relative RMSE ${worst.toExponential(3)}`);
    console.log(`# deepseek2-tiny batch vs token-by-token over ${tokens.length} tokens: worst relative RMSE ${worst.toExponential(3)}`);
  } finally {
    await lm.close();
  }
});
