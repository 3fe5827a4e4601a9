// Every supported tokenizer.ggml.pre type against llama.cpp's own splitter: a vocabulary-only GGUF per
// pre value, over a made-up vocabulary in which every adjacent byte pair is a token (pairVocabMetadata), so
// that pre-token boundaries show in the ids. Compared in llamaCpp mode (no NFC, llama.cpp's own
// splitters for gpt-4o and kimi-k2; test/tokenizer/tiktoken-parity holds the default ones to tiktoken).
import { test } from "node:test";
import assert from "node:assert/strict";
import { PRE_TOKENIZER_NAMES, Tokenizer } from "../../src/tokenizer/index.js";
import { llamaTokenize } from "../helpers/llama.js";
import { pairVocabMetadata, vocabGGUF } from "../helpers/vocab-gguf.js";
import { CORPUS, FAMILIES_POOL, fuzzStrings, latin1Random } from "../tokenizer/corpus.js";

// One name per llama.cpp pre type (the aliases map to the same type, checked below).
const PRES = ["qwen2", "qwen35", "deepseek-v3", "deepseek-llm", "deepseek-coder", "glm4", "gpt-4o", "kimi-k2", "olmo"];
const texts = [...Object.values(CORPUS), latin1Random(7, 1000), ...fuzzStrings(5, 150), ...fuzzStrings(11, 250, 24, FAMILIES_POOL)];

test("every supported pre type is covered here", () => {
  assert.deepEqual(new Set(PRES.map((p) => PRE_TOKENIZER_NAMES[p])), new Set(Object.values(PRE_TOKENIZER_NAMES)));
});

const byPre = new Map<string, number[][]>();
for (const pre of PRES) {
  test(`tokenizer.ggml.pre = "${pre}": encode() equals llama.cpp's tokenizer`, async () => {
    const md = pairVocabMetadata(pre, texts);
    const path = await vocabGGUF(`pairs-${pre}`, md);
    const ours = Tokenizer.fromMetadata(md, { llamaCpp: true });
    const ref = await llamaTokenize(path, texts, true, { vocabOnly: true });
    const got = texts.map((t) => ours.encode(t));
    texts.forEach((t, i) => assert.deepEqual(got[i], ref[i], `text ${i}: ${JSON.stringify(t.slice(0, 60))}`));
    byPre.set(pre, got);
  });
}

test("the vocabulary tells the pre types apart (the comparisons above are not vacuous)", () => {
  const qwen2 = byPre.get("qwen2")!;
  for (const pre of PRES.slice(1)) {
    const got = byPre.get(pre)!;
    const differ = texts.filter((_, i) => JSON.stringify(got[i]) !== JSON.stringify(qwen2[i])).length;
    assert.ok(differ >= 10, `${pre} differs from qwen2 on only ${differ} texts`);
  }
});
