// OLMoE against llama.cpp (node-llama-cpp 3.22.1, flash attention off): tokenization of the prompt through OLMo's
// pre-tokenizer (over the Qwen3 byte-level BPE vocabulary cut to 8192 tokens) and teacher-forced logits at every one
// of 32 positions after it, on the tiny OLMoE-shaped model (16 experts, top-8 not renormalised, q/k RMS-normed over
// the whole projection, NeoX rope).
import { test } from "node:test";
import assert from "node:assert/strict";
import { smallVocabModel } from "../helpers/models.js";
import { SOFTMAX_MOE_GOLDEN, softmaxMoeGolden } from "../helpers/golden.js";
import { N, PROMPT } from "../helpers/llama-parity.js";

for (const { type, backend } of SOFTMAX_MOE_GOLDEN.cases) {
  test(`olmoe tiny ${type} (${backend}): tokenization and teacher-forced logits match llama.cpp`, async () => {
    const path = await smallVocabModel({ preset: "olmoe-tiny", type, seed: 11, nVocab: 8192 });
    const line = await softmaxMoeGolden(path, {
      prompt: PROMPT, n: N, backend, tol: SOFTMAX_MOE_GOLDEN.tol[type], label: `olmoe ${type} (${backend})`,
      inspect: (lm) => assert.equal(lm.tokenizer.pre, "olmo"),
    });
    console.log(`# ${line}`);
  });
}
