// OpenAI's Responses API (/v1/responses) over the chat pipeline, stateless: `input` items and `instructions`
// become chat messages, the generation's pieces come back as output items (reasoning, message,
// function_call) and, streamed, as the typed events the openai client's ResponseStream assembles.
import { randomBytes } from "node:crypto";
import { parseBody, renamedError } from "./errors.js";
import type { Endpoint, SseEvent } from "./http.js";
import type { Delta, GenerationResult, OpenAIApi, PreparedRequest } from "./openai.js";
import { responsesRequestSchema, type ResponsesRequest } from "./responses-schema.js";

interface ResponsesPrepared {
  chat: PreparedRequest;
  req: ResponsesRequest;
  id: string;
  createdAt: number;
  stream: boolean;
}

const hex = () => randomBytes(12).toString("hex");
const partsText = (c: string | { text: string }[]) => (typeof c === "string" ? c : c.map((p) => p.text).join(""));

interface ChatMsg {
  role: string;
  content: string;
  tool_calls?: unknown[];
  tool_call_id?: string;
  reasoning_content?: string;
}

/** Input items as chat messages: a function call joins the assistant turn just before it, as a tool call. */
function chatMessages(req: ResponsesRequest): ChatMsg[] {
  const out: ChatMsg[] = req.instructions ? [{ role: "system", content: req.instructions }] : [];
  if (typeof req.input === "string") return [...out, { role: "user", content: req.input }];
  let reasoning = ""; // a reasoning item belongs to the assistant turn that follows it
  const assistant = (m: ChatMsg) => {
    if (reasoning) m.reasoning_content = reasoning;
    reasoning = "";
    out.push(m);
  };
  for (const it of req.input) {
    if (it.type === "reasoning") reasoning += (it.content ?? []).map((c) => c.text).join("");
    else if (it.type === "function_call") {
      const call = { id: it.call_id, type: "function", function: { name: it.name, arguments: it.arguments } };
      const last = out.at(-1);
      if (last?.role === "assistant" && !reasoning) (last.tool_calls ??= []).push(call);
      else assistant({ role: "assistant", content: "", tool_calls: [call] });
    } else if (it.type === "function_call_output") out.push({ role: "tool", tool_call_id: it.call_id, content: partsText(it.output) });
    else if (it.role === "assistant") assistant({ role: "assistant", content: partsText(it.content) });
    else out.push({ role: it.role === "developer" ? "system" : it.role, content: partsText(it.content) });
  }
  return out;
}

/** The chat completions body that asks for what `req` asks for. */
function chatBody(req: ResponsesRequest): Record<string, unknown> {
  const f = req.text?.format;
  const choice = req.tool_choice;
  return {
    model: req.model,
    messages: chatMessages(req),
    max_tokens: req.max_output_tokens,
    temperature: req.temperature,
    top_p: req.top_p,
    tools: req.tools?.map((t) => ({ type: "function", function: { name: t.name, description: t.description ?? undefined, parameters: t.parameters ?? undefined } })),
    tool_choice: choice && typeof choice === "object" ? { type: "function", function: { name: choice.name } } : choice,
    grammar: req.grammar,
    response_format: !f || f.type === "text" ? undefined : f.type === "json_object" ? { type: "json_object" } : { type: "json_schema", json_schema: { name: f.name, schema: f.schema } },
  };
}

/** Chat-side field names in errors, as the Responses API names them. */
const NAMES: [RegExp, string][] = [
  [/tools\[(\d+)\]\.function\.parameters/g, "tools[$1].parameters"], [/tool_choice\.function\.name/g, "tool_choice.name"],
  [/response_format\.json_schema\.schema/g, "text.format.schema"], [/'response_format'/g, "'text.format'"], [/'max_tokens'/g, "'max_output_tokens'"],
];

type OutputItem = Record<string, unknown> & { type: string; id: string };

export class ResponsesApi {
  constructor(private readonly api: OpenAIApi) {}

  async prepare(body: unknown): Promise<ResponsesPrepared> {
    const req = parseBody(responsesRequestSchema, body);
    try {
      const chat = await this.api.prepare("chat", chatBody(req));
      return { chat, req, id: "resp_" + hex(), createdAt: Math.floor(Date.now() / 1000), stream: req.stream ?? false };
    } catch (e) {
      throw renamedError(e, NAMES);
    }
  }

  /** The response object; `output` and `usage` once generated. */
  private response(p: ResponsesPrepared, output: OutputItem[], res?: GenerationResult) {
    const r = p.req;
    const incomplete = res?.finishReason === "length";
    return {
      id: p.id, object: "response" as const, created_at: p.createdAt, model: p.chat.model,
      status: !res ? "in_progress" : incomplete ? "incomplete" : "completed",
      incomplete_details: incomplete ? { reason: "max_output_tokens" } : null,
      error: null, output,
      instructions: r.instructions ?? null, max_output_tokens: r.max_output_tokens ?? null, temperature: r.temperature ?? null, top_p: r.top_p ?? null,
      tools: r.tools ?? [], tool_choice: r.tool_choice ?? "auto", parallel_tool_calls: r.parallel_tool_calls ?? true, text: { format: r.text?.format ?? { type: "text" } },
      previous_response_id: null, store: false, metadata: r.metadata ?? {},
      usage: res
        ? { input_tokens: res.usage.prompt_tokens, input_tokens_details: { cached_tokens: res.usage.prompt_tokens_details.cached_tokens }, output_tokens: res.usage.completion_tokens, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: res.usage.total_tokens }
        : null,
    };
  }

  private static reasoningItem = (text: string): OutputItem => ({ type: "reasoning", id: "rs_" + hex(), summary: [], content: [{ type: "reasoning_text", text }] });
  private static messageItem = (text: string): OutputItem => ({
    type: "message", id: "msg_" + hex(), status: "completed", role: "assistant", content: [{ type: "output_text", text, annotations: [], logprobs: [] }],
  });
  private static callItems = (res: GenerationResult): OutputItem[] =>
    res.toolCalls.map((c) => ({ type: "function_call", id: "fc_" + hex(), call_id: c.id, name: c.function.name, arguments: c.function.arguments, status: "completed" }));

  async complete(p: ResponsesPrepared, signal?: AbortSignal) {
    const res = await this.api.run(p.chat, signal);
    const output: OutputItem[] = [];
    if (res.reasoning) output.push(ResponsesApi.reasoningItem(res.reasoning));
    if (res.text.trim() || !res.toolCalls.length) output.push(ResponsesApi.messageItem(res.text));
    output.push(...ResponsesApi.callItems(res));
    return this.response(p, output, res);
  }

  /**
   * response.created and response.in_progress; per output item output_item.added, its parts and deltas
   * (reasoning_text.delta, content_part.added + output_text.delta, function_call_arguments.delta), their
   * .done events and output_item.done; then response.completed (or response.incomplete at max_output_tokens).
   */
  async *events(p: ResponsesPrepared, signal?: AbortSignal): AsyncGenerator<SseEvent> {
    let seq = 0;
    const ev = (type: string, fields: Record<string, unknown>): SseEvent => ({ event: type, data: { type, sequence_number: seq++, ...fields } });
    const output: OutputItem[] = [];
    yield ev("response.created", { response: this.response(p, []) });
    yield ev("response.in_progress", { response: this.response(p, []) });
    let open: { item: OutputItem; text: string } | undefined;
    const at = () => ({ item_id: open!.item.id, output_index: output.length, content_index: 0 });
    function* close(): Generator<SseEvent> {
      if (!open) return;
      const { item, text } = open;
      if (item.type === "reasoning") {
        const part = { type: "reasoning_text", text };
        yield ev("response.reasoning_text.done", { ...at(), text });
        yield ev("response.content_part.done", { ...at(), part });
        Object.assign(item, { content: [part] });
      } else {
        const part = { type: "output_text", text, annotations: [], logprobs: [] };
        yield ev("response.output_text.done", { ...at(), text, logprobs: [] });
        yield ev("response.content_part.done", { ...at(), part });
        Object.assign(item, { status: "completed", content: [part] });
      }
      yield ev("response.output_item.done", { output_index: output.length, item });
      output.push(item);
      open = undefined;
    }
    function* piece(kind: "reasoning" | "message", delta: string): Generator<SseEvent> {
      if (open?.item.type !== kind) {
        yield* close();
        const item = kind === "reasoning" ? { type: "reasoning", id: "rs_" + hex(), summary: [], content: [] } : { type: "message", id: "msg_" + hex(), status: "in_progress", role: "assistant", content: [] };
        open = { item, text: "" };
        yield ev("response.output_item.added", { output_index: output.length, item: { ...item } });
        const part = kind === "message" ? { type: "output_text", text: "", annotations: [], logprobs: [] } : { type: "reasoning_text", text: "" };
        yield ev("response.content_part.added", { ...at(), part });
      }
      open!.text += delta;
      yield ev(kind === "reasoning" ? "response.reasoning_text.delta" : "response.output_text.delta", { ...at(), delta, ...(kind === "message" ? { logprobs: [] } : {}) });
    }
    const it = this.api.generate(p.chat, signal);
    let r: IteratorResult<Delta, GenerationResult>;
    try {
      for (r = await it.next(); !r.done; r = await it.next()) {
        if (r.value.reasoning) yield* piece("reasoning", r.value.reasoning);
        if (r.value.text) yield* piece("message", r.value.text);
      }
    } finally {
      await it.return(undefined as never); // a consumer that stops early ends the generation too
    }
    const res = r.value;
    if (res.finishReason === "abort") return;
    if (!output.length && !open && !res.toolCalls.length) yield* piece("message", "");
    yield* close();
    for (const item of ResponsesApi.callItems(res)) {
      const i = output.length;
      yield ev("response.output_item.added", { output_index: i, item: { ...item, arguments: "", status: "in_progress" } });
      yield ev("response.function_call_arguments.delta", { item_id: item.id, output_index: i, delta: item.arguments });
      yield ev("response.function_call_arguments.done", { item_id: item.id, output_index: i, arguments: item.arguments });
      yield ev("response.output_item.done", { output_index: i, item });
      output.push(item);
    }
    const done = this.response(p, output, res);
    yield ev(done.status === "incomplete" ? "response.incomplete" : "response.completed", { response: done });
  }

  endpoint(): Endpoint<ResponsesPrepared> {
    return {
      prepare: (body) => this.prepare(body),
      complete: (p, signal) => this.complete(p, signal),
      events: (p, signal) => this.events(p, signal),
      errorBody: (e) => e.toJSON(),
      // The Responses stream's error event: {type: "error", code, message, param}.
      errorEvent: (e) => ({ event: "error", data: { type: "error", code: e.code, message: e.message, param: e.param } }),
    };
  }
}
