// The HTTP edge of the OpenAI-compatible server: routing, body limits, SSE, the FIFO queue and
// OpenAI-shaped errors. Everything model-related goes through OpenAIApi.
import { timingSafeEqual } from "node:crypto";
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { ApiError } from "./errors.js";
import type { OpenAIApi, PreparedRequest, RequestKind } from "./openai.js";
import { RequestQueue } from "./queue.js";
import { anthropicError, MessagesApi } from "./anthropic.js";
import { ResponsesApi } from "./responses.js";

/** A server-sent event: `event: NAME` when named, and its JSON data. */
export interface SseEvent {
  event?: string;
  data: unknown;
}

/** One generation endpoint's wire format: how its body is prepared, and how answers and errors are written. */
export interface Endpoint<P extends { stream: boolean }> {
  prepare(body: unknown): Promise<P>;
  complete(p: P, signal: AbortSignal): Promise<unknown>;
  events(p: P, signal: AbortSignal): AsyncGenerator<SseEvent, unknown>;
  /** An error in this API's shape. */
  errorBody(e: ApiError): unknown;
  /** An error after the stream's headers went out, as one more event. */
  errorEvent(e: ApiError): SseEvent;
  /** Written after the last event (OpenAI's `data: [DONE]`). */
  done?: string;
}

/** OpenAI's chat and text completions: chunks as unnamed events, errors as one more, then [DONE]. */
function openaiEndpoint(api: OpenAIApi, kind: RequestKind): Endpoint<PreparedRequest> {
  return {
    prepare: (body) => api.prepare(kind, body),
    complete: (p, signal) => api.complete(p, signal),
    events: async function* (p, signal) {
      for await (const data of api.stream(p, signal)) yield { data };
    },
    errorBody: (e) => e.toJSON(),
    errorEvent: (e) => ({ data: e.toJSON() }),
    done: "data: [DONE]\n\n",
  };
}

const sse = (e: SseEvent) => `${e.event ? `event: ${e.event}\n` : ""}data: ${JSON.stringify(e.data)}\n\n`;

export interface ApiServerOptions {
  /** Requests allowed to wait behind the running one; more get 429. */
  maxQueue?: number;
  /** Largest request body in bytes; more gets 413. */
  bodyLimit?: number;
  /** Milliseconds a client has to send its request headers; a slower one is answered 408 and dropped. */
  headerTimeoutMs?: number;
  /** Milliseconds a client has to send its whole request, body included (at least headerTimeoutMs); then 408 and dropped. */
  requestTimeoutMs?: number;
  /** Connections open at once; one more is answered 503 and closed. */
  maxConnections?: number;
  /**
   * Where the server reports: unexpected (500) errors with their detail, and one short line per client
   * that went away or was dropped.
   */
  log?: (line: string) => void;
  /** Origins a browser app may call from ("*" = any); none = no CORS headers and no preflight answers. */
  cors?: string[];
  /** Clients must send `authorization: Bearer KEY` or `x-api-key: KEY` (all but /health and CORS preflights); 401 otherwise. */
  apiKey?: string;
}

export const DEFAULT_MAX_QUEUE = 16;
export const DEFAULT_BODY_LIMIT = 2 ** 20;
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_CONNECTIONS = 512;

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
    // The client went away mid-upload (or was dropped for being slow): nobody is left to answer.
    req.on("error", () => failed || ((failed = true), reject(clientGone())));
  });
}

const clientGone = () => new ApiError(499, "client closed the request");

/** An answer written straight to a socket that has no response object (or none started): then the socket closes. */
function rawAnswer(err: ApiError, extra = ""): string {
  const body = JSON.stringify(err.toJSON());
  return `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra}\r\n${body}`;
}

/** A client-sent string fit for one log line: printable ASCII, bounded. */
const loggable = (s: string | undefined) => (s ?? "").replace(/[^\x20-\x7e]/g, "?").slice(0, 100);

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

/** Headers browsers ask to send on a preflight when none are named: the ones OpenAI clients set. */
const CORS_HEADERS = "authorization, content-type, openai-organization, openai-project, x-stainless-*, x-api-key, anthropic-version, anthropic-beta";

/** CORS for allowed origins: headers on every answer, and 204 to a preflight (true = answered). */
function cors(origins: string[], req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin;
  if (!origins.length || !origin) return false;
  const any = origins.includes("*");
  if (!any && !origins.includes(origin)) return false; // no header: the browser refuses the answer
  res.setHeader("access-control-allow-origin", any ? "*" : origin);
  if (!any) res.setHeader("vary", "origin");
  if (req.method !== "OPTIONS" || !req.headers["access-control-request-method"]) return false;
  res.writeHead(204, {
    "access-control-allow-methods": "GET, POST, OPTIONS",
    "access-control-allow-headers": req.headers["access-control-request-headers"] ?? CORS_HEADERS,
    "access-control-max-age": "600",
  });
  res.end();
  return true;
}

/** A 401 unless the request carries `authorization: Bearer KEY` or (Anthropic's) `x-api-key: KEY`, compared in constant time. */
function checkKey(key: string, req: IncomingMessage): void {
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
  const header = req.headers["x-api-key"];
  const sent = m?.[1].trim() ?? (typeof header === "string" ? header.trim() : undefined);
  const given = Buffer.from(sent ?? "");
  const want = Buffer.from(key);
  if (given.length === want.length && timingSafeEqual(given, want)) return;
  const why = sent !== undefined ? "Incorrect API key provided" : "You didn't provide an API key: send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY'";
  throw new ApiError(401, why, null, "invalid_api_key");
}

export function createApiServer(api: OpenAIApi, opts: ApiServerOptions = {}): ApiServer {
  const queue = new RequestQueue(opts.maxQueue ?? DEFAULT_MAX_QUEUE);
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const headerTimeout = Math.min(opts.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS, requestTimeout);
  const maxConnections = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const log = opts.log ?? (() => {});
  const inflight = new Set<AbortController>();
  let closing = false;

  const messages = new MessagesApi(api);
  const endpoints = new Map<string, Endpoint<{ stream: boolean }>>([
    ["/v1/chat/completions", openaiEndpoint(api, "chat")],
    ["/v1/completions", openaiEndpoint(api, "text")],
    ["/v1/messages", messages.endpoint()],
    ["/v1/responses", new ResponsesApi(api).endpoint()],
  ]);

  async function completion<P extends { stream: boolean }>(ep: Endpoint<P>, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const p = await ep.prepare(parseJson(await readBody(req, bodyLimit)));
    const ac = new AbortController();
    res.on("close", () => res.writableFinished || ac.abort());
    inflight.add(ac);
    try {
      const release = await queue.acquire(ac.signal);
      try {
        if (!p.stream) {
          const out = await ep.complete(p, ac.signal);
          if (!res.destroyed) {
            if (ac.signal.aborted) sendJson(res, 503, ep.errorBody(shuttingDown()));
            else sendJson(res, 200, out);
          }
          return;
        }
        res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
        try {
          for await (const e of ep.events(p, ac.signal)) {
            if (ac.signal.aborted || res.destroyed) break;
            res.write(sse(e));
          }
        } catch (e) {
          // Headers are gone: the error travels as one more event.
          if (!ac.signal.aborted) res.write(sse(ep.errorEvent(toApiError(e))));
        }
        if (!res.destroyed) {
          if (ac.signal.aborted) res.write(sse(ep.errorEvent(shuttingDown())));
          res.end(ep.done ?? "");
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
    log(`internal error: ${err?.stack ?? String(e)}`);
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

  /** Each response's error shape, once its path is known (Anthropic's under /v1/messages). */
  const errorShape = new WeakMap<ServerResponse, (e: ApiError) => unknown>();

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (cors(opts.cors ?? [], req, res)) return;
    const path = pathOf(req);
    if (path.startsWith("/v1/messages")) errorShape.set(res, anthropicError);
    const method = req.method ?? "GET";
    if (closing) throw shuttingDown();
    if (opts.apiKey !== undefined && path !== "/health") checkKey(opts.apiKey, req);
    const ep = endpoints.get(path);
    if (ep || path === "/v1/messages/count_tokens") {
      if (method !== "POST") throw new ApiError(405, `${method} ${path}: use POST`, null, "method_not_allowed");
      if (ep) return completion(ep, req, res);
      return sendJson(res, 200, await messages.countTokens(parseJson(await readBody(req, bodyLimit))));
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

  /** Each socket's response in progress: a timeout before its headers went out can still be answered. */
  const responding = new WeakMap<Duplex, ServerResponse>();
  /** Sockets dropped for a timeout (already logged) or refused over the connection cap (never served). */
  const dropped = new WeakSet<Duplex>();
  const open = new Set<Socket>();
  let refusing = 0;

  // Node checks both timeouts on an interval (30 s by default): check often enough that a slow client
  // goes within a tenth of its timeout (at most 250 ms) after it expires.
  const checkMs = Math.max(10, Math.min(250, Math.floor(headerTimeout / 10)));
  const server = createServer({ headersTimeout: headerTimeout, requestTimeout, connectionsCheckingInterval: checkMs }, (req, res) => {
    if (dropped.has(req.socket)) return; // refused: the 503 is sent and the socket is closing
    responding.set(req.socket, res);
    res.once("close", () => {
      responding.delete(req.socket);
      if (res.writableFinished || closing || dropped.has(req.socket)) return;
      // One short line, whatever the client was doing when it went.
      const when = !req.complete ? "mid-upload" : res.headersSent ? "mid-response" : "before its answer";
      log(`client went away ${when}: ${loggable(req.method)} ${loggable(req.url)}`);
    });
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
      if (err.status === 401) extra["www-authenticate"] = "Bearer";
      sendJson(res, err.status, (errorShape.get(res) ?? ((e: ApiError) => e.toJSON()))(err), extra);
    });
  });
  // Over the cap a connection is answered 503 and closed before its request is read (the listener runs
  // before node's own, which would parse it).
  server.prependListener("connection", (socket: Socket) => {
    if (open.size < maxConnections) {
      if (refusing) log(`accepting connections again after refusing ${refusing} over the cap of ${maxConnections}`);
      refusing = 0;
      open.add(socket);
      socket.once("close", () => open.delete(socket));
      return;
    }
    if (refusing++ === 0) log(`${open.size} connections open, the cap (--max-connections): refusing new ones with 503`);
    dropped.add(socket);
    socket.on("error", () => {}); // a reset from the refused client is no concern of ours
    socket.end(rawAnswer(new ApiError(503, `too many connections: at most ${maxConnections} at once`, null, "too_many_connections"), "retry-after: 1\r\n"));
    // The client closes its side on reading the answer; one that never does is cut off.
    socket.setTimeout(headerTimeout, () => socket.destroy());
  });

  // Malformed requests and slow clients (node's header and request timeouts): answered where no response
  // has started, then the socket is destroyed. A timeout is logged in one line; nothing carries a stack.
  server.on("clientError", (e: Error & { code?: string }, socket: Duplex) => {
    let answer: ApiError | undefined;
    if (e.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      const body = responding.has(socket);
      const ms = body ? requestTimeout : headerTimeout;
      answer = new ApiError(408, `the request ${body ? "body" : "headers"} did not arrive within ${ms} ms`, null, "request_timeout");
      if (!dropped.has(socket)) log(`dropped a slow client: request ${body ? "body" : "headers"} incomplete after ${ms} ms (408)`);
      dropped.add(socket);
    } else if (e.code === "HPE_HEADER_OVERFLOW") answer = new ApiError(431, "request headers too large", null, "headers_too_large");
    else if (e.code !== "ECONNRESET") answer = new ApiError(400, "malformed HTTP request", null, "bad_request");
    if (answer && socket.writable && !responding.get(socket)?.headersSent) socket.write(rawAnswer(answer));
    socket.destroy();
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
