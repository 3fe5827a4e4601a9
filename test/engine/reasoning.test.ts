// The <think> splitter against hand-written splits, and cut at every point (two and three pieces): the pieces
// give the same reasoning and content as the whole text, so streamed deltas join to the non-streamed reply.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ReasoningSplitter } from "../../src/engine/reasoning.js";
import { ThinkPrinter } from "../../src/cli/chat.js";

function run(pieces: string[], open = false): { reasoning: string; content: string } {
  const s = new ReasoningSplitter(open);
  const out = { reasoning: "", content: "" };
  for (const p of [...pieces.map((x) => s.push(x)), s.flush()]) {
    out.reasoning += p.reasoning;
    out.content += p.content;
  }
  return out;
}

const CASES: [string, boolean, string, string][] = [
  // text, prompt opened the block, reasoning, content
  ["<think>\nLet me see.\n2 + 2 = 4.\n</think>\n\nThe answer is 4.", false, "Let me see.\n2 + 2 = 4.", "The answer is 4."],
  ["\n<think>x</think>y", false, "x", "y"],
  ["<think>\n\n</think>\n\nHello", false, "", "Hello"], // enable_thinking=false renders an empty block
  [" Hello <think>not a block</think>", false, "", " Hello <think>not a block</think>"], // only a leading block counts
  ["<thin", false, "", "<thin"], // a tag that never completes is content
  ["I reason</think>\n\nDone", true, "I reason", "Done"], // the template opened <think> in the prompt
  ["still thinking when cut  ", true, "still thinking when cut", ""],
  ["<think>a < b </thinking> c</think>d", false, "a < b </thinking> c", "d"],
  ["", false, "", ""],
];

test("hand-written replies split into reasoning and content", () => {
  for (const [text, open, reasoning, content] of CASES) assert.deepEqual(run([text], open), { reasoning, content }, JSON.stringify(text));
});

test("cut anywhere into two or three pieces, the reply splits the same", () => {
  for (const [text, open, reasoning, content] of CASES) {
    for (let i = 0; i <= text.length; i++) {
      assert.deepEqual(run([text.slice(0, i), text.slice(i)], open), { reasoning, content }, `${JSON.stringify(text)} at ${i}`);
      for (let j = i; j <= text.length; j += 3) assert.deepEqual(run([text.slice(0, i), text.slice(i, j), text.slice(j)], open), { reasoning, content });
    }
  }
});

test("the chat prints thinking dimmed on a terminal, plain when piped, nothing when hidden; the answer on its own line", () => {
  const print = (show: boolean, dim: boolean) => {
    const p = new ThinkPrinter(show, dim);
    return ["<think>\nhm", "m</think>\n\nYes", "."].map((x) => p.push(x)).join("") + p.flush();
  };
  assert.equal(print(true, true), "\x1b[2mhm\x1b[22m\x1b[2mm\x1b[22m\nYes.");
  assert.equal(print(true, false), "hmm\nYes.");
  assert.equal(print(false, true), "Yes.");
});
