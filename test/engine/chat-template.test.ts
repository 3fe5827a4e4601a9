// The Qwen3 chat template rendered by @huggingface/jinja against renderings made by Python's Jinja2 set up
// as transformers does (scripts/chat-template-goldens.py wrote the goldens): plain turns, enable_thinking,
// dropped old thinking, tools offered, tool calls (string and object arguments) and tool responses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { renderChat, type ChatMessage, type ChatTool } from "../../src/engine/chat-template.js";
import { qwen3TokenizerMetadata } from "../../src/tokenizer/qwen3-vocab.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { ModelError } from "../../src/util/errors.js";

interface Case { name: string; messages: ChatMessage[]; tools?: ChatTool[]; enable_thinking?: boolean; add_generation_prompt?: boolean }
const dir = new URL("../fixtures/chat-templates/", import.meta.url);
const cases = JSON.parse(readFileSync(new URL("cases.json", dir), "utf8")) as Case[];
const goldens = JSON.parse(readFileSync(new URL("qwen3-goldens.json", dir), "utf8")) as { name: string; text: string }[];
const tok = Tokenizer.fromMetadata(qwen3TokenizerMetadata());
const template = tok.chatTemplate ?? undefined;

test("goldens cover every case", () => assert.deepEqual(goldens.map((g) => g.name), cases.map((c) => c.name)));

for (const [i, c] of cases.entries()) {
  test(`qwen3 template: ${c.name}`, () => {
    const text = renderChat(template, c.messages, { tools: c.tools, enableThinking: c.enable_thinking, addGenerationPrompt: c.add_generation_prompt });
    assert.equal(text, goldens[i].text);
  });
}

test("rendered special tokens become single ids", () => {
  const text = renderChat(template, [{ role: "user", content: "hi" }]);
  const ids = tok.encode(text, { parseSpecial: true });
  const imStart = tok.encode("<|im_start|>", { parseSpecial: true });
  assert.equal(imStart.length, 1);
  assert.equal(ids[0], imStart[0]);
  assert.equal(ids.filter((t) => t === imStart[0]).length, 2);
});

test("a model without a template is a clear error", () => {
  assert.throws(() => renderChat(undefined, [{ role: "user", content: "hi" }]), (e: unknown) => e instanceof ModelError && /no tokenizer.chat_template/.test(e.message));
});

test("a broken template is a typed error naming the template key, with the parser's reason", () => {
  const m: ChatMessage[] = [{ role: "user", content: "Hi" }];
  assert.throws(() => renderChat("{% for m in messages %}{{ m.content }", m), (e: unknown) => e instanceof ModelError && e.code === "bad_chat_template" && /tokenizer\.chat_template\) cannot be parsed: .+/.test(e.message));
  assert.throws(() => renderChat("{{ raise_exception('no system role') }}", m), (e: unknown) => e instanceof ModelError && /cannot be rendered: .*no system role/.test(e.message));
});
