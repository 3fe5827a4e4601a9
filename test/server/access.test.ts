// Access from browsers and with a key, through a real `moestream serve`: --cors answers preflights and labels
// answers for the origins given (and only those), --api-key turns away clients without the bearer key with
// OpenAI's 401 (the official client raises AuthenticationError), and any model id reaches the loaded model.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { smallVocabModel } from "../helpers/models.js";
import { startServer, type RunningServer } from "./server.js";

const APP = "https://app.example";
const KEY = "sk-local-test";
let srv: RunningServer;
test.before(async () => {
  const model = await smallVocabModel({ type: "Q8_0", seed: 5, peaked: 2, nVocab: 8192 });
  srv = await startServer(model, "--ctx-size", "128", "--cors", `${APP}, http://localhost:5173`, "--api-key", KEY, "--alias", "local");
});
test.after(async () => {
  assert.equal(await srv.stop(), 0, srv.stderr());
});

const client = (apiKey: string) => new OpenAI({ baseURL: `${srv.url}/v1`, apiKey, maxRetries: 0 });
const chat = (c: OpenAI, model: string) => c.chat.completions.create({ model, messages: [{ role: "user", content: "Hi" }], max_tokens: 3, temperature: 0 });

test("--api-key: no key or a wrong one is a 401 in OpenAI's shape; the right key and any model id are served", async () => {
  for (const headers of [{}, { authorization: "Bearer nope" }, { authorization: KEY }] as Record<string, string>[]) {
    const r = await fetch(`${srv.url}/v1/models`, { headers });
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.headers.get("www-authenticate"), "Bearer");
    const e = (await r.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(e.error).sort(), ["code", "message", "param", "type"]);
    assert.equal(e.error.code, "invalid_api_key");
    assert.equal(e.error.type, "invalid_request_error");
  }
  await assert.rejects(chat(client("wrong"), "local"), OpenAI.AuthenticationError);
  const ok = client(KEY);
  for (const model of ["local", "gpt-4o", "anything/else:Q4"]) {
    const r = await chat(ok, model);
    assert.equal(r.model, "local", "replies carry the served id");
    assert.equal(r.usage?.completion_tokens, 3);
  }
  assert.deepEqual((await ok.models.list()).data.map((m) => m.id), ["local"]);
  await assert.rejects(ok.models.retrieve("gpt-4o"), OpenAI.NotFoundError); // a listing names what is there
  // /health stays open (load balancers, readiness probes).
  assert.equal((await fetch(`${srv.url}/health`)).status, 200);
});

test("--cors: preflights from a listed origin get 204 and the allowed methods and headers; other origins get no CORS headers", async () => {
  const preflight = (origin: string) =>
    fetch(`${srv.url}/v1/chat/completions`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" } });
  const r = await preflight(APP);
  assert.equal(r.status, 204);
  assert.equal(r.headers.get("access-control-allow-origin"), APP);
  assert.match(r.headers.get("access-control-allow-methods")!, /POST/);
  assert.equal(r.headers.get("access-control-allow-headers"), "authorization, content-type");
  assert.equal(r.headers.get("vary"), "origin");
  assert.equal((await preflight("http://localhost:5173")).status, 204);
  const other = await preflight("https://evil.example");
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  // The answers themselves carry the header, errors included, so the page can read them.
  const post = (headers: Record<string, string>) =>
    fetch(`${srv.url}/v1/chat/completions`, { method: "POST", headers: { origin: APP, "content-type": "application/json", ...headers }, body: JSON.stringify({ model: "x", messages: [{ role: "user", content: "Hi" }], max_tokens: 2 }) });
  const good = await post({ authorization: `Bearer ${KEY}` });
  assert.equal(good.status, 200);
  assert.equal(good.headers.get("access-control-allow-origin"), APP);
  const denied = await post({});
  assert.equal(denied.status, 401);
  assert.equal(denied.headers.get("access-control-allow-origin"), APP);
});
