// Fitting a conversation into the context (engine/context-fit.ts) against hand-counted windows, and the
// automatic context size (engine/context-size.ts) against hand-computed KV arithmetic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fitContext, replyReserve, shiftSlack } from "../../src/engine/context-fit.js";
import { autoContextSize } from "../../src/engine/context-size.js";
import type { ChatMessage } from "../../src/engine/chat-template.js";
import { UsageError } from "../../src/util/errors.js";

// A stand-in template: 2 tokens of framing per message, one per character of content, 3 for the generation prompt.
const count = (m: ChatMessage[]) => m.reduce((a, x) => a + 2 + x.content.length, 3);
/** A message of exactly `tokens` tokens under `count`. */
const msg = (role: ChatMessage["role"], tokens: number, tag = ""): ChatMessage => ({ role, content: tag.padEnd(tokens - 2, "x") });
// system 8, then turns of user 10 + assistant 20 (30 a turn), then the latest user message of 10; + 3.
const conv = (turns: number): ChatMessage[] => [
  msg("system", 8, "S"),
  ...Array.from({ length: turns }, (_, i) => [msg("user", 10, `u${i}`), msg("assistant", 20, `a${i}`)]).flat(),
  msg("user", 10, "last"),
];

test("a conversation that fits is kept whole", () => {
  const m = conv(3);
  assert.equal(count(m), 111);
  const fit = fitContext(m, { count, nCtx: 121, reserve: 10 });
  assert.equal(fit.messages, m);
  assert.equal(fit.dropped, 0);
  assert.equal(fit.droppedTokens, 0);
});

test("beyond the context the oldest whole turns go, the system prompt and the latest turn stay", () => {
  const m = conv(5); // 171 tokens
  // nCtx 150, reserve 20: the window must be <= 130 -> two turns (60 tokens) go, leaving 111.
  const fit = fitContext(m, { count, nCtx: 150, reserve: 20 });
  assert.equal(fit.dropped, 4);
  assert.deepEqual(fit.messages, [m[0], ...m.slice(5)]);
  assert.equal(fit.messages[1].content, "u2xxxxxx");
  assert.equal(fit.droppedTokens, 60);
  // With slack 30 the window must be <= 100: three turns go, leaving 81.
  const deeper = fitContext(m, { count, nCtx: 150, reserve: 20, slack: 30 });
  assert.equal(deeper.dropped, 6);
  assert.equal(count(deeper.messages), 81);
});

test("a turn is never split: assistant and tool messages leave with the user message before them", () => {
  const m: ChatMessage[] = [msg("user", 40, "u0"), msg("assistant", 6, "a0"), msg("tool", 6, "t0"), msg("assistant", 6, "a0b"), msg("user", 6, "u1"), msg("assistant", 6, "a1"), msg("user", 6, "u2")];
  // 79 tokens; nCtx 60, reserve 10 -> <= 50. Dropping u0 alone would give 39, but its turn is 4 messages (58).
  const fit = fitContext(m, { count, nCtx: 60, reserve: 10 });
  assert.equal(fit.dropped, 4);
  assert.equal(fit.messages[0].content, "u1xx");
  assert.equal(fit.droppedTokens, 58);
});

test("a previous cut is kept while the conversation fits after it, so the KV prefix stays", () => {
  const m = conv(5);
  const opts = { count, nCtx: 150, reserve: 20, slack: 30 };
  const first = fitContext(m, opts); // <= 100: three turns go, 81 left
  assert.equal(first.dropped, 6);
  // The caller appends the reply and a new message (+30): 111 + 20 <= 150 after the same cut.
  const next = [...m, msg("assistant", 20, "a5"), msg("user", 10, "u6")];
  const again = fitContext(next, { ...opts, minDropped: first.dropped });
  assert.equal(again.dropped, 6);
  assert.deepEqual(again.messages.slice(0, first.messages.length), first.messages, "the previous window is a prefix of this one");
  // Without the memory the history (201) is cut afresh to <= 100: four turns, a different prefix.
  assert.equal(fitContext(next, opts).dropped, 8);
});

test("when only a short reply fits, the latest turn still runs; beyond the context, a typed error names --ctx-size and both numbers", () => {
  const m = [msg("system", 32, "S"), msg("user", 12, "old"), msg("assistant", 12, "r"), msg("user", 42, "long")];
  // System and latest turn: 77. nCtx 80, reserve 20: not <= 60, but <= 80 works; so does 77 (one token sampled).
  const fit = fitContext(m, { count, nCtx: 80, reserve: 20 });
  assert.equal(fit.dropped, 2);
  assert.equal(count(fit.messages), 77);
  assert.equal(fitContext(m, { count, nCtx: 77, reserve: 20 }).dropped, 2);
  assert.throws(() => fitContext(m, { count, nCtx: 76, reserve: 20 }), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.equal(e.code, "prompt_too_long");
    assert.equal(e.message, "the system prompt with the latest message (77 tokens) exceeds the context of 76 tokens; raise --ctx-size (ctxSize) or shorten it");
    return true;
  });
});

test("reply reserve and slack: a quarter of the context at most, a tenth beyond it", () => {
  assert.equal(replyReserve(1024, 256), 64);
  assert.equal(replyReserve(16, 256), 16);
  assert.equal(replyReserve(0, 256), 1);
  assert.equal(shiftSlack(256), 25);
});

test("auto context size: the training context, capped at 32768 and by 1/8 of the budget after dense weights, at least 4096", () => {
  const GiB = 2 ** 30;
  const qwen30b = (n: number) => n * 48 * 2 * 4 * 4 * 128; // f32 K and V rows, 4 KV heads of 128, 48 layers: 192 KiB a token
  // 24 GiB machine, 1 GiB dense: 23/8 GiB / 192 KiB = 15701 -> 15616 (multiple of 256).
  assert.equal(autoContextSize(40960, qwen30b, 24 * GiB, GiB).ctxSize, 15616);
  // 64 GiB: 63/8 GiB holds 43008 tokens -> the cap.
  assert.deepEqual(autoContextSize(40960, qwen30b, 64 * GiB, GiB), { ctxSize: 32768, reason: "context 32768 tokens (--ctx-size 0: the model's training context 40960, capped at 32768)" });
  // 3 GiB cgroup: 1365 tokens by memory -> the floor.
  assert.equal(autoContextSize(40960, qwen30b, 3 * GiB, GiB).ctxSize, 4096);
  // The tiny test models (trained on 4096) get their training context; a model trained on 2048 never more.
  const tiny = (n: number) => n * 4 * 2 * 4 * 128;
  assert.equal(autoContextSize(4096, tiny, 24 * GiB, 0).ctxSize, 4096);
  assert.equal(autoContextSize(2048, tiny, 24 * GiB, 0).ctxSize, 2048);
  // A state of fixed size (recurrent layers) costs nothing per token: the cap.
  assert.equal(autoContextSize(1 << 20, () => 1 << 20, GiB, 0).ctxSize, 32768);
});
