import { test } from "node:test";
import assert from "node:assert/strict";
import { BytePairEncoder, Tokenizer, TokenType } from "../../src/tokenizer/index.js";
import { smallVocab } from "./small-vocab.js";

test("lowest rank merges first", () => {
  const a = smallVocab([{ text: "ab" }, { text: "bc" }], ["b c", "a b"]);
  assert.deepEqual(Tokenizer.fromMetadata(a.md).encode("abc"), [a.id("a"), a.id("bc")]);
  const b = smallVocab([{ text: "ab" }, { text: "bc" }], ["a b", "b c"]);
  assert.deepEqual(Tokenizer.fromMetadata(b.md).encode("abc"), [b.id("ab"), b.id("c")]);
});

test("equal ranks merge leftmost first", () => {
  const v = smallVocab([{ text: "aa" }, { text: "aaa" }], ["a a"]);
  const t = Tokenizer.fromMetadata(v.md);
  assert.deepEqual(t.encode("aaa"), [v.id("aa"), v.id("a")]);
  assert.deepEqual(t.encode("aaaa"), [v.id("aa"), v.id("aa")]);
  assert.deepEqual(t.encode("aaaaa"), [v.id("aa"), v.id("aa"), v.id("a")]);
});

test("merges chain and re-pair with neighbours", () => {
  const v = smallVocab(
    [{ text: "ab" }, { text: "abc" }, { text: "cd" }, { text: "abcd" }],
    ["a b", "c d", "ab c", "ab cd"],
  );
  const t = Tokenizer.fromMetadata(v.md);
  // "c d" (rank 1) beats "ab c" (rank 2), then "ab cd" (rank 3).
  assert.deepEqual(t.encode("abcd"), [v.id("abcd")]);
  assert.deepEqual(t.encode("abc"), [v.id("abc")]);
  assert.deepEqual(t.encode("abce"), [v.id("abc"), v.id("e")]);
});

test("merge parts outside the vocabulary still merge, with llama.cpp's byte fallback", () => {
  // "xy" is not a token, yet "x y" then "xy z" yields the token "xyz".
  const v = smallVocab([{ text: "xyz" }], ["x y", "xy z"]);
  const t = Tokenizer.fromMetadata(v.md);
  assert.deepEqual(t.encode("xyz"), [v.id("xyz")]);
  // A final symbol that is not a token falls back to its ASCII bytes as one-byte tokens.
  assert.deepEqual(t.encode("xy"), [v.id("x"), v.id("y")]);
  assert.deepEqual(t.mergeStats, { mergesInVocab: 0, mergesOutOfVocab: 2, mergesIgnored: 0 });
});

test("repeated pairs keep their first rank; lines without a space are ignored", () => {
  const v = smallVocab([{ text: "ab" }, { text: "bc" }], ["a b", "b c", "nospace", "a b"]);
  const t = Tokenizer.fromMetadata(v.md);
  assert.deepEqual(t.mergeStats, { mergesInVocab: 2, mergesOutOfVocab: 0, mergesIgnored: 2 });
  assert.deepEqual(t.encode("abc"), [v.id("ab"), v.id("c")]);
});

test("BytePairEncoder works on raw bytes and long words", () => {
  const v = smallVocab([{ text: "ĠĠ" }, { text: "ĠĠĠĠ" }], ["Ġ Ġ", "ĠĠ ĠĠ"]);
  const tokens = (v.md.get("tokenizer.ggml.tokens") as { value: string[] }).value;
  const bpe = new BytePairEncoder(new Map(tokens.map((s, i) => [s, i])), tokens.length, ["Ġ Ġ", "ĠĠ ĠĠ"]);
  const ids = bpe.encodeBytes(new Uint8Array(10_001).fill(0x20));
  assert.equal(ids.length, 2500 + 1);
  assert.ok(ids.slice(0, 2500).every((x) => x === v.id("ĠĠĠĠ")));
  assert.equal(ids[2500], v.id("Ġ"));
});

test("token_type absent means every token is NORMAL", () => {
  const v = smallVocab([{ text: "<|x|>", type: TokenType.CONTROL }], []);
  v.md.delete("tokenizer.ggml.token_type");
  const t = Tokenizer.fromMetadata(v.md);
  assert.equal(t.isSpecial(v.id("<|x|>")), false);
  assert.notDeepEqual(t.encode("<|x|>"), [v.id("<|x|>")]);
});
