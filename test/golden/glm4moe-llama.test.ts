// glm4moe against llama.cpp (node-llama-cpp 3.22.1, flash attention off): teacher-forced logits at every one of
// 32 positions after the prompt, on the tiny GLM-4.5-shaped model (dense lead layer, sigmoid routing with a
// selection bias, x2.5, shared expert, partial rope, q/k norms, q/k/v biases, an MTP block that must not run).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { smallVocabModel } from "../helpers/models.js";
import { llamaGreedy } from "../helpers/llama.js";
import { checkTeacherForced, marginRecorder, selectionBiases } from "../helpers/golden.js";

const PROMPT = "The capital of France is Paris. 日本語のテキスト 🙂 def f(x):\n    return x ** 2  # done";
const N = 32;
// Relative RMSE bound per type (measured here, seed 11: see the diagnostics each case prints).
const TOL: Record<string, number> = { F16: 0.002, Q8_0: 0.02, Q4_K: 0.03 };
// A selection near-tie: where the k-th and (k+1)-th biased sigmoid scores (or the last kept and first dropped
// group's scores) are this close, llama.cpp's rounding can pick the other expert; such positions are exempt
// from the tolerance, counted and capped.
const NEAR_TIE = 0.004;
const MAX_EXEMPT = 4;

const GROUPS = { nGroup: 4, nGroupUsed: 2 };
// The first 8192 tokens of the Qwen3 vocabulary (byte tokens included, so any text tokenizes): the output head
// costs a twentieth of the full vocabulary's, and both engines read the same cut tokenizer.
const N_VOCAB = 8192;
const CASES: { type: string; backend: "scalar" | "native"; groups?: boolean }[] = [
  { type: "F16", backend: "scalar" },
  { type: "Q8_0", backend: "native" }, // the native kernels quantise activations to Q8 as llama.cpp does
  { type: "Q4_K", backend: "native" },
  { type: "F16", backend: "scalar", groups: true }, // the group-limited top-k DeepSeek-V3 uses, through the same route
];

for (const { type, backend, groups } of CASES) {
  const label = `${type}${groups ? `, ${GROUPS.nGroup} expert groups / ${GROUPS.nGroupUsed} used` : ""} (${backend})`;
  test(`glm4moe tiny ${label}: tokenization and teacher-forced logits match llama.cpp`, async () => {
    const path = await smallVocabModel({ preset: "glm4moe-tiny", type, seed: 11, hp: groups ? GROUPS : undefined, nVocab: N_VOCAB });
    const ref = await llamaGreedy(path, PROMPT, N, { flashAttention: false });
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256, backend, expertIo: "resident" }));
    try {
      const info = lm.model.info;
      const biases = await selectionBiases(path, info.nLayer);
      assert.equal(biases.size, info.nLayer - 1, "one dense lead layer, the others MoE");
      const prompt = lm.tokenizer.encode(PROMPT, { parseSpecial: true });
      assert.deepEqual(prompt, ref.promptTokens, "prompt tokenization differs from llama.cpp");
      const tokens = [...prompt, ...ref.tokens.slice(0, N - 1)];
      const { margin, routed, onRoute } = marginRecorder(tokens.length, info.nExpert, (layer) =>
        ({ gating: "sigmoid", bias: biases.get(layer)!, k: info.nExpertUsed, nGroup: groups ? GROUPS.nGroup : 0, nGroupUsed: GROUPS.nGroupUsed }));
      const all = await lm.model.forward(Int32Array.from(tokens), lm.model.makeCache(256), { logits: "all", hooks: { onRoute } });
      assert.deepEqual([...routed].sort(), [...biases.keys()].sort(), "the MoE layers route, the dense lead layer and the MTP block do not");
      const { worst, compared, exempt } = checkTeacherForced(all, ref.logits, { promptLen: prompt.length, tol: TOL[type], margin, nearTie: NEAR_TIE, maxExempt: MAX_EXEMPT });
      console.log(`# glm4moe ${label}: worst relative RMSE ${worst.toExponential(3)}, argmax compared at ${compared}/${N} positions, ${exempt} selection near-tie positions exempt`);
    } finally {
      await lm.close();
    }
  });
}
