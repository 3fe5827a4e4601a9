// Anthropic's Messages API (/v1/messages) over the OpenAI chat pipeline: a request is translated into a chat
// completions body (the same templating, tool-call parsing, sampling and constraints), and the generation's
// pieces are written back as Anthropic content blocks and stream events. No HTTP here.
import { randomBytes } from "node:crypto";
import { ApiError, parseBody, renamedError } from "./errors.js";
import type { Endpoint, SseEvent } from "./http.js";
import type { Delta, GenerationResult, OpenAIApi, PreparedRequest } from "./openai.js";
import type { ToolCall } from "./tools.js";
import { messagesRequestSchema, type AnthropicMessage, type MessagesRequest } from "./anthropic-schema.js";

/** Anthropic's error types by HTTP status. */
const ERROR_TYPES: Record<number, string> = {
  401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error",
};

/** {type: "error", error: {type, message}}: Anthropic's error body (and stream event). */
export function anthropicError(e: ApiError) {
  return { type: "error" as const, error: { type: ERROR_TYPES[e.status] ?? (e.status >= 500 ? "api_error" : "invalid_request_error"), message: e.message } };
}

type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use";

interface MessagesPrepared {
  chat: PreparedRequest;
  id: string;
  stream: boolean;
}

const blockText = (blocks: string | { text: string }[] | undefined) => (typeof blocks === "string" ? blocks : (blocks ?? []).map((b) => b.text).join(""));

/** One Anthropic message as chat messages: a user turn's tool results become tool messages (they come first). */
function chatMessages(m: AnthropicMessage): Record<string, unknown>[] {
  if (typeof m.content === "string") return [{ role: m.role, content: m.content }];
  if (m.role === "user") {
    const out: Record<string, unknown>[] = [];
    let text = "";
    for (const b of m.content) {
      if (b.type === "tool_result") out.push({ role: "tool", tool_call_id: b.tool_use_id, content: (b.is_error ? "Error: " : "") + blockText(b.content) });
      else if (b.type === "text") text += b.text;
      else throw new ApiError(400, `a user message cannot hold a ${b.type} block`, "messages", "invalid_value");
    }
    if (text || !out.length) out.push({ role: "user", content: text });
    return out;
  }
  let content = "";
  let reasoning = "";
  const calls: Record<string, unknown>[] = [];
  for (const b of m.content) {
    if (b.type === "text") content += b.text;
    else if (b.type === "thinking") reasoning += b.thinking;
    else if (b.type === "tool_use") calls.push({ id: b.id, type: "function", function: { name: b.name, arguments: JSON.stringify(b.input) } });
    else if (b.type === "tool_result") throw new ApiError(400, "an assistant message cannot hold a tool_result block", "messages", "invalid_value");
  }
  return [{ role: "assistant", content, ...(reasoning ? { reasoning_content: reasoning } : {}), ...(calls.length ? { tool_calls: calls } : {}) }];
}

/** The chat completions body that asks for what `req` asks for. */
function chatBody(req: MessagesRequest): Record<string, unknown> {
  const choice = req.tool_choice;
  const forced = choice?.type === "any" || choice?.type === "tool";
  if (forced && req.thinking?.type === "enabled") throw new ApiError(400, "Thinking may not be enabled when tool_choice forces tool use.", "thinking", "invalid_value");
  const system = blockText(req.system);
  return {
    model: req.model,
    messages: [...(system ? [{ role: "system", content: system }] : []), ...req.messages.flatMap(chatMessages)],
    max_tokens: req.max_tokens,
    temperature: req.temperature,
    top_p: req.top_p,
    top_k: req.top_k,
    stop: req.stop_sequences?.length ? req.stop_sequences : undefined,
    tools: req.tools?.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.input_schema } })),
    tool_choice: !choice ? undefined : choice.type === "any" ? "required" : choice.type === "tool" ? { type: "function", function: { name: choice.name } } : choice.type,
    chat_template_kwargs: req.thinking?.type === "enabled" || req.thinking?.type === "disabled" ? { enable_thinking: req.thinking.type === "enabled" } : undefined,
    response_format: req.output_config?.format ? { type: "json_schema", json_schema: { name: "output", schema: req.output_config.format.schema } } : undefined,
    grammar: req.grammar,
    json_schema: req.json_schema,
  };
}

/** Chat-side field names in errors, as the Messages API names them. */
const NAMES: [RegExp, string][] = [
  [/tools\[(\d+)\]\.function\.parameters/g, "tools[$1].input_schema"], [/tool_choice\.function\.name/g, "tool_choice.name"], [/'stop'/g, "'stop_sequences'"],
  [/response_format\.json_schema\.schema/g, "output_config.format.schema"], [/'response_format'/g, "'output_config.format'"],
];

/** An Anthropic tool_use block for a parsed call; undefined when its arguments are not a JSON object. */
function toolUse(c: ToolCall) {
  let input: unknown;
  try {
    input = JSON.parse(c.function.arguments);
  } catch {
    return undefined;
  }
  if (typeof input !== "object" || input === null || Array.isArray(input)) return undefined;
  return { type: "tool_use" as const, id: "toolu_" + c.id.replace(/^call_/, ""), name: c.function.name, input: input as Record<string, unknown> };
}

/** A call Anthropic's shape cannot carry stays text, as the model wrote it. */
const callText = (c: ToolCall) => `<tool_call>\n${JSON.stringify({ name: c.function.name, arguments: c.function.arguments })}\n</tool_call>`;

function stopReason(r: GenerationResult, calls: number): StopReason {
  if (r.finishReason === "length") return "max_tokens";
  if (calls > 0) return "tool_use";
  return r.stopSequence !== undefined ? "stop_sequence" : "end_turn";
}

export class MessagesApi {
  constructor(private readonly api: OpenAIApi) {}

  /** Validate, translate and tokenize; an ApiError names the Messages API's field. */
  async prepare(body: unknown, countOnly = false): Promise<MessagesPrepared> {
    const schema = countOnly ? messagesRequestSchema.extend({ max_tokens: messagesRequestSchema.shape.max_tokens.optional() }) : messagesRequestSchema;
    const parsed = parseBody(schema, body);
    const req = { ...parsed, max_tokens: parsed.max_tokens ?? 1 };
    try {
      const chat = await this.api.prepare("chat", chatBody(req));
      return { chat, id: "msg_" + randomBytes(12).toString("hex"), stream: req.stream ?? false };
    } catch (e) {
      throw renamedError(e, NAMES);
    }
  }

  /** /v1/messages/count_tokens: the prompt's length in tokens. */
  async countTokens(body: unknown) {
    const p = await this.prepare(body, true);
    return { input_tokens: p.chat.promptTokens.length };
  }

  /** The whole message of a non-streaming request. */
  async complete(p: MessagesPrepared, signal?: AbortSignal) {
    const res = await this.api.run(p.chat, signal);
    const calls = res.toolCalls.map((c) => toolUse(c) ?? { type: "text" as const, text: callText(c) });
    const nCalls = calls.filter((c) => c.type === "tool_use").length;
    const text = res.text.trim() || !calls.length ? [{ type: "text" as const, text: res.text }] : [];
    const thinking = res.reasoning ? [{ type: "thinking" as const, thinking: res.reasoning, signature: "" }] : [];
    return {
      id: p.id, type: "message" as const, role: "assistant" as const, model: p.chat.model,
      content: [...thinking, ...text, ...calls],
      stop_reason: stopReason(res, nCalls), stop_sequence: res.stopSequence ?? null,
      usage: { input_tokens: res.usage.prompt_tokens, output_tokens: res.usage.completion_tokens },
    };
  }

  /**
   * Anthropic's stream: message_start, ping, then each content block as content_block_start, its deltas
   * (thinking_delta, text_delta, input_json_delta) and content_block_stop, then message_delta (stop_reason,
   * usage) and message_stop. Tool calls are parsed when the reply ends, so each call's input is one delta.
   */
  async *events(p: MessagesPrepared, signal?: AbortSignal): AsyncGenerator<SseEvent> {
    const ev = (data: { type: string } & Record<string, unknown>): SseEvent => ({ event: data.type, data });
    const message = { id: p.id, type: "message", role: "assistant", model: p.chat.model, content: [], stop_reason: null, stop_sequence: null };
    yield ev({ type: "message_start", message: { ...message, usage: { input_tokens: p.chat.promptTokens.length, output_tokens: 0 } } });
    yield ev({ type: "ping" });
    let index = -1;
    let open: "thinking" | "text" | undefined;
    const start = (block: Record<string, unknown> & { type: string }): SseEvent[] => {
      const out = open ? [ev({ type: "content_block_stop", index })] : [];
      open = undefined;
      out.push(ev({ type: "content_block_start", index: ++index, content_block: block }));
      return out;
    };
    const piece = (d: Delta): SseEvent[] => {
      const out: SseEvent[] = [];
      if (d.reasoning) {
        if (open !== "thinking") (out.push(...start({ type: "thinking", thinking: "", signature: "" })), (open = "thinking"));
        out.push(ev({ type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: d.reasoning } }));
      }
      if (d.text) {
        if (open !== "text") (out.push(...start({ type: "text", text: "" })), (open = "text"));
        out.push(ev({ type: "content_block_delta", index, delta: { type: "text_delta", text: d.text } }));
      }
      return out;
    };
    const it = this.api.generate(p.chat, signal);
    let r: IteratorResult<Delta, GenerationResult>;
    try {
      for (r = await it.next(); !r.done; r = await it.next()) yield* piece(r.value);
    } finally {
      await it.return(undefined as never); // a consumer that stops early ends the generation too
    }
    const res = r.value;
    if (res.finishReason === "abort") return;
    let nCalls = 0;
    for (const c of res.toolCalls) {
      const use = toolUse(c);
      if (!use) {
        yield* piece({ text: callText(c), reasoning: "", logprobs: [] });
        continue;
      }
      nCalls++;
      yield* start({ ...use, input: {} });
      yield ev({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: JSON.stringify(use.input) } });
      yield ev({ type: "content_block_stop", index });
    }
    if (open) yield ev({ type: "content_block_stop", index });
    yield ev({ type: "message_delta", delta: { stop_reason: stopReason(res, nCalls), stop_sequence: res.stopSequence ?? null }, usage: { output_tokens: res.usage.completion_tokens } });
    yield ev({ type: "message_stop" });
  }

  /** The Messages endpoint as the HTTP layer drives it. */
  endpoint(): Endpoint<MessagesPrepared> {
    return {
      prepare: (body) => this.prepare(body),
      complete: (p, signal) => this.complete(p, signal),
      events: (p, signal) => this.events(p, signal),
      errorBody: anthropicError,
      errorEvent: (e) => ({ event: "error", data: anthropicError(e) }),
    };
  }
}
