import { test } from "node:test";
import assert from "node:assert/strict";
import { ModelError, UsageError } from "../../src/util/errors.js";
import { Tokenizer, TokenAttr, TokenType, qwen3TokenizerMetadata } from "../../src/tokenizer/index.js";
import { CORPUS, fuzzStrings, latin1Random } from "./corpus.js";
import { qwen3 } from "./helpers.js";
import { smallVocab } from "./small-vocab.js";

const IM_START = 151644;
const IM_END = 151645;
const ENDOFTEXT = 151643;
const THINK = 151667;
const THINK_END = 151668;

test("Qwen3 properties as llama.cpp determines them", () => {
  const t = qwen3();
  assert.equal(t.vocabSize, 151936);
  assert.equal(t.eosId, IM_END);
  assert.equal(t.bosId, ENDOFTEXT);
  assert.equal(t.padId, ENDOFTEXT);
  assert.equal(t.addBos, false);
  assert.equal(t.addEos, false);
  assert.ok(t.chatTemplate?.includes("<|im_start|>"));
  assert.equal(t.eotId, IM_END); // first of llama.cpp's EOT texts in list order
  assert.equal(t.fimPreId, 151659);
  assert.equal(t.fimSufId, 151661);
  assert.equal(t.fimMidId, 151660);
  assert.equal(t.fimPadId, 151662);
  assert.equal(t.fimRepId, 151663);
  assert.equal(t.fimSepId, 151664);
  // EOG: fim_pad, fim_rep (<|repo_name|>), fim_sep, and the EOG texts <|endoftext|>, <|im_end|>,
  // and "</s>" (128247, an ordinary Qwen token that llama.cpp's text list forces to CONTROL + EOG).
  assert.deepEqual([...t.eogIds].sort((a, b) => a - b), [128247, ENDOFTEXT, IM_END, 151662, 151663, 151664]);
  assert.ok(t.isEog(IM_END) && t.isEog(ENDOFTEXT) && !t.isEog(IM_START));
  assert.ok(t.isSpecial(IM_START) && t.isSpecial(151659) && t.isSpecial(128247));
  assert.ok(!t.isSpecial(THINK) && !t.isSpecial(9707) && !t.isSpecial(151700));
  assert.equal(t.tokenAttr(THINK), TokenAttr.USER_DEFINED);
  assert.equal(t.tokenAttr(151700), TokenAttr.UNUSED);
  assert.equal(t.tokenAttr(128247), TokenAttr.NORMAL | TokenAttr.CONTROL);
  assert.equal(t.tokenText(9707), "Hello");
  assert.equal(t.tokenId("<|im_end|>"), IM_END);
  assert.equal(t.tokenId("no such token"), undefined);
});

test("special tokens: CONTROL only with parseSpecial, USER_DEFINED always", () => {
  const t = qwen3();
  const text = "<|im_start|>user\nhi<|im_end|>";
  assert.deepEqual(t.encode(text), [IM_START, 872, 198, 6023, IM_END]);
  assert.deepEqual(t.encode(text, { parseSpecial: true }), t.encode(text));
  const plain = t.encode(text, { parseSpecial: false });
  assert.ok(!plain.includes(IM_START) && !plain.includes(IM_END));
  assert.equal(t.decode(plain), text);
  // <think> is USER_DEFINED: matched whatever parseSpecial says.
  assert.deepEqual(t.encode("<think>x</think>", { parseSpecial: false }), [THINK, 87, THINK_END]);
  assert.deepEqual(t.encode("<tool_call>", { parseSpecial: false }), [151657]);
  // <|fim_prefix|> is CONTROL in the GGUF (it looks special), so it is text without parseSpecial.
  assert.notDeepEqual(t.encode("<|fim_prefix|>", { parseSpecial: false }), [151659]);
  assert.deepEqual(t.encode("<|fim_prefix|>"), [151659]);
});

test("llama.cpp divergence from HF: '</s>' is a CONTROL token in the GGUF vocabulary", () => {
  const t = qwen3();
  // HF splits "</s>" into three ordinary pieces; llama.cpp's text-based EOG detection makes token
  // 128247 ("</s>") CONTROL, so with parseSpecial it is matched whole.
  assert.deepEqual(t.encode("a</s>b"), [64, 128247, 65]);
  const plain = t.encode("a</s>b", { parseSpecial: false });
  assert.ok(!plain.includes(128247));
  assert.equal(t.decode(plain), "a</s>b");
});

test("special-token partition goes longest token first, as llama.cpp", () => {
  // "bcd" (3 bytes) is tried before "ab" (2 bytes), even though "ab" starts earlier.
  const v = smallVocab([{ text: "ab", type: TokenType.USER_DEFINED }, { text: "bcd", type: TokenType.USER_DEFINED }], []);
  const t = Tokenizer.fromMetadata(v.md);
  assert.deepEqual(t.encode("abcd"), [v.id("a"), v.id("bcd")]);
  assert.deepEqual(t.encode("abab"), [v.id("ab"), v.id("ab")]);
});

test("addBos / addEos", () => {
  const t = qwen3();
  assert.deepEqual(t.encode("hi", { addBos: true }), [ENDOFTEXT, 6023]);
  assert.deepEqual(t.encode("hi", { addEos: true }), [6023, IM_END]);
  assert.deepEqual(t.encode("", { addBos: true }), [ENDOFTEXT]);
  assert.deepEqual(t.encode(""), []);
  const v = smallVocab([], [], { "tokenizer.ggml.add_bos_token": false });
  assert.throws(() => Tokenizer.fromMetadata(v.md).encode("x", { addBos: true }), UsageError);
});

test("decode(encode(x)) == NFC(x)", () => {
  const t = qwen3();
  const texts = [...Object.values(CORPUS), latin1Random(3), ...fuzzStrings(99, 300)];
  for (const x of texts) {
    assert.equal(t.decode(t.encode(x)), x.normalize("NFC"));
    assert.equal(t.decode(t.encode(x, { parseSpecial: false })), x.normalize("NFC"));
  }
});

test("decode skipSpecial drops CONTROL tokens, keeps USER_DEFINED; UNUSED tokens decode empty", () => {
  const t = qwen3();
  const ids = t.encode("<|im_start|>assistant\n<think>\nok\n</think>\n\nDone.<|im_end|>");
  assert.equal(t.decode(ids, { skipSpecial: true }), "assistant\n<think>\nok\n</think>\n\nDone.");
  assert.equal(t.decode(ids), "<|im_start|>assistant\n<think>\nok\n</think>\n\nDone.<|im_end|>");
  assert.equal(t.decode([151700, 151935]), "");
  assert.deepEqual(t.tokenToPiece(IM_END), new TextEncoder().encode("<|im_end|>"));
  assert.deepEqual(t.tokenToPiece(IM_END, { special: false }), new Uint8Array(0));
  assert.deepEqual(t.tokenToPiece(220), Uint8Array.of(0x20));
  assert.throws(() => t.decode([151936]), UsageError);
  assert.throws(() => t.tokenToPiece(-1), UsageError);
});

test("StreamDecoder holds back partial UTF-8 and matches decode()", () => {
  const t = qwen3();
  const text = "Family: 👨‍👩‍👧‍👦, flag 🇯🇵, 日本語 and é.";
  const ids = t.encode(text);
  const sd = t.createStreamDecoder();
  const parts = ids.map((id) => sd.push(id));
  parts.push(sd.flush());
  assert.equal(parts.join(""), text);
  for (const p of parts) assert.ok(!p.includes("\uFFFD"), `partial output ${JSON.stringify(p)}`);
  // The emoji spans several tokens, so some pushes return nothing.
  assert.ok(parts.some((p) => p === ""));
  // A single 4-byte emoji spread over three tokens (F0 9F | AB | A0): nothing until the last one.
  const melt = t.encode("🫠");
  assert.equal(melt.length, 3);
  const sd2 = t.createStreamDecoder();
  assert.deepEqual(melt.map((id) => sd2.push(id)), ["", "", "🫠"]);
  assert.equal(sd2.flush(), "");
});

test("StreamDecoder: skipSpecial, incomplete tail on flush, reuse after flush", () => {
  const t = qwen3();
  const sd = t.createStreamDecoder({ skipSpecial: true });
  assert.equal(sd.pushMany(t.encode("<|im_start|>hi<|im_end|>")), "hi");
  const emoji = t.encode("🫠");
  assert.ok(emoji.length > 1);
  assert.equal(sd.push(emoji[0]), "");
  assert.equal(sd.flush(), "\uFFFD");
  assert.equal(sd.pushMany(emoji) + sd.flush(), "🫠");
});

test("tokens decode to the bytes their byte-level text stands for", () => {
  const t = qwen3();
  // A token for a lone UTF-8 lead byte: decode gives U+FFFD, the stream decoder waits.
  const lead = t.tokenId("ð"); // byte 0xF0
  assert.ok(lead !== undefined);
  assert.deepEqual(t.tokenToPiece(lead), Uint8Array.of(0xf0));
  assert.equal(t.decode([lead]), "\uFFFD");
});

test("large inputs: full vocabulary build, 100 KB encodes (timings reported, not asserted)", (tc) => {
  const md = qwen3TokenizerMetadata();
  const t0 = performance.now();
  const t = Tokenizer.fromMetadata(md);
  const build = performance.now() - t0;
  let text = "";
  const parts = Object.values(CORPUS);
  for (let i = 0; text.length < 100_000; i++) text += parts[i % parts.length] + "\n";
  const t1 = performance.now();
  const ids = t.encode(text);
  const enc = performance.now() - t1;
  assert.ok(ids.length > 10_000);
  const rnd = latin1Random(5, 100_000);
  const t2 = performance.now();
  const rndIds = t.encode(rnd);
  const enc2 = performance.now() - t2;
  assert.equal(t.decode(rndIds), rnd.normalize("NFC"));
  tc.diagnostic(`build ${build.toFixed(0)} ms, 100 KB encode ${enc.toFixed(0)} ms, 100 KB latin-1 encode ${enc2.toFixed(0)} ms`);
});

test("nfc: false skips normalization (llama.cpp behaviour)", () => {
  const t = Tokenizer.fromMetadata(qwen3TokenizerMetadata(), { nfc: false });
  assert.notDeepEqual(t.encode("e\u0301"), t.encode("é"));
  assert.equal(t.decode(t.encode("e\u0301")), "e\u0301");
  assert.deepEqual(t.encode("Hello world"), [9707, 1879]);
});

// ---------------------------------------------------------------------------------------------
// metadata errors

function expectModelError(fn: () => unknown, key: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelError, `expected ModelError, got ${String(e)}`);
    assert.ok(e.message.includes(key), `message ${JSON.stringify(e.message)} should name ${key}`);
    return true;
  });
}

test("missing metadata keys are named", () => {
  for (const key of ["tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"]) {
    const v = smallVocab([], []);
    v.md.delete(key);
    expectModelError(() => Tokenizer.fromMetadata(v.md), key);
  }
});

test("ill-typed metadata keys are named", () => {
  const cases: [string, Parameters<Map<string, never>["set"]>[1] | object][] = [
    ["tokenizer.ggml.tokens", { type: "array", itemType: "i32", value: [1, 2] }],
    ["tokenizer.ggml.merges", { type: "string", value: "a b" }],
    ["tokenizer.ggml.token_type", { type: "array", itemType: "string", value: ["1"] }],
    ["tokenizer.ggml.model", { type: "u32", value: 1 }],
    ["tokenizer.ggml.eos_token_id", { type: "string", value: "1" }],
    ["tokenizer.ggml.add_bos_token", { type: "u8", value: 1 }],
    ["tokenizer.chat_template", { type: "array", itemType: "string", value: [] }],
  ];
  for (const [key, value] of cases) {
    const v = smallVocab([], []);
    v.md.set(key, value as never);
    expectModelError(() => Tokenizer.fromMetadata(v.md), key);
  }
});

test("inconsistent metadata is rejected with the key named", () => {
  const short = smallVocab([], []);
  short.md.set("tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: [1, 1] });
  expectModelError(() => Tokenizer.fromMetadata(short.md), "tokenizer.ggml.token_type");

  const range = smallVocab([], [], { "tokenizer.ggml.eos_token_id": 100_000 });
  expectModelError(() => Tokenizer.fromMetadata(range.md), "tokenizer.ggml.eos_token_id");

  const noBos = smallVocab([], [], { "tokenizer.ggml.add_bos_token": true });
  expectModelError(() => Tokenizer.fromMetadata(noBos.md), "tokenizer.ggml.bos_token_id");

  const dup = smallVocab([{ text: "a" }], []);
  expectModelError(() => Tokenizer.fromMetadata(dup.md), "tokenizer.ggml.tokens");

  const t5 = smallVocab([], [], { "tokenizer.ggml.model": "t5" });
  expectModelError(() => Tokenizer.fromMetadata(t5.md), "tokenizer.ggml.model");

  const pre = smallVocab([], [], { "tokenizer.ggml.pre": "llama-bpe" });
  expectModelError(() => Tokenizer.fromMetadata(pre.md), "tokenizer.ggml.pre");
});

test("optional keys may be absent", () => {
  const v = smallVocab([], []);
  const t = Tokenizer.fromMetadata(v.md);
  assert.equal(t.bosId, null);
  assert.equal(t.eosId, null);
  assert.equal(t.padId, null);
  assert.equal(t.chatTemplate, null);
  assert.equal(t.eogIds.size, 0);
  assert.deepEqual(t.encode("ab"), [v.id("a"), v.id("b")]);
  // Integer ids of any integer type are accepted.
  const w = smallVocab([], []);
  w.md.set("tokenizer.ggml.eos_token_id", { type: "i64", value: 5n });
  assert.equal(Tokenizer.fromMetadata(w.md).eosId, 5);
});
