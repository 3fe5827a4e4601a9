// Routing traces in the plain JSON-lines shape other engines' captures are converted to: a header line
// `{"nLayer", "nExpert", "topK", ...}` (optional "model", "arch", "nTokens"), then one line per token
// `{"t": i, "layers": [[ids], ...]}` (optional "phase": 0 prefill / 1 decode, or "seq"). A layer's list
// is empty where the capture has no routing for that token (a layer not run, a record lost).
//
// Read as a decode-only trace: every token is one one-token call, as a decode step acquires, because
// these captures hold tokens, not the engine's forward calls (a batched prefill would acquire its
// distinct experts together). Record sizes are not in the file: every layer gets NOMINAL_RECORD_BYTES,
// so byte figures count records, not the model's bytes. No runtime import of trace.ts (it calls us).
import { basename } from "node:path";
import type { Trace, TraceCall } from "./trace.js";

/** Bytes per expert record given to imported traces, which carry no sizes: 1 MiB, so bytes read / 2^20 = records. */
export const NOMINAL_RECORD_BYTES = 1 << 20;

/** A line of the file: its 1-based number, its byte offset and its parsed object. */
export interface JsonLine {
  line: number;
  offset: number;
  obj: Record<string, unknown>;
}

/** Reports a problem at a line (throws). */
export type Fail = (at: { line: number; offset: number }, detail: string) => never;

/** True when a trace's first line is a routing JSON-lines header rather than a moestream header. */
export function isRoutingJsonlHeader(obj: Record<string, unknown>): boolean {
  return obj.format === undefined && "nLayer" in obj && "nExpert" in obj && "topK" in obj;
}

const posInt = (x: unknown): x is number => Number.isInteger(x) && (x as number) > 0;

/** The header line and the token lines (blank lines already dropped) as a Trace; `fail` names the line. */
export function routingJsonlTrace(path: string, lines: JsonLine[], fail: Fail): Trace {
  const [head, ...tokens] = lines;
  const h = head.obj;
  if (!posInt(h.nLayer) || !posInt(h.nExpert) || !posInt(h.topK)) fail(head, "header: nLayer, nExpert and topK must be positive integers");
  const nLayer = h.nLayer as number, nExpert = h.nExpert as number, k = h.topK as number;
  if (k > nExpert) fail(head, `header: topK ${k} exceeds nExpert ${nExpert}`);
  for (const f of ["model", "arch"]) if (h[f] !== undefined && typeof h[f] !== "string") fail(head, `header: ${f} must be a string`);
  if (h.nTokens !== undefined && !(Number.isInteger(h.nTokens) && (h.nTokens as number) >= 0)) fail(head, "header: nTokens must be a non-negative integer");

  const calls: TraceCall[] = [];
  let empty = 0, prefill = 0;
  for (const at of tokens) {
    const o = at.obj;
    const i = calls.length;
    if (o.t !== undefined && o.t !== i) fail(at, `t is ${JSON.stringify(o.t)}, expected ${i} (tokens in order, none missing)`);
    if (o.phase !== undefined && ![0, 1, "prefill", "decode"].includes(o.phase as number | string)) fail(at, `phase must be 0 (prefill) or 1 (decode), got ${JSON.stringify(o.phase)}`);
    if (o.phase === 0 || o.phase === "prefill") prefill++;
    const layers = o.layers;
    if (!Array.isArray(layers) || layers.length !== nLayer) fail(at, `layers must be an array of ${nLayer} lists of expert ids (header nLayer)`);
    const routes = (layers as unknown[]).map((ids, l) => {
      if (!Array.isArray(ids) || (ids.length !== 0 && ids.length !== k)) {
        return fail(at, `layer ${l}: expected ${k} expert ids (header topK) or [] for no routing, got ${Array.isArray(ids) ? ids.length : JSON.stringify(ids)}`);
      }
      if (ids.length === 0) empty++;
      for (const e of ids) if (!Number.isInteger(e) || e < 0 || e >= nExpert) fail(at, `layer ${l}: expert id ${JSON.stringify(e)} not in [0, ${nExpert})`);
      if (new Set(ids).size !== ids.length) fail(at, `layer ${l}: repeated expert id in ${JSON.stringify(ids)}`);
      return Int32Array.from(ids as number[]);
    });
    calls.push({ phase: "decode", nTokens: 1, routes, line: at.line });
  }
  if (h.nTokens !== undefined && h.nTokens !== calls.length) {
    fail(lines[lines.length - 1], `header says nTokens ${h.nTokens}, the file holds ${calls.length} token lines (truncated?)`);
  }
  const note = [
    `imported routing JSON lines (${basename(path)}): decode-only, each of ${calls.length} tokens one one-token call`,
    prefill ? `${prefill} of them prefill tokens in the capture` : "",
    `record sizes unknown: nominal ${NOMINAL_RECORD_BYTES >> 20} MiB per expert`,
    empty ? `${empty} layer-token entries empty (no routing captured: no access)` : "",
  ].filter((s) => s !== "").join("; ");
  return {
    header: {
      model: { architecture: (h.arch as string | undefined) ?? "unknown", name: (h.model as string | undefined) ?? basename(path), nLayer, nExpert, k, recordBytes: new Array(nLayer).fill(NOMINAL_RECORD_BYTES) },
      routing: null,
      note,
    },
    calls,
  };
}
