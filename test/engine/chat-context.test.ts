// A conversation longer than the context: 20 turns at ctxSize 256 through Session.chat and Model.chat, the
// caller appending every message. Each turn's prompt is checked against the template's rendering of the
// kept window, and each reply against a fresh session evaluating that window from scratch (so cuts and
// KV reuse never change what is generated). Failed, aborted and too-long turns leave the session usable.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel, renderChat, UsageError, type ChatMessage, type GenerateOptions, type GenerationStats } from "../../src/index.js";
import { replyReserve } from "../../src/engine/context-fit.js";
import { testModel } from "../helpers/models.js";

const N_CTX = 256;
const model = await loadModel(await testModel({ type: "Q8_0", seed: 3 }), { ctxSize: N_CTX });
test.after(() => model.close());
const tok = model.tokenizer;
const render = (m: ChatMessage[]) => tok.encode(renderChat(tok.chatTemplate ?? undefined, m), { parseSpecial: true });

async function collect(gen: AsyncGenerator<{ token: number; text: string }, GenerationStats>) {
  const tokens: number[] = [];
  let text = "";
  for (;;) {
    const r = await gen.next();
    if (r.done) return { tokens, text, stats: r.value };
    tokens.push(r.value.token);
    text += r.value.text;
  }
}

// Every fifth turn asks for more tokens than the context has room for: the reply runs into its end.
const optsFor = (turn: number): GenerateOptions => ({ maxTokens: turn % 5 === 4 ? 400 : 40, sampling: { temperature: 0 } });
const question = (turn: number) => `Question ${turn}: what comes after ${turn * 7} in the sequence?`;

test("Session.chat: 20 turns at ctxSize 256, oldest turns dropped, every reply equal to a fresh evaluation of the kept window", async () => {
  const s = model.createSession();
  const messages: ChatMessage[] = [{ role: "system", content: "You are terse." }];
  const replies: string[] = [];
  let cuts = 0; // turns that dropped more than the turn before
  let kept = 0; // turns after a cut that kept it: their prompt extends the previous one
  let hitEnd = 0;
  let prev = { dropped: 0, prompt: [] as number[] };
  for (let turn = 0; turn < 20; turn++) {
    messages.push({ role: "user", content: question(turn) });
    const opts = optsFor(turn);
    const r = await collect(s.chat(messages, opts));
    const dropped = r.stats.contextShift?.droppedMessages ?? 0;
    const window = [messages[0], ...messages.slice(1 + dropped)];
    assert.equal(window[1].role, "user", "a window starts with a whole turn");
    assert.equal(window[window.length - 1].content, question(turn), "the latest message is kept");
    const prompt = render(window);
    assert.deepEqual(s.tokens.slice(0, prompt.length), prompt, `turn ${turn}: the context starts with the kept window's rendering`);
    const reserve = replyReserve(opts.maxTokens, N_CTX);
    assert.ok(prompt.length + reserve <= N_CTX || window.length === 2, `turn ${turn}: room for the reply (${prompt.length} + ${reserve}) unless only the latest message is left`);
    if (dropped) assert.equal(r.stats.contextShift!.droppedTokens, render(messages).length - prompt.length);
    if (dropped > prev.dropped) cuts++;
    else if (dropped > 0) {
      // The same cut as last turn: the window grew at its end, and only the new part was evaluated.
      assert.deepEqual(prompt.slice(0, prev.prompt.length), prev.prompt, `turn ${turn}: the window extends the previous one`);
      assert.ok(r.stats.promptTokens <= prompt.length - prev.prompt.length, `turn ${turn}: the previous window's KV is reused`);
      kept++;
    }
    prev = { dropped, prompt };
    if (r.stats.finishReason === "length" && r.tokens.length < opts.maxTokens) hitEnd++;

    const fresh = model.createSession(N_CTX);
    const ref = await collect(fresh.generate(prompt, opts));
    fresh.free();
    assert.deepEqual(r.tokens, ref.tokens, `turn ${turn}: the reply equals a fresh session's`);
    messages.push({ role: "assistant", content: r.text });
    replies.push(r.text);
  }
  assert.ok(cuts >= 3, `the conversation outgrew the context several times (${cuts})`);
  assert.ok(kept >= 3, `turns between cuts keep the cut and reuse the KV (${kept})`);
  assert.ok(hitEnd >= 2, `replies ran into the context's end and the next turn went on (${hitEnd})`);
  s.free();

  // Model.chat (the model's own session) with the same conversation gives the same replies.
  const again: ChatMessage[] = [messages[0]];
  for (let turn = 0; turn < 20; turn++) {
    again.push({ role: "user", content: question(turn) });
    const r = await collect(model.chat(again, optsFor(turn)));
    assert.equal(r.text, replies[turn], `Model.chat turn ${turn}`);
    again.push({ role: "assistant", content: r.text });
  }
});

test("a turn that cannot fit, a prompt too long for generate and an aborted turn leave the session as it was and usable", async () => {
  const s = model.createSession();
  const opts: GenerateOptions = { maxTokens: 16, sampling: { temperature: 0 } };
  const messages: ChatMessage[] = [{ role: "user", content: "Hello there" }];
  const first = await collect(s.chat(messages, opts));
  messages.push({ role: "assistant", content: first.text });
  const before = s.context;
  const stats = s.lastStats;

  // A message longer than the whole context: refused before anything is evaluated.
  const long = Array.from({ length: 300 }, (_, i) => `w${i}`).join(" ");
  const tooLong = render([{ role: "user", content: long }]).length;
  await assert.rejects(
    collect(s.chat([...messages, { role: "user", content: long }], opts)),
    (e: unknown) => e instanceof UsageError && e.code === "prompt_too_long" && e.message.includes(`the latest message (${tooLong} tokens) exceeds the context of ${N_CTX} tokens; raise --ctx-size`),
  );
  assert.deepEqual(s.context, before);
  assert.equal(s.lastStats, stats);

  // generate() checks the prompt against the context before evaluating it.
  const g = model.createSession(N_CTX);
  const ids = tok.encode(long);
  const touched = () => model.expertStats.misses + model.expertStats.hits;
  const before0 = touched();
  await assert.rejects(collect(g.generate(ids, opts)), (e: unknown) => e instanceof UsageError && e.message.includes(`the prompt (${ids.length} tokens) exceeds the context of ${N_CTX} tokens`));
  assert.equal(g.context.length, 0);
  assert.equal(touched(), before0, "no layer ran");
  g.free();

  // An aborted turn; the caller drops it (as chat does) and the next turn equals a session that never saw it.
  const ac = new AbortController();
  const gen = s.chat([...messages, { role: "user", content: "Count to fifty" }], { ...opts, maxTokens: 50, signal: ac.signal });
  let n = 0;
  for await (const _ of gen) if (++n === 3) ac.abort();
  assert.equal(s.lastStats!.finishReason, "abort");
  messages.push({ role: "user", content: "And then?" });
  const next = await collect(s.chat(messages, opts));
  const ref = model.createSession(N_CTX);
  const want = await collect(ref.chat(messages, opts));
  ref.free();
  assert.deepEqual(next.tokens, want.tokens);
  s.free();
});
