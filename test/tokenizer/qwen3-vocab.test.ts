import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ModelError } from "../../src/util/errors.js";
import {
  QWEN3_VOCAB_SIZE,
  TokenType,
  doesTokenLookSpecial,
  qwen3TokenizerFiles,
  qwen3TokenizerMetadata,
} from "../../src/tokenizer/index.js";

function arr<T>(md: ReturnType<typeof qwen3TokenizerMetadata>, key: string): T[] {
  const v = md.get(key);
  assert.ok(v !== undefined && v.type === "array", key);
  return v.value as T[];
}

test("keys, types and order as convert_hf_to_gguf.py writes them", () => {
  const md = qwen3TokenizerMetadata();
  assert.deepEqual([...md.keys()], [
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.chat_template",
  ]);
  assert.deepEqual(md.get("tokenizer.ggml.model"), { type: "string", value: "gpt2" });
  assert.deepEqual(md.get("tokenizer.ggml.pre"), { type: "string", value: "qwen2" });
  assert.deepEqual(md.get("tokenizer.ggml.bos_token_id"), { type: "u32", value: 151643 });
  assert.deepEqual(md.get("tokenizer.ggml.eos_token_id"), { type: "u32", value: 151645 });
  assert.deepEqual(md.get("tokenizer.ggml.padding_token_id"), { type: "u32", value: 151643 });
  assert.deepEqual(md.get("tokenizer.ggml.add_bos_token"), { type: "bool", value: false });
  const tmpl = md.get("tokenizer.chat_template");
  assert.ok(tmpl?.type === "string" && tmpl.value.startsWith("{%- if tools %}"));
  const tt = md.get("tokenizer.ggml.token_type");
  assert.ok(tt?.type === "array" && tt.itemType === "i32");
  const toks = md.get("tokenizer.ggml.tokens");
  assert.ok(toks?.type === "array" && toks.itemType === "string");
});

test("tokens by id, padded with UNUSED [PAD{id}]", () => {
  const md = qwen3TokenizerMetadata();
  const tokens = arr<string>(md, "tokenizer.ggml.tokens");
  const types = arr<number>(md, "tokenizer.ggml.token_type");
  assert.equal(tokens.length, QWEN3_VOCAB_SIZE);
  assert.equal(types.length, QWEN3_VOCAB_SIZE);
  const json = JSON.parse(readFileSync(qwen3TokenizerFiles().tokenizerJson, "utf8")) as {
    model: { vocab: Record<string, number>; merges: [string, string][] };
  };
  for (const [tok, id] of Object.entries(json.model.vocab)) {
    assert.equal(tokens[id], tok);
    assert.equal(types[id], TokenType.NORMAL);
  }
  assert.equal(tokens[151669], "[PAD151669]");
  assert.equal(tokens[151935], "[PAD151935]");
  for (let i = 151669; i < QWEN3_VOCAB_SIZE; i++) assert.equal(types[i], TokenType.UNUSED);
  assert.equal(new Set(tokens).size, tokens.length);
});

test("added tokens: special or special-looking -> CONTROL, others USER_DEFINED", () => {
  const md = qwen3TokenizerMetadata();
  const tokens = arr<string>(md, "tokenizer.ggml.tokens");
  const types = arr<number>(md, "tokenizer.ggml.token_type");
  const control: string[] = [];
  const user: string[] = [];
  for (let i = 151643; i <= 151668; i++) (types[i] === TokenType.CONTROL ? control : user).push(tokens[i]);
  assert.deepEqual(user, ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]);
  assert.equal(control.length, 20);
  for (const t of ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|repo_name|>", "<|file_sep|>"]) {
    assert.ok(control.includes(t), t);
  }
});

test("merges as 'a b' strings in rank order", () => {
  const md = qwen3TokenizerMetadata();
  const merges = arr<string>(md, "tokenizer.ggml.merges");
  assert.equal(merges.length, 151387);
  assert.deepEqual(merges.slice(0, 3), ["Ġ Ġ", "ĠĠ ĠĠ", "i n"]);
  for (const m of merges) assert.equal(m.split(" ").length, 2);
});

test("each call returns fresh, independent arrays", () => {
  const a = qwen3TokenizerMetadata();
  arr<string>(a, "tokenizer.ggml.tokens")[0] = "changed";
  const b = qwen3TokenizerMetadata();
  assert.equal(arr<string>(b, "tokenizer.ggml.tokens")[0], "!");
});

test("vocabSize: larger pads further, smaller than the tokenizer is an error", () => {
  const md = qwen3TokenizerMetadata(152064);
  const tokens = arr<string>(md, "tokenizer.ggml.tokens");
  assert.equal(tokens.length, 152064);
  assert.equal(tokens[152063], "[PAD152063]");
  assert.throws(() => qwen3TokenizerMetadata(151000), ModelError);
});

test("doesTokenLookSpecial mirrors convert_hf_to_gguf.py", () => {
  for (const t of ["<|x|>", "<｜begin▁of▁sentence｜>", "<unused12>", "<pad>", "<mask>", "<2mass>", "[@BOS@]"]) {
    assert.ok(doesTokenLookSpecial(t), t);
  }
  for (const t of ["<think>", "<tool_call>", "<|x", "x|>", "<s>"]) assert.ok(!doesTokenLookSpecial(t), t);
});
