// The official openai client against a real `moestream serve`: chat and completions, streamed and
// not, greedy output equal to `moestream run`, stop sequences, limits, parallel clients, abort.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { testModel } from "../helpers/models.js";
import { BIN, startServer, type RunningServer } from "./server.js";

const modelPath = await testModel({ type: "Q8_0", seed: 3 });
let srv: RunningServer;
test.before(async () => {
  srv = await startServer(modelPath, "--ctx-size", "256");
});
test.after(async () => {
  assert.equal(await srv.stop(), 0, srv.stderr());
});

// Asynchronous: a synchronous spawn would block this process's event loop, where the server under test runs,
// and a pooled keep-alive socket could time out server-side just as the client reuses it ("other side closed").
async function runCli(...args: string[]) {
  const r = await promisify(execFile)(process.execPath, [BIN, "run", "-m", modelPath, ...args, "--json"], { encoding: "utf8", env: { ...process.env, MOESTREAM_TEMP: undefined } });
  return JSON.parse(r.stdout) as { prompt_tokens: number[]; tokens: number[]; text: string };
}

test("GET /v1/models, /v1/models/:id and /health", async () => {
  const list = await srv.client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [srv.model]);
  assert.equal(list.data[0].object, "model");
  assert.equal((await srv.client.models.retrieve(srv.model)).id, srv.model);
  const h = (await (await fetch(`${srv.url}/health`)).json()) as { status: string };
  assert.equal(h.status, "ok");
});

test("chat, temperature 0: same text and token counts as `moestream run --chat --temp 0`", async () => {
  const cli = await runCli("-p", "Hi", "--chat", "-n", "8", "--temp", "0");
  const r = await srv.client.chat.completions.create({ model: srv.model, messages: [{ role: "user", content: "Hi" }], max_tokens: 8, temperature: 0 });
  assert.equal(r.object, "chat.completion");
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(r.choices[0].message.content, cli.text);
  assert.equal(r.choices[0].finish_reason, "length");
  assert.deepEqual(r.usage && { p: r.usage.prompt_tokens, c: r.usage.completion_tokens, t: r.usage.total_tokens }, { p: cli.prompt_tokens.length, c: 8, t: cli.prompt_tokens.length + 8 });
  // Reproducible, and max_completion_tokens is honoured like max_tokens.
  const again = await srv.client.chat.completions.create({ model: srv.model, messages: [{ role: "user", content: "Hi" }], max_completion_tokens: 8, temperature: 0 });
  assert.equal(again.choices[0].message.content, cli.text);
});

test("completions, temperature 0: same as `moestream run --temp 0`; streamed text equals the whole", async () => {
  const cli = await runCli("-p", "Once upon a time", "-n", "10", "--temp", "0");
  const r = await srv.client.completions.create({ model: srv.model, prompt: "Once upon a time", max_tokens: 10, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices[0].text, cli.text);
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.usage?.prompt_tokens, cli.prompt_tokens.length);
  assert.equal(r.usage?.completion_tokens, 10);

  const stream = await srv.client.completions.create({ model: srv.model, prompt: "Once upon a time", max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = "";
  const finishes: (string | null)[] = [];
  let usage;
  for await (const c of stream) {
    assert.equal(c.object, "text_completion");
    assert.equal(c.model, srv.model);
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      text += ch.text;
      finishes.push(ch.finish_reason);
    }
  }
  assert.equal(text, cli.text);
  assert.equal(finishes.at(-1), "length");
  assert.ok(finishes.slice(0, -1).every((f) => f === null));
  assert.equal(usage?.completion_tokens, 10);
  // Token ids as the prompt give the same result.
  const ids = await srv.client.completions.create({ model: srv.model, prompt: cli.prompt_tokens, max_tokens: 10, temperature: 0 });
  assert.equal(ids.choices[0].text, cli.text);
});

test("chat streaming: role first, content deltas, finish chunk, usage chunk, then [DONE]", async () => {
  const body = { model: srv.model, messages: [{ role: "user" as const, content: "Hi" }], max_tokens: 6, temperature: 0 };
  const whole = await srv.client.chat.completions.create(body);
  const stream = await srv.client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  const ids = new Set(chunks.map((c) => c.id));
  assert.equal(ids.size, 1);
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
  const last = chunks.at(-1)!;
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage?.completion_tokens, 6);
  assert.equal(chunks.at(-2)!.choices[0].finish_reason, "length");
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), whole.choices[0].message.content);

  // On the wire: `data: {...}` events and the terminating `data: [DONE]`.
  const raw = await fetch(`${srv.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, stream: true }) });
  assert.match(raw.headers.get("content-type") ?? "", /^text\/event-stream/);
  const events = (await raw.text()).split("\n\n").filter(Boolean);
  assert.equal(events.at(-1), "data: [DONE]");
  for (const e of events.slice(0, -1)) {
    assert.ok(e.startsWith("data: "), e);
    const j = JSON.parse(e.slice(6));
    assert.equal(j.usage, undefined, "no usage field unless stream_options.include_usage");
  }
});

test("stop sequences: the text ends before the stop text, finish_reason stop (string and array)", async () => {
  const body = { model: srv.model, prompt: "Once upon a time", max_tokens: 10, temperature: 0 };
  const full = (await srv.client.completions.create(body)).choices[0].text;
  const cut = Math.floor(full.length / 2);
  const stopText = full.slice(cut, cut + 3);
  const expected = full.slice(0, full.indexOf(stopText));
  const a = await srv.client.completions.create({ ...body, stop: stopText });
  assert.equal(a.choices[0].text, expected);
  assert.equal(a.choices[0].finish_reason, "stop");
  assert.ok(a.usage!.completion_tokens < 10);
  const b = await srv.client.completions.create({ ...body, stop: ["never appears \u0000", stopText], stream: true });
  let text = "";
  let finish;
  for await (const c of b) {
    text += c.choices[0]?.text ?? "";
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, expected);
  assert.equal(finish, "stop");
});

test("sampling fields: a seed reproduces; penalties and top_p are accepted", async () => {
  const body = { model: srv.model, prompt: "Hello", max_tokens: 8, temperature: 1.2, top_p: 0.9, seed: 42, presence_penalty: 0.5, frequency_penalty: 0.5 };
  const a = await srv.client.completions.create(body);
  const b = await srv.client.completions.create(body);
  assert.equal(a.choices[0].text, b.choices[0].text);
});

test("three parallel streaming clients all complete, each with the sequential result", async () => {
  const prompts = ["Hello", "The sky", "One two three"];
  const solo = [];
  for (const p of prompts) solo.push((await srv.client.completions.create({ model: srv.model, prompt: p, max_tokens: 6, temperature: 0 })).choices[0].text);
  const together = await Promise.all(prompts.map(async (p) => {
    let s = "";
    for await (const c of await srv.client.completions.create({ model: srv.model, prompt: p, max_tokens: 6, temperature: 0, stream: true })) s += c.choices[0]?.text ?? "";
    return s;
  }));
  assert.deepEqual(together, solo);
});

test("a client that aborts mid-stream stops its generation; the next request is served", async () => {
  const ac = new AbortController();
  const stream = await srv.client.completions.create({ model: srv.model, prompt: "Hello", max_tokens: 200, temperature: 0, stream: true }, { signal: ac.signal });
  let n = 0;
  try {
    for await (const _ of stream) if (++n === 2) ac.abort();
  } catch (e) {
    assert.match(String(e), /abort/i);
  }
  assert.ok(n < 10, `the stream ended at the abort (${n} chunks)`);
  const t0 = Date.now();
  const next = await srv.client.completions.create({ model: srv.model, prompt: "Hello", max_tokens: 3, temperature: 0 });
  assert.equal(next.usage?.completion_tokens, 3);
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(metrics, /^moestream_requests_aborted_total [1-9]/m);
  assert.ok(Date.now() - t0 < 20_000);
});
