// Hostile and careless clients against the server in-process (its log sink captured): slow headers and
// slow bodies are answered 408 and dropped at the configured timeouts while others are served; clients that
// vanish mid-upload or mid-stream leave one short line each; connections over the cap are answered 503 and
// closed; no error body carries a stack trace or a file path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, statSync, truncateSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, type LoadOptions, type Model } from "../../src/engine/model.js";
import { createApiServer, type ApiServer, type ApiServerOptions } from "../../src/server/http.js";
import { OpenAIApi } from "../../src/server/openai.js";
import { testModel } from "../helpers/models.js";
import { BIN, startServer } from "./server.js";

const modelPath = await testModel({ type: "Q8_0", seed: 3 });
const dir = mkdtempSync(join(tmpdir(), "moestream-hardening-"));
const opened: { lm: Model; srv: ApiServer }[] = [];
test.after(async () => {
  for (const { lm, srv } of opened) {
    await srv.close();
    await lm.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

/** A real server on port 0 over `path`, every log line kept. */
async function serve(opts: ApiServerOptions, path = modelPath, cfg: LoadOptions = {}) {
  const lm = await loadModel(path, { ctxSize: 128, ...cfg });
  const lines: string[] = [];
  const api = new OpenAIApi(lm, { modelId: "m" });
  const srv = createApiServer(api, { ...opts, log: (l) => lines.push(l) });
  opened.push({ lm, srv });
  const { port } = await srv.listen(0, "127.0.0.1");
  return { srv, api, port, lines, url: `http://127.0.0.1:${port}` };
}

interface Raw {
  sock: Socket;
  /** Resolves when the server has closed the connection, with what it sent and when (ms after connecting). */
  closed: Promise<{ data: string; afterMs: number }>;
}
function raw(port: number, first: string): Raw {
  const t0 = performance.now();
  const sock = connect(port, "127.0.0.1");
  if (first) sock.write(first); // queued ahead of any later write
  let data = "";
  sock.on("data", (c) => (data += c));
  sock.on("error", () => {}); // writes after the server's close fail; the close is what is tested
  return { sock, closed: new Promise((resolve) => sock.on("close", () => resolve({ data, afterMs: performance.now() - t0 }))) };
}
/** Write `piece` every `ms` until the connection closes: the trickle that used to keep a connection forever. */
function trickle(r: Raw, piece: string, ms: number): void {
  const timer = setInterval(() => r.sock.writable && r.sock.write(piece), ms);
  void r.closed.then(() => clearInterval(timer));
}
const errorBody = (response: string) => JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4)) as { error: { code: string; message: string } };
const completion = (url: string, body: Record<string, unknown>) =>
  fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "m", prompt: "Hi", max_tokens: 4, temperature: 0, ...body }) });
const connections = (srv: ApiServer) => new Promise<number>((r) => srv.server.getConnections((_e, c) => r(c)));
/** Until `cond` holds (an event has been handled), polled; the bound only catches a hang. */
async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`never happened: ${what}`);
}
/** One short line: no newline, no stack frame, bounded. */
function assertShortLine(line: string): void {
  assert.ok(!line.includes("\n") && !/\bat .+:\d+:\d+/.test(line) && line.length < 200, line);
}

test("300 slow-header and slow-body clients get 408 and are dropped at their timeouts while another request is served; one line each", async (t) => {
  const { port, url, lines } = await serve({ headerTimeoutMs: 300, requestTimeoutMs: 600 });
  const slowHeaders = Array.from({ length: 150 }, () => raw(port, "GET /health HTTP/1.1\r\nhost: x\r\n"));
  for (const r of slowHeaders) trickle(r, "x-slow: 1\r\n", 50);
  const slowBodies = Array.from({ length: 150 }, () => raw(port, "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"));
  for (const r of slowBodies) trickle(r, " ", 50);
  // Served meanwhile: a health check and a streamed completion, which the request timeout does not cut
  // (it bounds receiving the request; answering may take as long as it takes).
  assert.equal((await fetch(`${url}/health`)).status, 200);
  const t0 = performance.now();
  const ok = await completion(url, { max_tokens: 32, stream: true });
  assert.equal(ok.status, 200);
  const sse = await ok.text();
  t.diagnostic(`a 32-token stream took ${(performance.now() - t0).toFixed(0)} ms beside the slow clients (request timeout 600 ms)`);
  assert.match(sse, /data: \[DONE\]\n\n$/);
  assert.equal(sse.split("\n\n").filter((e) => e.includes('"text"')).length >= 32, true);

  for (const [group, ms, what] of [[slowHeaders, 300, "headers"], [slowBodies, 600, "body"]] as const) {
    const closes = await Promise.all(group.map((r) => r.closed));
    t.diagnostic(`${group.length} slow-${what} clients closed ${Math.min(...closes.map((c) => c.afterMs)).toFixed(0)}-${Math.max(...closes.map((c) => c.afterMs)).toFixed(0)} ms after connecting (timeout ${ms} ms)`);
    for (const { data, afterMs } of closes) {
      assert.match(data, /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.equal(errorBody(data).error.code, "request_timeout");
      assert.match(errorBody(data).error.message, new RegExp(`request ${what} did not arrive within ${ms} ms`));
      // Never before its timeout (node measures from the request's start); the upper bound only catches a hang.
      assert.ok(afterMs >= ms && afterMs < 30_000, `${what}: closed after ${afterMs} ms`);
    }
    const logged = lines.filter((l) => l === `dropped a slow client: request ${what} incomplete after ${ms} ms (408)`);
    assert.equal(logged.length, group.length, lines.join("\n"));
  }
  assert.equal(lines.length, 300, lines.join("\n"));
});

test("300 clients dropping mid-upload leave at most 300 one-line log entries, no stack; the server still serves", async (t) => {
  const { srv, port, url, lines } = await serve({});
  const N = 300;
  const clients = Array.from({ length: N }, (_, i) => {
    const r = raw(port, `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{"model": "m", "messages": [`);
    // Half close politely, half reset: both are a client vanishing mid-upload.
    r.sock.once("connect", () => setImmediate(() => (i % 2 ? r.sock.destroy() : r.sock.resetAndDestroy())));
    return r;
  });
  await Promise.all(clients.map((c) => c.closed));
  await until("every connection closed on the server", async () => (await connections(srv)) === 0);
  t.diagnostic(`${N} mid-upload disconnects: ${lines.length} log lines, ${lines.filter((l) => /\bat .+:\d+:\d+/.test(l)).length} stack frames`);
  assert.ok(lines.length <= N, `${lines.length} lines for ${N} disconnects`);
  for (const l of lines) {
    assertShortLine(l);
    assert.equal(l, "client went away mid-upload: POST /v1/chat/completions");
  }
  assert.equal((await completion(url, {})).status, 200);
});

test("a client that drops mid-stream stops its generation and leaves one line", async () => {
  const { api, port, lines } = await serve({});
  const body = JSON.stringify({ model: "m", prompt: "Once upon a time", max_tokens: 100, stream: true, temperature: 0 });
  const r = raw(port, `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  // Gone after the first streamed token.
  await new Promise<void>((resolve) => r.sock.on("data", (c: Buffer) => c.includes("data: {") && resolve()));
  r.sock.destroy();
  await until("the generation stopped", () => api.counters.aborted === 1);
  assert.ok(api.counters.completionTokens < 100, `${api.counters.completionTokens} tokens`);
  assert.deepEqual(lines, ["client went away mid-response: POST /v1/completions"]);
});

test("over the connection cap a client is answered 503 and closed; the burst is logged once; a freed slot serves again", async () => {
  const { srv, port, url, lines } = await serve({ maxConnections: 4 });
  const idle = Array.from({ length: 4 }, () => raw(port, ""));
  await until("the server accepted four", async () => (await connections(srv)) === 4);
  const refused = Array.from({ length: 3 }, () => raw(port, "GET /health HTTP/1.1\r\nhost: x\r\n\r\n"));
  for (const r of refused) {
    const { data } = await r.closed;
    assert.match(data, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(data, /\r\nretry-after: 1\r\n/i);
    assert.equal(errorBody(data).error.code, "too_many_connections");
  }
  idle[0].sock.destroy();
  await until("a slot freed", async () => (await connections(srv)) === 3);
  assert.equal((await fetch(`${url}/health`)).status, 200);
  for (const r of idle.slice(1)) r.sock.destroy();
  assert.deepEqual(lines, ["4 connections open, the cap (--max-connections): refusing new ones with 503", "accepting connections again after refusing 3 over the cap of 4"]);
});

test("no error body carries a stack trace or a file path: parser errors, timeouts, the cap, bad requests and a real I/O failure", async () => {
  // A streamed model whose file is cut short after loading: expert reads fail with the path in the error.
  const broken = join(dir, "broken.gguf");
  copyFileSync(modelPath, broken);
  const { port, url, lines } = await serve({ headerTimeoutMs: 300, maxConnections: 64 }, broken, { expertIo: "stream", prefetch: false });
  truncateSync(broken, Math.floor(statSync(broken).size / 2));
  const bodies: string[] = [];
  const rawAnswer = async (first: string) => (await raw(port, first).closed).data;
  bodies.push(await rawAnswer("NOT-HTTP\r\n\r\n"));
  bodies.push(await rawAnswer(`GET /health HTTP/1.1\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`));
  bodies.push(await rawAnswer("GET /health HTTP/1.1\r\n")); // header timeout
  for (const [path, init] of [
    ["/v1/completions", { method: "POST", body: "{" }],
    ["/v1/completions", { method: "POST", body: "x".repeat(2 ** 21) }],
    ["/v1/nope", {}],
    ["/v1/completions", {}],
    ["/v1/models/%E0%A4%A", {}],
  ] as const) {
    bodies.push(await (await fetch(`${url}${path}`, init)).text());
  }
  const failed = await completion(url, { max_tokens: 8 });
  assert.equal(failed.status, 500);
  bodies.push(await failed.text());
  const statuses = bodies.map((b) => /^HTTP\/1\.1 (\d+)/.exec(b)?.[1] ?? JSON.parse(b).error.code);
  assert.deepEqual(statuses, ["400", "431", "408", "invalid_json", "request_too_large", "unknown_url", "method_not_allowed", "invalid_url", "internal_error"]);
  for (const b of bodies) {
    assert.ok(!/\bat .+:\d+:\d+/.test(b), `a stack frame in ${b.slice(0, 300)}`);
    assert.ok(!b.includes(dir) && !/\/[\w.-]+\/[\w.-]+\.(?:gguf|ts|js)\b/.test(b), `a file path in ${b.slice(0, 300)}`);
  }
  // The detail is in the log, for the operator.
  assert.ok(lines.some((l) => l.startsWith("internal error: ") && l.includes(broken)), lines.join("\n"));
});

test("serve's flags: --header-timeout drops a slow client of the real CLI with one stderr line; a header timeout above the request timeout is refused", async () => {
  const bad = spawnSync(process.execPath, [BIN, "serve", "-m", modelPath, "--header-timeout", "5000", "--request-timeout", "1000"], { encoding: "utf8" });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--header-timeout 5000 must be at most --request-timeout 1000/);
  const srv = await startServer(modelPath, "--header-timeout", "200", "--max-connections", "8");
  try {
    const { data, afterMs } = await raw(Number(new URL(srv.url).port), "GET /health HTTP/1.1\r\n").closed;
    assert.match(data, /^HTTP\/1\.1 408 /);
    assert.ok(afterMs >= 200, `${afterMs} ms`);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
  const dropped = srv.stderr().split("\n").filter((l) => l.startsWith("moestream: dropped a slow client"));
  assert.deepEqual(dropped, ["moestream: dropped a slow client: request headers incomplete after 200 ms (408)"]);
});
