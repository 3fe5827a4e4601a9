// Logprobs, tools and prefix reuse through the official openai client against a real `moestream serve`.
// Logprobs are checked against `moestream run --json`'s raw top logits (differences of log-softmax values
// equal differences of logits) and against themselves (greedy picks the top; probabilities sum <= 1).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { renderChat } from "../../src/engine/chat-template.js";
import { qwen3TokenizerMetadata } from "../../src/tokenizer/qwen3-vocab.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { testModel } from "../helpers/models.js";
import { BIN, post, startServer, type RunningServer } from "./server.js";

const modelPath = await testModel({ type: "Q8_0", seed: 3 });
// Built before the server starts: seconds of synchronous work between two requests (a loaded machine) let the
// server's idle keep-alive timer close the socket this client was about to reuse ("Connection error").
const tok = Tokenizer.fromMetadata(qwen3TokenizerMetadata());
let srv: RunningServer;
test.before(async () => {
  srv = await startServer(modelPath, "--ctx-size", "512");
});
test.after(async () => {
  assert.equal(await srv.stop(), 0, srv.stderr());
});

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test("chat logprobs: one entry per token, greedy picks the top, gaps equal the raw logit gaps of `run --json`", async () => {
  // Asynchronous, so the in-process server's event loop (and its keep-alive timers) keep running meanwhile.
  const r = await promisify(execFile)(process.execPath, [BIN, "run", "-m", modelPath, "-p", "Hi", "--chat", "-n", "6", "--temp", "0", "--ignore-eos", "--json"], { encoding: "utf8" });
  const cli = JSON.parse(r.stdout) as { tokens: number[]; top_logits: [number, number][][] };
  const res = await srv.client.chat.completions.create({ model: srv.model, messages: [{ role: "user", content: "Hi" }], max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = res.choices[0].logprobs!.content!;
  assert.equal(content.length, res.usage!.completion_tokens);
  assert.equal(content.map((c) => c.token).join(""), res.choices[0].message.content);
  for (const [i, c] of content.entries()) {
    assert.equal(c.top_logprobs.length, 3);
    close(c.logprob, c.top_logprobs[0].logprob, 1e-6, `token ${i} is the most likely`);
    assert.ok(c.logprob <= 0);
    assert.ok(c.top_logprobs.reduce((a, t) => a + Math.exp(t.logprob), 0) <= 1 + 1e-6);
    assert.deepEqual(Buffer.from(c.bytes!).toString("utf8"), c.token);
    const logits = cli.top_logits[i];
    close(c.top_logprobs[0].logprob - c.top_logprobs[1].logprob, logits[0][1] - logits[1][1], 1e-4, `step ${i} gap`);
  }

  // Streamed: the same entries, spread over the chunks.
  const stream = await srv.client.chat.completions.create({ model: srv.model, messages: [{ role: "user", content: "Hi" }], max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
  const streamed = [];
  for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
  assert.deepEqual(streamed.map((c) => c.token), content.map((c) => c.token));
  streamed.forEach((c, i) => close(c.logprob, content[i].logprob, 1e-6, `streamed ${i}`));
});

test("completion logprobs: tokens join to the text, offsets advance, top alternatives as a map", async () => {
  const res = await srv.client.completions.create({ model: srv.model, prompt: "Once upon a time", max_tokens: 5, temperature: 0, logprobs: 2 });
  const lp = res.choices[0].logprobs!;
  assert.equal(lp.tokens!.join(""), res.choices[0].text);
  assert.equal(lp.token_logprobs!.length, 5);
  let at = 0;
  lp.tokens!.forEach((t, i) => {
    assert.equal(lp.text_offset![i], at);
    at += t.length;
    assert.ok(Object.keys(lp.top_logprobs![i]).length >= 1);
  });
});

test("tools reach the template (prompt_tokens match the rendering); a forced tool_choice renders without thinking and starts the call", async () => {
  const tools = [{ type: "function" as const, function: { name: "get_weather", description: "Weather in a city", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
  const messages = [{ role: "user" as const, content: "Weather in Paris?" }];
  const res = await srv.client.chat.completions.create({ model: srv.model, messages, tools, max_tokens: 3, temperature: 0 });
  const want = tok.encode(renderChat(tok.chatTemplate!, messages, { tools }), { parseSpecial: true }).length;
  assert.equal(res.usage!.prompt_tokens, want);
  const none = await srv.client.chat.completions.create({ model: srv.model, messages, tools, tool_choice: "none", max_tokens: 3, temperature: 0 });
  assert.equal(none.usage!.prompt_tokens, tok.encode(renderChat(tok.chatTemplate!, messages), { parseSpecial: true }).length);
  // Cut after 4 tokens the call is incomplete, so it comes back as content: the start of the grammar's call.
  const forced = await srv.client.chat.completions.create({ model: srv.model, messages, tools, tool_choice: "required", max_tokens: 4, temperature: 0 });
  assert.equal(forced.usage!.prompt_tokens, tok.encode(renderChat(tok.chatTemplate!, messages, { tools, enableThinking: false }), { parseSpecial: true }).length);
  const start = '<tool_call>\n{"name": "get_weather", "arguments": {';
  const content = forced.choices[0].message.content!;
  assert.ok(content.length > 0 && start.startsWith(content.slice(0, start.length)), content);
});

test("a repeated prompt reuses its KV: cached_tokens reported, same output", async () => {
  const body = { model: srv.model, prompt: "The same long prompt, word for word, again and again", max_tokens: 4, temperature: 0 };
  const a = await srv.client.completions.create(body);
  const b = await srv.client.completions.create(body);
  assert.equal(b.choices[0].text, a.choices[0].text);
  const cached = (b.usage as unknown as { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details.cached_tokens;
  assert.equal(cached, b.usage!.prompt_tokens - 1);
});
