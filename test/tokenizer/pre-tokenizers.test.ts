// The pre-tokenizers tokenizer.ggml.pre selects, on hand-checked inputs (test/golden/pre-tokenizers-llama
// holds them all to llama.cpp on a corpus), and the errors for values and models we do not support or
// files that lack what they need.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ModelError } from "../../src/util/errors.js";
import { PRE_TOKENIZER_NAMES, Tokenizer, preTokenizer, qwen3TokenizerMetadata } from "../../src/tokenizer/index.js";
import { smallVocab } from "./small-vocab.js";

const split = (pre: string, text: string, llamaCpp = false): string[] => preTokenizer(pre, { llamaCpp })!.split(text);

test("deepseek-v3: digits in threes, CJK/kana runs, one ASCII punctuation mark leads a word", () => {
  assert.deepEqual(split("deepseek-v3", "Hello 12345 world"), ["Hello", " ", "123", "45", " world"]);
  assert.deepEqual(split("deepseek-v3", "中文かなカナabc"), ["中文かなカナ", "abc"]);
  assert.deepEqual(split("deepseek-v3", ".Hello ,world !!\n\nx"), [".Hello", " ,", "world", " !!\n\n", "x"]);
  assert.deepEqual(split("deepseek-v3", "e\u0301t\u00e9"), ["e\u0301t\u00e9"]); // marks stay in words
});

test("qwen35 keeps combining marks in words, qwen2 does not", () => {
  assert.deepEqual(split("qwen35", "cafe\u0301 12"), ["cafe\u0301", " ", "1", "2"]);
  assert.deepEqual(split("qwen2", "cafe\u0301 12"), ["cafe", "\u0301", " ", "1", "2"]);
});

test("glm4 groups digits in threes; olmo is GPT-2's pattern", () => {
  assert.deepEqual(split("glm4", "12345 x"), ["123", "45", " x"]);
  assert.deepEqual(split("chatglm-bpe", "12345 x"), ["123", "45", " x"]);
  assert.deepEqual(split("olmo", "Hello  world's 123"), ["Hello", " ", " world", "'s", " 123"]);
});

test("gpt-4o: case changes split words; as llama.cpp adapts it, only ASCII ones do", () => {
  assert.deepEqual(split("gpt-4o", "HelloWorld it's ÉCOLEécole приВет"), ["Hello", "World", " it's", " ÉCOLEécole", " при", "Вет"]);
  assert.deepEqual(split("gpt-4o", "HelloWorld it's ÉCOLEécole приВет", true), ["Hello", "World", " it's", " ÉCOLEécole", " приВет"]);
});

test("kimi-k2: Han runs apart, words with their contraction, digits in threes (both splitters)", () => {
  for (const llamaCpp of [false, true]) {
    assert.deepEqual(split("kimi-k2", "中文abc的It's 12345  x\n\n y", llamaCpp), ["中文", "abc", "的", "It's", " ", "123", "45", " ", " x", "\n\n", " y"]);
  }
});

test("deepseek-llm: non-ASCII whitespace matches \\s but not a literal in a class (llama.cpp's wregex path)", () => {
  assert.deepEqual(split("deepseek-llm", "Hello, world\u3000! 12"), ["Hello", ",", " world", "\u3000!", " ", "12"]);
});

test("deepseek-coder: letter and punctuation runs take one optional space, digits one by one", () => {
  assert.deepEqual(split("deepseek-coder", "Hello, world 123\n\nx"), ["Hello", ",", " world", " ", "1", "2", "3", "\n", "\n", "x"]);
});

test("every split concatenates back to its input", () => {
  const s = "  a\n\n b\t\t' 's 99 ½ 👍🏽 e\u0301 \x00\x1b[0m 中文 かな 12345 ÉCOLE\u3000\u0085 end  ";
  for (const pre of Object.keys(PRE_TOKENIZER_NAMES)) {
    for (const llamaCpp of [false, true]) assert.equal(split(pre, s, llamaCpp).join(""), s, pre);
  }
});

test("NFC by default only for the families whose tokenizer.json normalises (Qwen2/3)", () => {
  for (const [pre, nfc] of [["qwen2", true], ["qwen35", false], ["deepseek-v3", false], ["glm4", false], ["kimi-k2", false], ["gpt-4o", false]] as const) {
    const v = smallVocab([], [], { "tokenizer.ggml.pre": pre });
    assert.equal(Tokenizer.fromMetadata(v.md).nfc, nfc, pre);
    assert.equal(Tokenizer.fromMetadata(v.md, { nfc: !nfc }).nfc, !nfc, pre);
    assert.equal(Tokenizer.fromMetadata(v.md, { llamaCpp: true }).nfc, false, pre);
  }
});

test("an unsupported pre value or tokenizer model is a ModelError naming it", () => {
  const bad = (keys: Record<string, string>, re: RegExp) => {
    const v = smallVocab([], [], keys);
    assert.throws(() => Tokenizer.fromMetadata(v.md), (e: unknown) => e instanceof ModelError && e.code === "TOKENIZER_UNSUPPORTED" && re.test(e.message));
  };
  bad({ "tokenizer.ggml.pre": "tekken" }, /tokenizer\.ggml\.pre = "tekken" is not supported \(supported: .*deepseek-v3/);
  bad({ "tokenizer.ggml.pre": "__proto__" }, /"__proto__" is not supported/);
  bad({ "tokenizer.ggml.model": "t5" }, /tokenizer\.ggml\.model = "t5" is not supported \(supported: "gpt2" byte-level BPE, "llama" SentencePiece\)/);
});

test("a SentencePiece vocabulary without scores is a ModelError naming the key", () => {
  const v = smallVocab([], [], { "tokenizer.ggml.model": "llama" });
  assert.throws(() => Tokenizer.fromMetadata(v.md), (e: unknown) => e instanceof ModelError && /tokenizer\.ggml\.scores is missing/.test(e.message));
  v.md.set("tokenizer.ggml.scores", { type: "array", itemType: "f32", value: [0, 0] });
  assert.throws(() => Tokenizer.fromMetadata(v.md), (e: unknown) => e instanceof ModelError && /tokenizer\.ggml\.scores has 2 entries, fewer than the 256 tokens/.test(e.message));
});

// The .out ids were written by transformers' AutoTokenizer for Qwen/Qwen3.5-9B-Instruct
// (convert_hf_to_gguf_update.py); llama.cpp's test-tokenizer-0 holds llama.cpp to them.
test("qwen35: the model's own tokenizer's test vectors (llama.cpp's ggml-vocab-qwen35.gguf.inp/.out), on Qwen's vocabulary", () => {
  const dir = new URL("../fixtures/tokenizer/", import.meta.url);
  const texts = readFileSync(new URL("llama-vocab-qwen35.inp", dir), "utf8").split("\n__ggml_vocab_test__\n");
  const ids = readFileSync(new URL("llama-vocab-qwen35.out", dir), "utf8").split("\n");
  assert.equal(texts.pop(), ""); // the file ends with a separator
  assert.equal(ids.pop(), "");
  assert.equal(texts.length, ids.length);
  assert.ok(texts.some((t) => /\p{M}/u.test(t) && t !== t.normalize("NFC")), "the vectors include decomposed marks");
  const md = qwen3TokenizerMetadata();
  md.set("tokenizer.ggml.pre", { type: "string", value: "qwen35" });
  for (const tok of [Tokenizer.fromMetadata(md), Tokenizer.fromMetadata(md, { llamaCpp: true })]) {
    texts.forEach((t, i) => {
      const want = ids[i].trim() === "" ? [] : ids[i].trim().split(/\s+/).map(Number);
      assert.deepEqual(tok.encode(t, { parseSpecial: false }), want, JSON.stringify(t.slice(0, 40)));
    });
  }
});
