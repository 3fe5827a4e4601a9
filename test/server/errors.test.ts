// Bad requests against a real `moestream serve`: each gets OpenAI's error JSON with the right status
// and names the field, and the server keeps serving. Also the full queue (429) and shutdown.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { testModel } from "../helpers/models.js";
import { post, startServer, type RunningServer } from "./server.js";

const modelPath = await testModel({ type: "Q8_0", seed: 3 });
let srv: RunningServer;
test.before(async () => {
  srv = await startServer(modelPath, "--ctx-size", "64", "--max-queue", "1");
});
test.after(async () => {
  assert.equal(await srv.stop(), 0, srv.stderr());
});

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}
function errorOf(text: string): ErrorBody["error"] {
  const j = JSON.parse(text) as ErrorBody;
  assert.deepEqual(Object.keys(j.error).sort(), ["code", "message", "param", "type"]);
  return j.error;
}

test("malformed JSON and a non-object body: 400 invalid_request_error", async () => {
  for (const body of ['{"model": "x", "messages": [', "", "[1, 2]", "null"]) {
    const r = await post(`${srv.url}/v1/chat/completions`, body);
    assert.equal(r.status, 400, body);
    assert.equal(errorOf(r.text).type, "invalid_request_error");
  }
});

test("wrong types and values: 400 naming the field", async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ temperature: "hot" }, "temperature"],
    [{ temperature: -1 }, "temperature"],
    [{ top_p: 1.5 }, "top_p"],
    [{ max_tokens: 0 }, "max_tokens"],
    [{ max_tokens: 2.5 }, "max_tokens"],
    [{ seed: "x" }, "seed"],
    [{ stop: 5 }, "stop"],
    [{ stream: "yes" }, "stream"],
    [{ n: 3 }, "n"],
    [{ messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
    [{ messages: [] }, "messages"],
    [{ messages: undefined }, "messages"],
  ];
  for (const [patch, param] of cases) {
    const body = { model: srv.model, messages: [{ role: "user", content: "Hi" }], max_tokens: 2, ...patch };
    const err = await srv.client.chat.completions.create(body as never).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.BadRequestError, `${JSON.stringify(patch)}: ${String(err)}`);
    assert.equal(err.status, 400);
    assert.equal(err.param, param, JSON.stringify(patch));
    assert.equal(err.type, "invalid_request_error");
    assert.ok(err.message.includes(param), err.message);
  }
  const r = await post(`${srv.url}/v1/completions`, JSON.stringify({ model: srv.model, prompt: 7 }));
  assert.equal(r.status, 400);
  assert.equal(errorOf(r.text).param, "prompt");
});

test("any model id reaches the loaded model; /v1/models/OTHER is a 404; no CORS headers or preflight answers by default", async () => {
  const r = await srv.client.completions.create({ model: "gpt-4o", prompt: "x", max_tokens: 2 });
  assert.equal(r.model, srv.model);
  const err = await srv.client.models.retrieve("gpt-4o").then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof OpenAI.NotFoundError, String(err));
  assert.equal(err.code, "model_not_found");
  const pre = await fetch(`${srv.url}/v1/chat/completions`, { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "POST" } });
  assert.equal(pre.status, 405);
  assert.equal(pre.headers.get("access-control-allow-origin"), null);
  const h = await fetch(`${srv.url}/health`, { headers: { origin: "https://app.example" } });
  assert.equal(h.headers.get("access-control-allow-origin"), null);
});

test("a body over the limit: 413; the server still answers", async () => {
  const big = "x".repeat(2 * 2 ** 20);
  const err = await srv.client.chat.completions.create({ model: srv.model, messages: [{ role: "user", content: big }] }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof OpenAI.APIError, String(err));
  assert.equal(err.status, 413);
  // Chunked upload with no content-length is counted as it arrives.
  const body = new ReadableStream({
    start(c) {
      for (let i = 0; i < 3; i++) c.enqueue(new TextEncoder().encode("y".repeat(2 ** 20)));
      c.close();
    },
  });
  const r = await fetch(`${srv.url}/v1/completions`, { method: "POST", body, duplex: "half" } as RequestInit);
  assert.equal(r.status, 413);
  assert.equal(errorOf(await r.text()).code, "request_too_large");
});

test("a prompt beyond the context: 400 stating the limit", async () => {
  const err = await srv.client.completions.create({ model: srv.model, prompt: "hello ".repeat(100), max_tokens: 4 }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof OpenAI.BadRequestError, String(err));
  assert.equal(err.code, "context_length_exceeded");
  assert.match(err.message, /maximum context length is 64 tokens/);
  // max_tokens past the context is clamped: generation ends at the context with finish_reason length.
  const r = await srv.client.completions.create({ model: srv.model, prompt: "hello ".repeat(50), max_tokens: 100, temperature: 0 });
  assert.equal(r.usage!.prompt_tokens + r.usage!.completion_tokens <= 64, true);
});

test("fields that cannot be honoured, an empty prompt and a flood of messages: 400 naming the field", async () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ["/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }], logit_bias: { "100": -100 } }, "logit_bias"],
    ["/v1/completions", { prompt: "" }, "prompt"],
    ["/v1/completions", { prompt: [""] }, "prompt"],
    ["/v1/chat/completions", { messages: Array.from({ length: 8193 }, () => ({ role: "user", content: "" })) }, "messages"],
  ];
  for (const [url, patch, param] of cases) {
    const r = await post(`${srv.url}${url}`, JSON.stringify({ model: srv.model, max_tokens: 2, ...patch }));
    assert.equal(r.status, 400, `${url} ${param}: ${r.text.slice(0, 200)}`);
    const e = errorOf(r.text);
    assert.ok(e.param?.startsWith(param), `${param}: ${JSON.stringify(e)}`);
  }
  // An empty logit_bias changes nothing and is accepted (some clients always send one).
  const ok = await post(`${srv.url}/v1/completions`, JSON.stringify({ model: srv.model, prompt: "Hi", max_tokens: 1, logit_bias: {} }));
  assert.equal(ok.status, 200, ok.text);
});

test("a malformed URL is a 400, not a server error", async () => {
  const r = await fetch(`${srv.url}/v1/models/%E0%A4%A`);
  assert.equal(r.status, 400);
  assert.equal(errorOf(await r.text()).code, "invalid_url");
  assert.ok(!srv.stderr().includes("internal error"), srv.stderr());
});

test("unknown endpoint 404, wrong method 405", async () => {
  assert.equal((await fetch(`${srv.url}/v1/embeddings`, { method: "POST", body: "{}" })).status, 404);
  assert.equal((await fetch(`${srv.url}/v1/chat/completions`)).status, 405);
});

test("a full queue answers 429; the waiting and running requests still complete", async () => {
  const stream = (tokens: number) =>
    fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: srv.model, prompt: "Hi", max_tokens: tokens, temperature: 0, stream: true }) });
  const first = await stream(60); // headers arrive once it runs
  const second = stream(4); // waits (--max-queue 1)
  // The third goes as soon as the second is queued, while the first still generates (a fixed sleep let a fast
  // machine finish the first and start the second meanwhile, leaving room in the queue).
  for (;;) {
    const h = (await (await fetch(`${srv.url}/health`)).json()) as { queue_depth: number };
    if (h.queue_depth === 1) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  const third = await post(`${srv.url}/v1/completions`, JSON.stringify({ model: srv.model, prompt: "Hi", max_tokens: 2 }));
  assert.equal(third.status, 429);
  assert.equal(errorOf(third.text).type, "rate_limit_error");
  assert.match(await first.text(), /data: \[DONE\]\n\n$/);
  assert.match(await (await second).text(), /data: \[DONE\]\n\n$/);
});

test("after all of the above the server is healthy", async () => {
  const h = (await (await fetch(`${srv.url}/health`)).json()) as { status: string; running: number; queue_depth: number };
  assert.deepEqual(h, { status: "ok", model: srv.model, running: 0, queue_depth: 0 });
  const r = await srv.client.chat.completions.create({ model: srv.model, messages: [{ role: "user", content: "Hi" }], max_tokens: 2 });
  assert.equal(r.usage?.completion_tokens, 2);
});
