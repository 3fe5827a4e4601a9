// llama with experts (Mixtral) against llama.cpp (node-llama-cpp 3.22.1, flash attention off): tokenization of the
// prompt by the real Mistral / Mixtral SentencePiece vocabulary (cut to its first 8192 tokens, BOS added) and
// teacher-forced logits at every one of 32 positions after it, on the tiny Mixtral-shaped model (8 experts, top-2
// renormalised, NORM rope, GQA).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spmVocabModel } from "../helpers/models.js";
import { SOFTMAX_MOE_GOLDEN, softmaxMoeGolden } from "../helpers/golden.js";
import { N, PROMPT } from "../helpers/llama-parity.js";

for (const { type, backend } of SOFTMAX_MOE_GOLDEN.cases) {
  test(`mixtral tiny ${type} (${backend}): SentencePiece tokenization and teacher-forced logits match llama.cpp`, async () => {
    const path = await spmVocabModel({ preset: "mixtral-tiny", type, seed: 11, nVocab: 8192 });
    const line = await softmaxMoeGolden(path, {
      // node-llama-cpp's tokenize() adds no BOS: its prompt carries it as text, parsed as the special token; ours adds it (add_bos_token).
      prompt: PROMPT, llamaPrompt: `<s>${PROMPT}`, n: N, backend, tol: SOFTMAX_MOE_GOLDEN.tol[type], label: `mixtral ${type} (${backend})`,
      inspect: (lm, prompt) => {
        assert.equal(lm.tokenizer.model, "llama");
        assert.equal(prompt[0], 1, "BOS first");
      },
    });
    console.log(`# ${line}`);
  });
}
