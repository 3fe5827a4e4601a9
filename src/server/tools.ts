// Tool calls in generated text, in the Hermes/Qwen form the Qwen3 template teaches:
// <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>. Content before the first tag streams as
// usual; from the tag on, text is held until the end and parsed into OpenAI tool_calls.
import { randomBytes } from "node:crypto";
import type { OutputConstraint } from "../engine/constraint.js";

const OPEN = "<tool_call>";
const CLOSE = "</tool_call>";

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/**
 * The reply as exactly one call of one of `functions`, written as the template teaches (a forced tool_choice):
 * the name fixed, the arguments valid against the function's parameters schema. `prefix` comes first.
 */
export function toolCallConstraint(functions: { name: string; parameters?: Record<string, unknown> }[], prefix = ""): OutputConstraint {
  return {
    type: "tagged_json",
    tags: functions.map((f) => ({ begin: `${prefix}${OPEN}\n{"name": ${JSON.stringify(f.name)}, "arguments": `, schema: f.parameters ?? { type: "object" }, end: `}\n${CLOSE}` })),
  };
}

/** Parse every <tool_call> block of `text`; null when a block is not a JSON {name, arguments} object. */
export function parseToolCalls(text: string): ToolCall[] | null {
  const calls: ToolCall[] = [];
  let at = text.indexOf(OPEN);
  while (at >= 0) {
    const end = text.indexOf(CLOSE, at + OPEN.length);
    const body = text.slice(at + OPEN.length, end < 0 ? undefined : end).trim();
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return null;
    }
    const o = parsed as { name?: unknown; arguments?: unknown };
    if (typeof o !== "object" || o === null || typeof o.name !== "string" || !o.name) return null;
    const args = o.arguments === undefined ? {} : o.arguments;
    calls.push({ id: "call_" + randomBytes(12).toString("hex"), type: "function", function: { name: o.name, arguments: typeof args === "string" ? args : JSON.stringify(args) } });
    if (end < 0) break;
    at = text.indexOf(OPEN, end + CLOSE.length);
  }
  return calls;
}

/** Splits streamed text into content (emitted as it settles) and a held tool-call tail parsed at the end. */
export class ToolCallSplitter {
  private buf = "";
  private held: string | undefined;

  /** Content safe to emit now: text that cannot be the start of a tool-call tag. */
  push(text: string): string {
    if (this.held !== undefined) {
      this.held += text;
      return "";
    }
    this.buf += text;
    const at = this.buf.indexOf(OPEN);
    if (at >= 0) {
      this.held = this.buf.slice(at);
      const out = this.buf.slice(0, at);
      this.buf = "";
      return out;
    }
    let keep = Math.min(OPEN.length - 1, this.buf.length);
    while (keep > 0 && !this.buf.endsWith(OPEN.slice(0, keep))) keep--;
    const out = this.buf.slice(0, this.buf.length - keep);
    this.buf = this.buf.slice(this.buf.length - keep);
    return out;
  }

  /** End of text: remaining content and the tool calls (held text returns as content when it does not parse). */
  finish(): { content: string; toolCalls: ToolCall[] } {
    const rest = this.buf;
    this.buf = "";
    if (this.held === undefined) return { content: rest, toolCalls: [] };
    const calls = parseToolCalls(this.held);
    if (calls === null || calls.length === 0) return { content: this.held, toolCalls: [] };
    return { content: "", toolCalls: calls };
  }
}
