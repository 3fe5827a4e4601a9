// OLMoE against llama.cpp (node-llama-cpp 3.22.1, flash attention off): tokenization of the prompt through OLMo's
// pre-tokenizer (over the Qwen3 byte-level BPE vocabulary cut to 8192 tokens) and teacher-forced logits at every one
// of 32 positions after it, on the tiny OLMoE-shaped model (16 experts, top-8 not renormalised, q/k RMS-normed over
// the whole projection, NeoX rope).
import { test } from "node:test";
import assert from "node:assert/strict";
import { smallVocabModel } from "../helpers/models.js";
import { softmaxMoeGolden } from "../helpers/golden.js";
import { N, PROMPT } from "../helpers/llama-parity.js";

// Relative RMSE bound per type (measured: see the line each case prints).
const TOL: Record<string, number> = { F16: 0.002, Q8_0: 0.02 };
// A selection near-tie: where the 8th and 9th softmax probabilities are this close, llama.cpp's rounding can pick the
// other expert; such positions are exempt from the tolerance, counted and capped.
const NEAR_TIE = 0.004;
const MAX_EXEMPT = 4;
const CASES = [
  { type: "F16", backend: "scalar" },
  { type: "Q8_0", backend: "native" }, // the native kernels quantise activations to Q8_0 as llama.cpp does
] as const;

for (const { type, backend } of CASES) {
  test(`olmoe tiny ${type} (${backend}): tokenization and teacher-forced logits match llama.cpp`, async () => {
    const path = await smallVocabModel({ preset: "olmoe-tiny", type, seed: 11, nVocab: 8192 });
    const line = await softmaxMoeGolden(path, {
      prompt: PROMPT, n: N, backend, tol: TOL[type], nearTie: NEAR_TIE, maxExempt: MAX_EXEMPT, label: `olmoe ${type} (${backend})`,
      inspect: (lm) => assert.equal(lm.tokenizer.pre, "olmo"),
    });
    console.log(`# ${line}`);
  });
}
