// Messages between a Model (the caller's thread) and its engine host (a worker thread that owns the
// backend, the expert cache and every session's state). Calls are answered in order; a generation is a
// pull stream: the host computes the next token only when the caller asks for it, as the in-process
// iterator does, so a caller that stops early leaves no extra tokens in the session.
import { AbortedError, FormatError, ModelError, MoestreamError, UsageError } from "../util/errors.js";
import type { EngineConfig } from "./config.js";
import type { ExpertIODecision } from "./expert-io.js";
import type { ModelInfo } from "../models/model.js";
import type { GenerateStep, GenerationStats } from "./session.js";

/** workerData of a host. */
export interface HostStart {
  path: string;
  config: EngineConfig;
  /** Float64 counters the host keeps current (EXPERT_COUNTERS order): readable while it computes. */
  stats: SharedArrayBuffer;
}

/** Expert cache counters shared with the caller's thread, in this order. */
export const EXPERT_COUNTERS = ["hits", "misses", "prefetched", "bytesRead", "ioWaitMs"] as const;
export type ExpertCounters = Record<(typeof EXPERT_COUNTERS)[number], number>;

export interface HostReady {
  path: string;
  arch: string;
  info: ModelInfo;
  config: EngineConfig;
  /** The context size and why (one line for the user). */
  contextReason: string;
  expertIO: ExpertIODecision;
  warnings: string[];
  backend: string;
  /** Expert cache slots (streaming) or every expert (resident); the GPU tier's slots with --backend webgpu. */
  expertSlots: number;
}

/** A session's context as the host holds it: every token, of which the first `evaluated` are in its state. */
export interface ContextState {
  context: number[];
  evaluated: number;
}

export type SessionCall =
  | { op: "create"; nCtx: number | undefined; abort: SharedArrayBuffer }
  | { op: "truncate"; length: number }
  | { op: "reset" }
  | { op: "eval"; tokens: number[]; logits: "last" | "all" }
  | { op: "save"; path: string; meta: unknown }
  | { op: "load"; path: string }
  | { op: "free" };

/** Options of a generation as they cross threads: the caller's callbacks and signal stay on its side. */
export interface WireGenerateOptions {
  maxTokens: number;
  sampling?: import("../sampler/index.js").SamplingOptions;
  stopAtEog?: boolean;
  topLogits?: number;
  logprobs?: number;
  /** Send prefill progress messages. */
  prefill?: boolean;
  template?: import("./chat-template.js").ChatTemplateOptions;
  constraint?: import("./constraint.js").OutputConstraint;
}

export type ToHost =
  | { t: "call"; id: number; sid: number; call: SessionCall }
  | { t: "generate"; id: number; sid: number; prompt: number[]; opts: WireGenerateOptions }
  | { t: "chat"; id: number; sid: number; messages: import("./chat-template.js").ChatMessage[]; opts: WireGenerateOptions }
  /** Pull the next step of generation `id`, or end it (the caller stopped iterating). */
  | { t: "next"; id: number }
  | { t: "return"; id: number }
  | { t: "close"; id: number };

export type FromHost =
  | { t: "progress"; done: number; total: number }
  | { t: "ready"; ready: HostReady }
  | { t: "failed"; error: WireError }
  | { t: "result"; id: number; value?: unknown; state?: ContextState }
  | { t: "error"; id: number; error: WireError; state?: ContextState }
  | { t: "step"; id: number; step: GenerateStep }
  | { t: "prefill"; id: number; done: number; total: number }
  /** stats: undefined when the caller ended the stream early (the in-process iterator keeps lastStats then too). */
  | { t: "done"; id: number; stats: GenerationStats | undefined; state: ContextState };

export interface WireError {
  /** The class's name (kept: exit codes read it) and the nearest class both threads know. */
  name: string;
  base: "AbortedError" | "FormatError" | "ModelError" | "UsageError" | "MoestreamError" | "RangeError" | "TypeError" | "Error";
  message: string;
  /** Own fields (code, file, offset, layer, expert, ...). */
  fields: Record<string, unknown>;
  stack?: string;
}

const BASES = [AbortedError, FormatError, ModelError, UsageError, MoestreamError, RangeError, TypeError] as const;

export function toWire(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: "Error", base: "Error", message: String(e), fields: {} };
  const base = BASES.find((c) => e instanceof c)?.name ?? "Error";
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (v === null || ["string", "number", "bigint", "boolean"].includes(typeof v)) fields[k] = v;
  return { name: e.name, base: base as WireError["base"], message: e.message, fields, stack: e.stack };
}

/** The same error class on the caller's side, so `instanceof UsageError` and exit codes hold across threads. */
export function fromWire(w: WireError): Error {
  const code = String(w.fields.code ?? "internal");
  let e: Error;
  switch (w.base) {
    case "AbortedError":
      e = new AbortedError();
      break;
    case "FormatError":
      e = new FormatError(code, String(w.fields.file ?? ""), undefined, "");
      break;
    case "ModelError":
      e = new ModelError(code, "");
      break;
    case "UsageError":
      e = new UsageError(code, "");
      break;
    case "MoestreamError":
      e = new MoestreamError(code, "");
      break;
    case "RangeError":
      e = new RangeError();
      break;
    case "TypeError":
      e = new TypeError();
      break;
    default:
      e = new Error();
  }
  Object.assign(e, w.fields);
  e.message = w.message;
  e.name = w.name;
  // The host's stack says where it went wrong; the caller's would only show the message loop.
  if (w.stack) e.stack = w.stack;
  return e;
}
