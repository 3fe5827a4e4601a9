// The HTTP edge of the OpenAI-compatible server: routing, body limits, SSE, the FIFO queue and
// OpenAI-shaped errors. Everything model-related goes through OpenAIApi.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ApiError } from "./errors.js";
import type { OpenAIApi, RequestKind } from "./openai.js";
import { RequestQueue } from "./queue.js";

export interface ApiServerOptions {
  /** Requests allowed to wait behind the running one; more get 429. */
  maxQueue?: number;
  /** Largest request body in bytes; more gets 413. */
  bodyLimit?: number;
  /** Where unexpected (500) errors are reported. */
  log?: (line: string) => void;
}

export const DEFAULT_MAX_QUEUE = 16;
export const DEFAULT_BODY_LIMIT = 2 ** 20;

export interface ApiServer {
  readonly server: Server;
  readonly queue: RequestQueue;
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stop accepting, cancel waiting and running generations, and close the listener. */
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...extra });
  res.end(text);
}

/** Bytes of an oversize upload read and dropped after its 413, before the connection is cut. */
const MAX_DRAIN = 64 * 2 ** 20;

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new ApiError(413, `request body too large: the limit is ${limit} bytes`, null, "request_too_large");
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = false;
    req.on("data", (c: Buffer) => {
      if (failed) return;
      total += c.length;
      if (total > limit) {
        failed = true;
        reject(tooLarge());
      } else chunks.push(c);
    });
    req.on("end", () => failed || resolve(Buffer.concat(chunks)));
    req.on("error", (e) => failed || reject(e));
  });
}

const shuttingDown = () => new ApiError(503, "the server is shutting down", null, "shutting_down");

function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString("utf8"));
  } catch (e) {
    throw new ApiError(400, `could not parse the JSON body: ${(e as Error).message}`, null, "invalid_json");
  }
}

function prometheus(api: OpenAIApi, queue: RequestQueue): string {
  const c = api.counters;
  const x = api.lm.expertStats;
  const lookups = x.hits + x.misses;
  const rows: [string, "counter" | "gauge", string, number][] = [
    ["moestream_requests_total", "counter", "generation requests started", c.requests],
    ["moestream_requests_aborted_total", "counter", "generations stopped by a client disconnect", c.aborted],
    ["moestream_prompt_tokens_total", "counter", "prompt tokens evaluated", c.promptTokens],
    ["moestream_completion_tokens_total", "counter", "tokens generated", c.completionTokens],
    ["moestream_tokens_per_second", "gauge", "generated tokens per second of generation time, since start", c.decodeMs > 0 ? (c.completionTokens * 1000) / c.decodeMs : 0],
    ["moestream_queue_depth", "gauge", "requests waiting for their turn", queue.depth],
    ["moestream_requests_running", "gauge", "requests generating now", queue.running],
    ["moestream_expert_cache_hits_total", "counter", "expert lookups served from the cache", x.hits],
    ["moestream_expert_cache_misses_total", "counter", "expert lookups that needed a read", x.misses],
    ["moestream_expert_cache_hit_rate", "gauge", "hits / lookups since start", lookups ? x.hits / lookups : 0],
    ["moestream_expert_bytes_read_total", "counter", "expert bytes read from disk on demand", x.bytesRead],
  ];
  return rows.map(([name, type, help, v]) => `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${v}\n`).join("");
}

export function createApiServer(api: OpenAIApi, opts: ApiServerOptions = {}): ApiServer {
  const queue = new RequestQueue(opts.maxQueue ?? DEFAULT_MAX_QUEUE);
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const inflight = new Set<AbortController>();
  let closing = false;

  async function completion(kind: RequestKind, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const p = api.prepare(kind, parseJson(await readBody(req, bodyLimit)));
    const ac = new AbortController();
    res.on("close", () => res.writableFinished || ac.abort());
    inflight.add(ac);
    try {
      const release = await queue.acquire(ac.signal);
      try {
        if (!p.stream) {
          const out = await api.complete(p, ac.signal);
          if (!res.destroyed) {
            if (ac.signal.aborted) sendJson(res, 503, shuttingDown().toJSON());
            else sendJson(res, 200, out);
          }
          return;
        }
        res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
        try {
          for await (const chunk of api.stream(p, ac.signal)) {
            if (ac.signal.aborted || res.destroyed) break;
            res.write(`data: ${JSON.stringify(chunk)}\n\n`);
          }
        } catch (e) {
          // Headers are gone: the error travels as one more event, as OpenAI's streams do.
          if (!ac.signal.aborted) res.write(`data: ${JSON.stringify(toApiError(e).toJSON())}\n\n`);
        }
        if (!res.destroyed) {
          if (ac.signal.aborted) res.write(`data: ${JSON.stringify(shuttingDown().toJSON())}\n\n`);
          res.end("data: [DONE]\n\n");
        }
      } finally {
        release();
      }
    } finally {
      inflight.delete(ac);
    }
  }

  function toApiError(e: unknown): ApiError {
    if (e instanceof ApiError) return e;
    const err = e as Error & { code?: unknown };
    opts.log?.(`internal error: ${err?.stack ?? String(e)}`);
    // The detail (file paths, stacks) stays in the server's log; the client learns the kind only.
    const kind = typeof err?.code === "string" && /^[a-z_]+$/.test(err.code) ? ` (${err.code})` : "";
    return new ApiError(500, `internal error${kind}; the server log has the details`, null, "internal_error");
  }

  /** The request's path, decoded; a malformed URL is the client's error (400), not the server's. */
  function pathOf(req: IncomingMessage): string {
    try {
      const raw = new URL(req.url ?? "/", "http://localhost").pathname.replace(/\/+$/, "") || "/";
      return raw.startsWith("/v1/models/") ? `/v1/models/${decodeURIComponent(raw.slice("/v1/models/".length))}` : raw;
    } catch {
      throw new ApiError(400, "malformed request URL", null, "invalid_url");
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req);
    const method = req.method ?? "GET";
    if (closing) throw shuttingDown();
    if (path === "/v1/chat/completions" || path === "/v1/completions") {
      if (method !== "POST") throw new ApiError(405, `${method} ${path}: use POST`, null, "method_not_allowed");
      return completion(path === "/v1/completions" ? "text" : "chat", req, res);
    }
    const known = path === "/health" || path === "/metrics" || path === "/v1/models" || path.startsWith("/v1/models/");
    if (!known) throw new ApiError(404, `no such endpoint: ${method} ${path}`, null, "unknown_url");
    if (method !== "GET" && method !== "HEAD") throw new ApiError(405, `${method} ${path}: use GET`, null, "method_not_allowed");
    if (path === "/health") return sendJson(res, 200, { status: "ok", model: api.modelId, running: queue.running, queue_depth: queue.depth });
    if (path === "/v1/models") return sendJson(res, 200, api.listModels());
    if (path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(prometheus(api, queue));
      return;
    }
    return sendJson(res, 200, api.model(path.slice("/v1/models/".length)));
  }

  const server = createServer((req, res) => {
    route(req, res).catch((e) => {
      const err = toApiError(e);
      if (err.status === 499 || res.destroyed) return; // the client is gone
      if (res.headersSent) {
        res.end();
        return;
      }
      const extra: Record<string, string> = {};
      if (err.status === 413) {
        // Discard the rest of the upload so the client, still writing, gets to read the answer instead of a
        // reset (closing now makes its writes fail with EPIPE); a client that never stops is cut off.
        let drained = 0;
        req.on("data", (c: Buffer) => {
          if ((drained += c.length) > MAX_DRAIN) req.socket.destroy();
        });
        req.resume();
      }
      if (err.status === 429) extra["retry-after"] = "1";
      sendJson(res, err.status, err.toJSON(), extra);
    });
  });
  server.on("clientError", (_e, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });

  return {
    server,
    queue,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: async () => {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const ac of inflight) ac.abort();
      // Aborted generations stop at their next token and answer 503; then drop every connection.
      for (let i = 0; i < 200 && inflight.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
      server.closeAllConnections();
      await closed;
    },
  };
}
