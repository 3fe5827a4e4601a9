// SentencePiece ("llama") vocabularies, as Mixtral's GGUFs carry: encode() and decode against llama.cpp on a
// made-up vocabulary (spmVocabMetadata: substrings of the corpus scored on a coarse grid so that ties
// happen, some characters left to the byte fallback), special tokens parsed and not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { openGGUF } from "../../src/format/gguf/index.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { withLlamaModel } from "../helpers/llama.js";
import { spmVocabMetadata, vocabGGUF } from "../helpers/vocab-gguf.js";
import { CORPUS, FAMILIES_POOL, fuzzStrings, latin1Random } from "../tokenizer/corpus.js";

const texts = [
  ...Object.values(CORPUS), latin1Random(7, 1000), ...fuzzStrings(5, 150), ...fuzzStrings(19, 150, 24, FAMILIES_POOL),
  "", " ", "  lead", "trail  ", "<s>x</s> y<s> z", "a<unk>b",
];

test("encode() and the pieces equal llama.cpp's on a SentencePiece vocabulary", async () => {
  const md = spmVocabMetadata(Object.values(CORPUS));
  const path = await vocabGGUF("spm-corpus", md);
  // From the file, as a model loads it: a token that is just U+FEFF must survive the GGUF string read.
  const f = await openGGUF(path);
  await f.source.close();
  const t = Tokenizer.fromMetadata(f.metadata);
  assert.notEqual(t.tokenId("\uFEFF"), undefined);
  assert.equal(t.model, "llama");
  assert.equal(t.addBos, true); // llama.cpp's default for SentencePiece
  assert.equal(t.addSpacePrefix, true);
  const ref = await withLlamaModel(path, async (m) => ({
    ids: [true, false].map((sp) => texts.map((s) => [...m.tokenize(s, sp)].map(Number))),
    // With a token before it, detokenize() leaves the piece's leading space (it strips the first one's).
    pieces: Array.from({ length: t.vocabSize }, (_, i) => m.detokenize([i as never], true, [1 as never])),
  }), { vocabOnly: true });
  for (const [k, special] of [true, false].entries()) {
    texts.forEach((s, i) => assert.deepEqual(t.encode(s, { parseSpecial: special, addBos: false }), ref.ids[k][i], `text ${i} (special ${special}): ${JSON.stringify(s.slice(0, 60))}`));
  }
  // Byte tokens decode to their byte (a lone one is not valid UTF-8 on either side).
  ref.pieces.forEach((p, i) => {
    if (t.tokenText(i).startsWith("<0x")) return;
    assert.equal(t.decode([i]), p, `token ${i} ${JSON.stringify(t.tokenText(i))}`);
  });
  const some = t.encode("Hello wörld 日本 🦙", { addBos: false });
  assert.equal(t.decode(some), " Hello wörld 日本 🦙");
  assert.ok(some.some((id) => t.tokenText(id).startsWith("<0x")), "the byte fallback is exercised");
});
