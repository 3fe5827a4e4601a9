// The pre-tokenizers whose llama.cpp regex is an adaptation of the tokenizer.json pattern (qwen35, glm4,
// olmo) against @huggingface/tokenizers running the original patterns ((?i:...) contractions included) in
// a tokenizer.json over the same byte-pair vocabulary, on the corpus and fuzzed strings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { pairVocabMetadata } from "../helpers/vocab-gguf.js";
import { CORPUS, FAMILIES_POOL, fuzzStrings, latin1Random } from "./corpus.js";

const C = "(?i:'s|'t|'re|'ve|'m|'ll|'d)";
const PATTERNS: Record<string, string> = {
  // Qwen3.5's tokenizer.json (as quoted in llama.cpp's llama-vocab.cpp)
  qwen35: `${C}|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  // GLM-4.5's (Llama 3's) tokenizer.json
  glm4: `${C}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  // GPT-2's byte-level pre-tokenizer pattern (OLMo's tokenizer.json: ByteLevel with use_regex)
  olmo: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
};

// The pair vocabulary's special tokens are not in the tokenizer.json: texts naming them are left out.
const texts = [...Object.values(CORPUS), latin1Random(7, 1000), ...fuzzStrings(5, 150), ...fuzzStrings(23, 250, 24, FAMILIES_POOL)].filter(
  (t) => !/<\||think>|<｜/.test(t),
);

for (const [pre, pattern] of Object.entries(PATTERNS)) {
  test(`${pre}: encode() equals @huggingface/tokenizers with the tokenizer.json pattern`, () => {
    const md = pairVocabMetadata(pre, texts);
    const tokens = md.get("tokenizer.ggml.tokens")!.value as string[];
    const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
    const json = {
      version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null, post_processor: null,
      pre_tokenizer: {
        type: "Sequence",
        pretokenizers: [
          { type: "Split", pattern: { Regex: pattern }, behavior: "Isolated", invert: false },
          { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
      decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      model: {
        type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false,
        byte_fallback: false, ignore_merges: false, vocab, merges: md.get("tokenizer.ggml.merges")!.value,
      },
    };
    const hf = new HFTokenizer(json as never, {} as never);
    const ours = Tokenizer.fromMetadata(md);
    for (const t of texts) assert.deepEqual(ours.encode(t), hf.encode(t, { add_special_tokens: false }).ids, `${pre}: ${JSON.stringify(t.slice(0, 60))}`);
  });
}
