// gpt-4o (o200k, gpt-oss) and kimi-k2 split with the models' own tiktoken patterns: our encode() against
// tiktoken itself (the npm package: the Rust crate and its fancy-regex compiled to WASM) loaded with the
// same byte-pair vocabulary and the pattern strings of o200k_base (as tiktoken's own encoders/o200k_base
// has it) and Kimi-K2's tokenization_kimi.py (as llama.cpp's unicode.cpp quotes it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { Tokenizer, preTokenizer, unicodeToBytes } from "../../src/tokenizer/index.js";
import { pairVocabMetadata } from "../helpers/vocab-gguf.js";
import { CORPUS, FAMILIES_POOL, fuzzStrings, latin1Random } from "./corpus.js";

const require = createRequire(import.meta.url);
const { Tiktoken } = require("tiktoken/lite") as typeof import("tiktoken/lite");

const C = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
const PATTERNS: Record<string, string> = {
  "gpt-4o":
    `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+${C}?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*${C}?` +
    `|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  "kimi-k2":
    `[\\p{Han}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+${C}?` +
    `|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*${C}?` +
    `|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
};

// The pair vocabulary's special tokens are not tiktoken's: texts naming them are left out.
const texts = [
  ...Object.values(CORPUS), latin1Random(7, 1000), ...fuzzStrings(5, 150), ...fuzzStrings(17, 300, 24, FAMILIES_POOL),
  "x'ſ it'S ÉCOLEécole приВет HelloWorld नमस्ते ภาษาไทย e\u0301",
].filter((t) => !/<\||think>|<｜/.test(t));

for (const pre of Object.keys(PATTERNS)) {
  test(`${pre}: encode() equals tiktoken with the model's pattern; llamaCpp mode differs where llama.cpp approximates it`, () => {
    const md = pairVocabMetadata(pre, texts);
    const tokens = md.get("tokenizer.ggml.tokens")!.value as string[];
    // In the pair vocabulary a token's id is its merge rank, which is what tiktoken ranks by.
    const nRanked = 256 + (md.get("tokenizer.ggml.merges")!.value as string[]).length;
    const ranks = tokens.flatMap((t, i) => (i < nRanked ? [`${Buffer.from(unicodeToBytes(t)).toString("base64")} ${i}`] : []));
    const tk = new Tiktoken(ranks.join("\n"), {}, PATTERNS[pre]);
    try {
      const ours = Tokenizer.fromMetadata(md);
      const llama = Tokenizer.fromMetadata(md, { llamaCpp: true });
      let differ = 0;
      for (const t of texts) {
        const ids = ours.encode(t);
        assert.deepEqual(ids, [...tk.encode_ordinary(t)], `${pre}: ${JSON.stringify(t.slice(0, 60))}`);
        if (JSON.stringify(llama.encode(t)) !== JSON.stringify(ids)) differ++;
      }
      assert.ok(differ >= 10, `llama.cpp's splitter differs on only ${differ} texts`);
    } finally {
      tk.free();
    }
  });
}

test("where llama.cpp's approximations part from the models' patterns", () => {
  const split = (pre: string, llamaCpp: boolean, s: string) => preTokenizer(pre, { llamaCpp })!.split(s);
  // A combining mark stays in its word in tiktoken; llama.cpp does not count marks as letters.
  assert.deepEqual(split("gpt-4o", false, "नमस्ते"), ["नमस्ते"]);
  assert.deepEqual(split("gpt-4o", true, "नमस्ते"), ["नमस", "्त", "े"]);
  // Case changes outside ASCII: tiktoken splits before an upper-case letter that follows lower-case ones.
  assert.deepEqual(split("gpt-4o", false, "приВет"), ["при", "Вет"]);
  assert.deepEqual(split("gpt-4o", true, "приВет"), ["приВет"]);
  // Kimi: llama.cpp's hand-written splitter does not split words at case changes, even in ASCII.
  assert.deepEqual(split("kimi-k2", false, "HelloWorld 中文ok"), ["Hello", "World", " ", "中文", "ok"]);
  assert.deepEqual(split("kimi-k2", true, "HelloWorld 中文ok"), ["HelloWorld", " ", "中文", "ok"]);
});
