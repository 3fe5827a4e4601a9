// Acceptance oracle: llama.cpp runs the same GGUF. Teacher forcing (we feed the prompt plus llama.cpp's
// greedy tokens and compare the logits at each of 32 positions), because random-weight models have
// top-2 margins far below the error two correct engines legitimately differ by (llama.cpp quantises
// activations to Q8 and keeps KV in f16).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import { testModel } from "../helpers/models.js";
import { llamaGreedy } from "../helpers/llama.js";
import { relRmse, top2 } from "../helpers/golden.js";

const PROMPT = "The capital of France is Paris. 日本語のテキスト 🙂 def f(x):\n    return x ** 2  # done";
const N = 32;

// Relative RMSE of our logits against llama.cpp's, per position (bound stated per type; an exact f64
// reference measured here: ~0.04% F16, ~1% Q8_0, ~2.6% Q4_K).
// Measured here (seed 11): F16 3.9e-4, Q8_0 1.0e-2, Q6_K 1.2e-2, Q4_K 1.2e-2.
const TOL: Record<string, number> = { F16: 0.002, Q8_0: 0.02, Q6_K: 0.025, Q4_K: 0.03 };
// A router near-tie: when our k-th and (k+1)-th router logits at a token are this close (router logits
// have rms ~1 here), llama.cpp's Q8-quantised activations can legitimately pick the other expert, and
// that token's logits then differ by far more than the tolerance. Such positions are exempt, counted,
// and capped.
const NEAR_TIE = 0.02;
const MAX_EXEMPT = 4;

// The scalar reference on every type; the native kernels (Q8-quantised activations, like llama.cpp's) too.
const CASES: { type: string; direct?: boolean; backend: "scalar" | "native" }[] = [
  ...["F16", "Q8_0", "Q4_K", "Q6_K"].map((type) => ({ type, backend: "scalar" as const })),
  { type: "Q4_K", direct: true, backend: "scalar" }, { type: "Q6_K", direct: true, backend: "scalar" },
  ...["F16", "Q8_0", "Q4_K", "Q6_K"].map((type) => ({ type, backend: "native" as const })),
];
for (const { type, direct, backend } of CASES) {
  const label = `${direct ? `${type}, experts sampled directly in ${type}` : type} (${backend})`;
  test(`tiny ${label}: tokenization and teacher-forced logits match llama.cpp`, async () => {
    const path = await testModel({ type, seed: 11, expertSynthesis: direct ? "direct" : "quantize" });
    const ref = await llamaGreedy(path, PROMPT, N);
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256, backend, expertIo: "resident" }));
    try {
      assert.equal(lm.backend.name, backend);
      const prompt = lm.tokenizer.encode(PROMPT, { parseSpecial: true });
      assert.deepEqual(prompt, ref.promptTokens, "prompt tokenization differs from llama.cpp");
      const hp = lm.model.info;
      const kv = lm.model.makeCache(256);
      const tokens = [...prompt, ...ref.tokens.slice(0, N - 1)];
      const routerMargin = new Float64Array(tokens.length).fill(Infinity);
      const onRoute = (_l: number, r: { nTokens: number }, logits: Float32Array) => {
        for (let t = 0; t < r.nTokens; t++) {
          const row = Array.from(logits.subarray(t * hp.nExpert, (t + 1) * hp.nExpert)).sort((a, b) => b - a);
          routerMargin[t] = Math.min(routerMargin[t], row[hp.nExpertUsed - 1] - row[hp.nExpertUsed]);
        }
      };
      const all = await lm.model.forward(Int32Array.from(tokens), kv, { logits: "all", hooks: { onRoute } });
      const V = hp.nVocab;
      let worst = 0, compared = 0, exempt = 0;
      for (let i = 0; i < N; i++) {
        const p = prompt.length - 1 + i;
        const ours = all.subarray(p * V, (p + 1) * V);
        const theirs = ref.logits[i];
        const err = relRmse(ours, theirs);
        if (err > TOL[type] && routerMargin[p] < NEAR_TIE) {
          exempt++;
          continue;
        }
        worst = Math.max(worst, err);
        assert.ok(err <= TOL[type], `position ${i}: relative RMSE ${err.toExponential(3)} > ${TOL[type]} (router margin ${routerMargin[p].toExponential(2)})`);
        // Same argmax wherever llama.cpp's top-2 margin exceeds the observed error at that position.
        const t = top2(theirs);
        const absErr = err * Math.sqrt(theirs.reduce((a, x) => a + x * x, 0) / V);
        if (t.margin > 4 * absErr) {
          compared++;
          assert.equal(top2(ours).id, t.id, `position ${i}: argmax differs with llama.cpp margin ${t.margin.toFixed(4)}`);
        }
      }
      assert.ok(exempt <= MAX_EXEMPT, `${exempt} positions exempt as router near-ties (max ${MAX_EXEMPT})`);
      console.log(`# ${label}: worst relative RMSE ${worst.toExponential(3)}, argmax compared at ${compared}/${N} positions, ${exempt} router near-tie positions exempt`);
    } finally {
      await lm.close();
    }
  });
}

for (const type of ["Q8_0", "Q4_K"]) {
  test(`tiny ${type} peaked: free-running greedy text equals llama.cpp for ${N} tokens`, async () => {
    const path = await testModel({ type, seed: 5, peaked: 4 });
    const ref = await llamaGreedy(path, PROMPT, N);
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256 }));
    try {
      const s = new Session(lm);
      const prompt = lm.tokenizer.encode(PROMPT, { parseSpecial: true });
      const ours: number[] = [];
      for await (const step of s.generate(prompt, { maxTokens: N, sampling: { temperature: 0 }, stopAtEog: false })) ours.push(step.token);
      assert.deepEqual(ours, ref.tokens);
      assert.equal(lm.tokenizer.decode(ours), lm.tokenizer.decode(ref.tokens));
    } finally {
      await lm.close();
    }
  });
}
