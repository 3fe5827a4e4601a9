// Tool calls out of generated text: split at every possible chunk boundary, the streamed content plus the
// parsed calls equal a one-piece parse; malformed calls come back as content, never lost.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseToolCalls, ToolCallSplitter } from "../../src/server/tools.js";

const TEXT = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>';

function split(text: string, cuts: number[]) {
  const s = new ToolCallSplitter();
  let content = "";
  let prev = 0;
  for (const c of [...cuts, text.length]) {
    content += s.push(text.slice(prev, c));
    prev = c;
  }
  const end = s.finish();
  return { content: content + end.content, calls: end.toolCalls.map((t) => t.function) };
}

test("two tool calls are parsed, arguments as JSON strings", () => {
  const calls = parseToolCalls(TEXT)!;
  assert.deepEqual(calls.map((c) => c.function), [{ name: "get_weather", arguments: '{"city":"Paris"}' }, { name: "now", arguments: "{}" }]);
  assert.ok(calls.every((c) => c.type === "function" && /^call_[0-9a-f]{24}$/.test(c.id)));
});

test("any split into two or three pieces gives the same content and calls", () => {
  const want = { content: "Let me check.\n", calls: [{ name: "get_weather", arguments: '{"city":"Paris"}' }, { name: "now", arguments: "{}" }] };
  for (let i = 0; i <= TEXT.length; i++) {
    assert.deepEqual(split(TEXT, [i]), want, `cut at ${i}`);
    if (i % 7 === 0) for (let j = i; j <= TEXT.length; j += 5) assert.deepEqual(split(TEXT, [i, j]), want, `cuts at ${i}, ${j}`);
  }
});

test("text without calls passes through whole; a '<tool' that never completes is released", () => {
  assert.deepEqual(split("plain answer <tool", [3, 14]), { content: "plain answer <tool", calls: [] });
  assert.deepEqual(split("a < b and <tool_cal> c", [10]), { content: "a < b and <tool_cal> c", calls: [] });
});

test("a malformed call comes back as content", () => {
  const bad = "x <tool_call>\n{not json}\n</tool_call>";
  assert.equal(parseToolCalls(bad), null);
  assert.deepEqual(split(bad, [5]), { content: bad, calls: [] });
  assert.deepEqual(split('<tool_call>{"arguments": {}}</tool_call>', []).calls, [], "a call needs a name");
});
