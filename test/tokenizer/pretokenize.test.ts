import { test } from "node:test";
import assert from "node:assert/strict";
import { pretokenizeQwen2 } from "../../src/tokenizer/index.js";

const split = pretokenizeQwen2;

test("words take one leading non-letter, digits split one by one", () => {
  assert.deepEqual(split("Hello world"), ["Hello", " world"]);
  assert.deepEqual(split("12345"), ["1", "2", "3", "4", "5"]);
  assert.deepEqual(split("a1b"), ["a", "1", "b"]);
  assert.deepEqual(split("$hello"), ["$hello"]);
  assert.deepEqual(split("我想在apple工作"), ["我想在apple工作"]);
});

test("contractions match ASCII case-insensitively", () => {
  assert.deepEqual(split("DON'T"), ["DON", "'T"]);
  assert.deepEqual(split("I'Ll"), ["I", "'Ll"]);
  assert.deepEqual(split("we'VE they're"), ["we", "'VE", " they", "'re"]);
  assert.deepEqual(split("'x"), ["'x"]); // not a contraction: [^\r\n\p{L}\p{N}]?\p{L}+
  // No Unicode case folding: "ſ" (long s) is not "s" here, as in llama.cpp.
  assert.deepEqual(split("x'ſ"), ["x", "'ſ"]);
});

test("punctuation runs take one leading space and trailing newlines", () => {
  assert.deepEqual(split("a ... b"), ["a", " ...", " b"]);
  assert.deepEqual(split("x;\n\ny"), ["x", ";\n\n", "y"]);
  assert.deepEqual(split("!!?"), ["!!?"]);
});

test("whitespace runs", () => {
  assert.deepEqual(split("   "), ["   "]);
  assert.deepEqual(split("\n\n\n"), ["\n\n\n"]);
  assert.deepEqual(split(" \n "), [" \n", " "]);
  assert.deepEqual(split("a   b"), ["a", "  ", " b"]);
  assert.deepEqual(split("a  "), ["a", "  "]);
  assert.deepEqual(split("\t\tfoo"), ["\t", "\tfoo"]);
  assert.deepEqual(split("x \r\n\r\n y"), ["x", " \r\n\r\n", " y"]);
});

test("\\s is Unicode White_Space: U+0085 is whitespace, U+FEFF and U+200B are not", () => {
  assert.deepEqual(split("a\u0085 b"), ["a", "\u0085", " b"]);
  assert.deepEqual(split("a \uFEFF b"), ["a", " \uFEFF", " b"]);
  assert.deepEqual(split("a\u200bb"), ["a", "\u200bb"]);
  assert.deepEqual(split("a\u3000\u00A0b"), ["a", "\u3000", "\u00A0b"]);
});

test("pieces always concatenate back to the input", () => {
  for (const s of ["", "x", "  a\n\n b\t\t' 's 99 ½ 👍🏽 e\u0301 \x00\x1b[0m", "\r\r\n\n  \u2028 end  "]) {
    assert.equal(split(s).join(""), s);
  }
});
