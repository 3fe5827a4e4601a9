// Routing traces: what every forward call routed, per layer, so eviction policies are chosen by replaying
// real runs rather than by guess. JSON lines: line 1 a header, then one line per forward call, then an
// optional end line. Text because a trace is small next to the model (a decode token of a 48-layer top-8
// model is ~1.5 KB), appends line by line as the run goes (a killed run leaves a readable prefix), diffs
// and greps, and a bad line is named by number.
//
// A call stores each layer's routing ids as the router chose them ([nTokens * k], token-major, score
// order), not the cache accesses: the accesses follow from it for any cache size (acquireGroups), and
// the same trace also gives routing statistics and score order to prefetch studies.
//
// Version 2 (written) allows layers without routed experts (DeepSeek/GLM leading dense layers): the
// header's model.recordBytes[l] is 0 for such a layer (no record, so no bytes: the header already had
// the field, and a 0 cannot be mistaken for a real record size), and every call's routes[l] is null
// there (non-null everywhere else). Version 1 (still read): every layer has experts, no nulls.
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { FormatError, UsageError } from "../util/errors.js";
import { acquireGroups } from "./source.js";
import { isRoutingJsonlHeader, routingJsonlTrace, type JsonLine } from "./trace-jsonl.js";

export const TRACE_FORMAT = "moestream-trace";
export const TRACE_VERSION = 2;
/** Versions readTrace accepts. */
export const TRACE_READ_VERSIONS: readonly number[] = [1, 2];

export type Phase = "prefill" | "decode";
export const PHASES: readonly Phase[] = ["prefill", "decode"];

export interface TraceModel {
  architecture: string;
  /** general.name or the file name: which model the trace came from. */
  name: string;
  nLayer: number;
  /** Experts per layer; cache keys are layer * nExpert + expert, as StreamingExperts makes them. */
  nExpert: number;
  /** Experts per token (top-k). */
  k: number;
  /** Bytes of one expert record per layer (a cache slot holds the largest); 0 for a layer without routed experts. */
  recordBytes: number[];
}

export interface TraceHeader {
  model: TraceModel;
  /** How the model's routers were made, when known (synthetic models: gen's routing profile). */
  routing: Record<string, unknown> | null;
  /** Free text: prompt, tool and options. */
  note?: string;
}

export interface TraceCall {
  phase: Phase;
  nTokens: number;
  /**
   * Per layer: [nTokens * k] expert ids, token-major, each token's in router score order; null for a layer
   * without experts. Imported traces (trace-jsonl.ts) may hold an empty array: no routing captured, no access.
   */
  routes: (Int32Array | null)[];
  /** The 1-based line of the file it was read from (errors name it); absent for calls made in memory. */
  line?: number;
}

/** Cache traffic the traced run itself saw, so replay can check itself against the engine. */
export interface ObservedCache {
  policy: string;
  slots: number;
  prefill: { hits: number; misses: number };
  decode: { hits: number; misses: number };
}

export interface TraceEnd {
  /** Generated token ids. */
  tokens?: number[];
  observed?: ObservedCache;
}

export interface Trace {
  header: TraceHeader;
  calls: TraceCall[];
  end?: TraceEnd;
}

/** A trace file is malformed: names the file, the line and its byte offset. */
export class TraceFormatError extends FormatError {
  constructor(file: string, readonly line: number, offset: number | undefined, detail: string) {
    super("bad_trace", file, offset, `line ${line}: ${detail}`);
  }
}

// Where it always lived for trace readers; it belongs to the ExpertSource contract.
export { acquireGroups };

/** Layers with routed experts (recordBytes > 0), ascending. */
export function expertLayers(m: TraceModel): number[] {
  return m.recordBytes.flatMap((b, l) => (b > 0 ? [l] : []));
}

function checkModel(m: TraceModel, version: number): string | undefined {
  const posInt = (x: unknown) => Number.isInteger(x) && (x as number) > 0;
  if (typeof m?.architecture !== "string" || typeof m.name !== "string") return "model.architecture and model.name must be strings";
  if (!posInt(m.nLayer) || !posInt(m.nExpert) || !posInt(m.k)) return "model.nLayer, nExpert and k must be positive integers";
  if (m.k > m.nExpert) return `model.k ${m.k} exceeds nExpert ${m.nExpert}`;
  if (version === 1) {
    if (!Array.isArray(m.recordBytes) || m.recordBytes.length !== m.nLayer || !m.recordBytes.every(posInt)) {
      return `model.recordBytes must hold ${m.nLayer} positive integers (version 1: every layer has experts)`;
    }
    return undefined;
  }
  const size = (x: unknown) => x === 0 || posInt(x);
  if (!Array.isArray(m.recordBytes) || m.recordBytes.length !== m.nLayer || !m.recordBytes.every(size) || !m.recordBytes.some(posInt)) {
    return `model.recordBytes must hold ${m.nLayer} integers, each a record size or 0 for a layer without experts, at least one not 0`;
  }
  return undefined;
}

/** Why a call does not fit the model, or undefined. */
function checkCall(m: TraceModel, c: { phase?: unknown; nTokens?: unknown; routes?: unknown }): string | undefined {
  if (c.phase !== "prefill" && c.phase !== "decode") return `phase must be "prefill" or "decode", got ${JSON.stringify(c.phase)}`;
  if (!Number.isInteger(c.nTokens) || (c.nTokens as number) < 1) return `nTokens must be a positive integer, got ${JSON.stringify(c.nTokens)}`;
  if (!Array.isArray(c.routes) || c.routes.length !== m.nLayer) return `routes must hold ${m.nLayer} layers`;
  const want = (c.nTokens as number) * m.k;
  for (let l = 0; l < m.nLayer; l++) {
    if (m.recordBytes[l] === 0) {
      if (c.routes[l] !== null) return `layer ${l} has no experts (recordBytes 0): its routes must be null`;
      continue;
    }
    const r = c.routes[l] as ArrayLike<unknown> | null;
    if (!r || r.length !== want) return `layer ${l}: expected ${want} expert ids (nTokens ${c.nTokens} x k ${m.k}), got ${r?.length ?? "none"}`;
    for (let i = 0; i < want; i++) {
      const e = r[i];
      if (!Number.isInteger(e) || (e as number) < 0 || (e as number) >= m.nExpert) return `layer ${l}: expert id ${JSON.stringify(e)} not in [0, ${m.nExpert})`;
    }
  }
  return undefined;
}

/** Writes a trace line by line; route() and endCall() plug straight into a model's onRoute hook. */
export class TraceWriter {
  private fd: number | undefined;
  private pending: (Int32Array | undefined)[];
  private pendingTokens = 0;
  calls = 0;

  private constructor(readonly path: string, readonly header: TraceHeader) {
    this.pending = new Array(header.model.nLayer).fill(undefined);
  }

  static create(path: string, header: TraceHeader): TraceWriter {
    const bad = checkModel(header.model, TRACE_VERSION);
    if (bad) throw new UsageError("bad_trace", `trace header: ${bad}`);
    const w = new TraceWriter(path, header);
    w.fd = openSync(path, "w");
    w.line({ format: TRACE_FORMAT, version: TRACE_VERSION, ...header });
    return w;
  }

  /** One layer's routing of the current forward call (copied: the model may reuse its buffers). */
  route(layer: number, ids: Int32Array, nTokens: number): void {
    const m = this.header.model;
    if (!Number.isInteger(layer) || layer < 0 || layer >= m.nLayer) throw new UsageError("bad_trace", `layer ${layer} out of range [0, ${m.nLayer})`);
    if (m.recordBytes[layer] === 0) throw new UsageError("bad_trace", `layer ${layer} has no experts (recordBytes 0 in the trace header) but routed`);
    if (this.pending[layer]) throw new UsageError("bad_trace", `layer ${layer} routed twice in one call; call endCall() between forward calls`);
    this.pending[layer] = Int32Array.from(ids);
    this.pendingTokens = nTokens;
  }

  /** Close the current forward call: every layer with experts must have routed (the others stay null). */
  endCall(phase: Phase): void {
    const rec = this.header.model.recordBytes;
    const routes = this.pending.map((r, l) => (rec[l] === 0 ? null : r));
    const missing = routes.flatMap((r, l) => (r === undefined ? [l] : []));
    if (missing.length > 0) throw new UsageError("bad_trace", `call ${this.calls}: layers ${missing.join(", ")} did not route`);
    this.write({ phase, nTokens: this.pendingTokens, routes: routes as (Int32Array | null)[] });
    this.pending = new Array(this.header.model.nLayer).fill(undefined);
  }

  write(call: TraceCall): void {
    const bad = checkCall(this.header.model, call);
    if (bad) throw new UsageError("bad_trace", `call ${this.calls}: ${bad}`);
    this.line({ phase: call.phase, nTokens: call.nTokens, routes: call.routes.map((r) => (r ? Array.from(r) : null)) });
    this.calls++;
  }

  close(end?: TraceEnd): void {
    if (this.fd === undefined) return;
    if (end) this.line({ end });
    closeSync(this.fd);
    this.fd = undefined;
  }

  private line(obj: unknown): void {
    if (this.fd === undefined) throw new UsageError("bad_trace", `trace ${this.path} is closed`);
    writeSync(this.fd, JSON.stringify(obj) + "\n");
  }
}

/**
 * Read and check a whole trace, moestream's own or a routing JSON-lines capture (trace-jsonl.ts, told
 * apart by its header line); every problem names the file, line and byte offset.
 */
export function readTrace(path: string): Trace {
  if (!existsSync(path)) throw new UsageError("trace_not_found", `trace file not found: ${path}`);
  const buf = readFileSync(path);
  let header: TraceHeader | undefined;
  const calls: TraceCall[] = [];
  let end: TraceEnd | undefined;
  let jsonl: JsonLine[] | undefined; // the lines of a routing JSON-lines capture, converted at the end
  let lineNo = 0;
  for (let at = 0; at < buf.length; ) {
    const nl = buf.indexOf(0x0a, at);
    const stop = nl < 0 ? buf.length : nl;
    lineNo++;
    const offset = at;
    const fail = (detail: string): never => {
      throw new TraceFormatError(path, lineNo, offset, detail);
    };
    const text = buf.toString("utf8", at, stop);
    at = stop + 1;
    if (text.trim() === "") continue;
    if (nl < 0) fail("last line is not terminated by a newline (truncated write?)");
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      return fail(`not JSON: ${(e as Error).message}`);
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) fail("expected a JSON object");
    if (jsonl || (!header && isRoutingJsonlHeader(obj))) {
      (jsonl ??= []).push({ line: lineNo, offset, obj });
      continue;
    }
    if (!header) {
      if (obj.format !== TRACE_FORMAT) {
        fail(`not a moestream trace: format is ${JSON.stringify(obj.format)}, expected "${TRACE_FORMAT}" (or a routing JSON-lines header with nLayer, nExpert and topK)`);
      }
      if (!TRACE_READ_VERSIONS.includes(obj.version as number)) {
        fail(`trace version ${JSON.stringify(obj.version)} is not supported (this build reads ${TRACE_READ_VERSIONS.join(" and ")})`);
      }
      const bad = checkModel(obj.model as TraceModel, obj.version as number);
      if (bad) fail(bad);
      const routing = obj.routing ?? null;
      if (routing !== null && (typeof routing !== "object" || Array.isArray(routing))) fail("routing must be an object or null");
      header = { model: obj.model as TraceModel, routing: routing as TraceHeader["routing"], note: typeof obj.note === "string" ? obj.note : undefined };
      continue;
    }
    if (end) fail("nothing may follow the end line");
    if ("end" in obj) {
      end = obj.end as TraceEnd;
      if (typeof end !== "object" || end === null) fail("end must be an object");
      const o = end.observed;
      const counts = (p: unknown) => typeof p === "object" && p !== null && [(p as { hits: unknown }).hits, (p as { misses: unknown }).misses].every((x) => Number.isInteger(x) && (x as number) >= 0);
      if (o !== undefined && !(typeof o.policy === "string" && Number.isInteger(o.slots) && counts(o.prefill) && counts(o.decode))) {
        fail("end.observed must hold policy, slots and prefill/decode hits and misses");
      }
      continue;
    }
    const bad = checkCall(header.model, obj);
    if (bad) fail(bad);
    calls.push({ phase: obj.phase as Phase, nTokens: obj.nTokens as number, routes: (obj.routes as (number[] | null)[]).map((r) => (r ? Int32Array.from(r) : null)), line: lineNo });
  }
  if (jsonl) return routingJsonlTrace(path, jsonl, (at, detail) => {
    throw new TraceFormatError(path, at.line, at.offset, detail);
  });
  if (!header) throw new TraceFormatError(path, 1, 0, "empty file: no header line");
  return { header, calls, end };
}
