// llama with experts (Mixtral) against llama.cpp (node-llama-cpp 3.22.1, flash attention off): tokenization of the
// prompt by the real Mistral / Mixtral SentencePiece vocabulary (cut to its first 8192 tokens, BOS added) and
// teacher-forced logits at every one of 32 positions after it, on the tiny Mixtral-shaped model (8 experts, top-2
// renormalised, NORM rope, GQA).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spmVocabModel } from "../helpers/models.js";
import { softmaxMoeGolden } from "../helpers/golden.js";
import { N, PROMPT } from "../helpers/llama-parity.js";

// Relative RMSE bound per type (measured: see the line each case prints).
const TOL: Record<string, number> = { F16: 0.002, Q8_0: 0.02 };
// A selection near-tie: where the 2nd and 3rd softmax probabilities are this close, llama.cpp's rounding can pick the
// other expert; such positions are exempt from the tolerance, counted and capped.
const NEAR_TIE = 0.004;
const MAX_EXEMPT = 4;
const CASES = [
  { type: "F16", backend: "scalar" },
  { type: "Q8_0", backend: "native" }, // the native kernels quantise activations to Q8_0 as llama.cpp does
] as const;

for (const { type, backend } of CASES) {
  test(`mixtral tiny ${type} (${backend}): SentencePiece tokenization and teacher-forced logits match llama.cpp`, async () => {
    const path = await spmVocabModel({ preset: "mixtral-tiny", type, seed: 11, nVocab: 8192 });
    const line = await softmaxMoeGolden(path, {
      // node-llama-cpp's tokenize() adds no BOS: its prompt carries it as text, parsed as the special token; ours adds it (add_bos_token).
      prompt: PROMPT, llamaPrompt: `<s>${PROMPT}`, n: N, backend, tol: TOL[type], nearTie: NEAR_TIE, maxExempt: MAX_EXEMPT, label: `mixtral ${type} (${backend})`,
      inspect: (lm, prompt) => {
        assert.equal(lm.tokenizer.model, "llama");
        assert.equal(prompt[0], 1, "BOS first");
      },
    });
    console.log(`# ${line}`);
  });
}
