// OpenAI-shaped calls over one loaded model: request body in, response or chunk objects out. No HTTP
// here (practice 14): http.ts only parses, queues and writes what this returns.
import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import { renderChat, type ChatMessage, type ChatTool } from "../engine/chat-template.js";
import type { Model } from "../engine/model.js";
import type { HostedSession } from "../engine/hosted-session.js";
import type { SamplingOptions } from "../engine/config.js";
import { MoestreamError } from "../util/errors.js";
import { checkConstraint, ConstraintError, type OutputConstraint } from "../engine/constraint.js";
import { ApiError, parseBody } from "./errors.js";
import { chatRequestSchema, completionRequestSchema, type ChatMessageInput, type ChatRequest, type CompletionRequest } from "./schemas.js";
import { StopScanner } from "./stop.js";
import { toolCallConstraint, ToolCallSplitter, type ToolCall } from "./tools.js";
import { ReasoningSplitter } from "../engine/reasoning.js";

export type RequestKind = "chat" | "text";
export type FinishReason = "stop" | "length" | "tool_calls";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens whose KV was kept from the previous request (a shared prefix), as OpenAI reports cached tokens. */
  prompt_tokens_details: { cached_tokens: number };
}

/** One generated token's log-probability and its top alternatives (ids). */
export interface TokenLogprob {
  id: number;
  logprob: number;
  top: [number, number][];
}

/** A piece of output: text settled by the stop scanner, and the tokens generated since the last piece. */
export interface Delta {
  text: string;
  /** Text of the reply's <think> block (chat with reasoning split out). */
  reasoning: string;
  logprobs: TokenLogprob[];
}

/** A validated request, tokenized and checked against the context, ready to run. */
export interface PreparedRequest {
  kind: RequestKind;
  id: string;
  created: number;
  model: string;
  promptTokens: number[];
  maxTokens: number;
  sampling: SamplingOptions;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  /** Top alternatives per token when logprobs were asked for; undefined = none. */
  logprobs: number | undefined;
  /** Parse tool calls out of the reply (chat with tools, tool_choice not "none"). */
  tools: boolean;
  /** response_format / grammar / json_schema: constrained decoding. */
  constraint?: OutputConstraint;
  /** Split the <think> block out as reasoning_content; "open": the prompt already opened it. */
  reasoning: "none" | "split" | "open";
}

export interface GenerationResult {
  text: string;
  reasoning: string;
  finishReason: FinishReason | "abort";
  /** The stop sequence that ended the reply (finishReason "stop"); undefined when it ended otherwise. */
  stopSequence?: string;
  toolCalls: ToolCall[];
  usage: Usage;
  decodeMs: number;
}

export interface OpenAIApiOptions {
  /** The id clients send as `model`; default: the model file's name without .gguf. */
  modelId?: string;
  /** Server-wide sampling defaults (the CLI's sampling flags); request fields override them. */
  defaults?: SamplingOptions;
  /**
   * "deepseek" (default): a chat reply's <think> block comes back as reasoning_content; "none": inline in
   * content. A request's reasoning_format overrides it.
   */
  reasoningFormat?: ReasoningFormat;
}

export const REASONING_FORMATS = ["deepseek", "none"] as const;
export type ReasoningFormat = (typeof REASONING_FORMATS)[number];

/** Running totals for /metrics. */
export interface ApiCounters {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  decodeMs: number;
  aborted: number;
}

export function defaultModelId(path: string): string {
  return basename(path.replace(/[/\\]+$/, "")).replace(/\.gguf$/i, "");
}

function messageText(content: ChatMessageInput["content"]): string {
  if (content == null) return "";
  return typeof content === "string" ? content : content.map((p) => p.text).join("");
}

/** The tools a chat request offers the model, unless tool_choice is "none". */
function toolsOf(req: ChatRequest): ChatTool[] | undefined {
  if (!req.tools?.length || req.tool_choice === "none") return undefined;
  return req.tools as ChatTool[];
}

/** The tools a forced tool_choice ("required", or one named function) lets the reply call, with their indexes in `tools`. */
function forcedTools(req: ChatRequest): [ChatTool, number][] | undefined {
  const choice = req.tool_choice;
  if (choice == null || choice === "none" || choice === "auto") return undefined;
  const tools = (req.tools ?? []) as ChatTool[];
  if (!tools.length) throw new ApiError(400, "'tool_choice' forces a tool call, but the request has no tools", "tool_choice", "invalid_value");
  if (req.chat_template_kwargs?.enable_thinking) {
    throw new ApiError(400, "'tool_choice': a forced tool call cannot be combined with enable_thinking (the call is the whole reply)", "tool_choice", "invalid_value");
  }
  if (choice === "required") return tools.map((t, i) => [t, i]);
  const i = tools.findIndex((t) => t.function.name === choice.function.name);
  if (i < 0) throw new ApiError(400, `'tool_choice.function.name': no tool named '${choice.function.name}' in tools`, "tool_choice.function.name", "invalid_value");
  return [[tools[i], i]];
}

/** One output constraint a request asks for: the field that asked, and where the constraint's own fields sit in the request. */
interface AskedConstraint {
  name: string;
  constraint: OutputConstraint;
  param: (field: string) => string;
}

/**
 * The request's output constraint, checked (supported schema keywords, a grammar that compiles): a 400 names
 * the field, e.g. 'response_format.json_schema.schema.properties.email.format'. `forced`: a forced tool call's.
 */
async function requestConstraint(req: ChatRequest | CompletionRequest, forced?: AskedConstraint): Promise<OutputConstraint | undefined> {
  const asked: AskedConstraint[] = forced ? [forced] : [];
  const schemaAt = (at: string) => (field: string) => (field.startsWith("schema") ? at + field.slice("schema".length) : at.split(".")[0]);
  const rf = req.response_format;
  if (rf?.type === "json_object") asked.push({ name: "response_format", constraint: rf.schema ? { type: "json_schema", schema: rf.schema } : { type: "json_object" }, param: schemaAt("response_format.schema") });
  if (rf?.type === "json_schema") {
    const js = rf.json_schema;
    asked.push({ name: "response_format", constraint: js.schema ? { type: "json_schema", schema: js.schema } : { type: "json_object" }, param: schemaAt("response_format.json_schema.schema") });
  }
  if (req.grammar != null) asked.push({ name: "grammar", constraint: { type: "grammar", grammar: req.grammar }, param: () => "grammar" });
  if (req.json_schema != null) asked.push({ name: "json_schema", constraint: { type: "json_schema", schema: req.json_schema }, param: schemaAt("json_schema") });
  if (asked.length > 1) throw new ApiError(400, `'${asked[1].name}' cannot be combined with '${asked[0].name}': give one output constraint`, asked[1].name, "invalid_value");
  if (!asked.length) return undefined;
  const { constraint, param } = asked[0];
  try {
    await checkConstraint(constraint);
  } catch (e) {
    if (!(e instanceof ConstraintError)) throw e;
    const field = param(e.field);
    throw new ApiError(400, `'${field}': ${e.reason}`, field, "invalid_value");
  }
  return constraint;
}

/** A forced call's constraint; a tool's schema problem names `tools[i].function.parameters...`. */
function forcedConstraint(forced: [ChatTool, number][], thinkOpen: boolean): AskedConstraint {
  // A template that opens the think block itself gets it closed first: the call is the whole reply.
  const constraint = toolCallConstraint(forced.map(([t]) => t.function), thinkOpen ? "</think>\n\n" : "");
  const param = (field: string) => {
    const m = /^tags\[(\d+)\]\.schema(.*)$/.exec(field);
    return m ? `tools[${forced[Number(m[1])][1]}].function.parameters${m[2]}` : "tool_choice";
  };
  return { name: "tool_choice", constraint, param };
}

/** Token pieces as text for logprobs (invalid UTF-8 of a partial character becomes U+FFFD, as OpenAI's do). */
const utf8 = new TextDecoder();

export class OpenAIApi {
  readonly modelId: string;
  readonly created = Math.floor(Date.now() / 1000);
  readonly counters: ApiCounters = { requests: 0, promptTokens: 0, completionTokens: 0, decodeMs: 0, aborted: 0 };
  private readonly defaults: SamplingOptions;
  private readonly reasoningFormat: ReasoningFormat;
  /** One session for all requests: they run one at a time and keep the KV of a shared prompt prefix. */
  private session: HostedSession | undefined;

  constructor(readonly lm: Model, opts: OpenAIApiOptions = {}) {
    this.modelId = opts.modelId ?? defaultModelId(lm.path);
    this.defaults = opts.defaults ?? {};
    this.reasoningFormat = opts.reasoningFormat ?? "deepseek";
  }

  get contextSize(): number {
    return this.lm.config.ctxSize;
  }

  listModels() {
    return { object: "list" as const, data: [this.modelObject()] };
  }

  model(id: string) {
    if (id !== this.modelId) throw this.unknownModel(id);
    return this.modelObject();
  }

  /** Validate and tokenize; throws ApiError (400 naming the field, 404 for another model). */
  async prepare(kind: RequestKind, body: unknown): Promise<PreparedRequest> {
    const req: ChatRequest | CompletionRequest = kind === "chat" ? parseBody(chatRequestSchema, body) : parseBody(completionRequestSchema, body);
    // One model is loaded: whatever id the client names means it (as llama-server does); replies carry ours.
    const forced = kind === "chat" ? forcedTools(req as ChatRequest) : undefined;
    const chat = kind === "chat" ? this.chatPrompt(req as ChatRequest, forced !== undefined) : undefined;
    const promptTokens = chat ? chat.tokens : this.textPrompt(req as CompletionRequest);
    const ctx = this.contextSize;
    if (promptTokens.length >= ctx) {
      throw new ApiError(400, `This model's maximum context length is ${ctx} tokens. However, your prompt has ${promptTokens.length} tokens, which leaves no room to generate. Please reduce the length of the prompt.`, kind === "chat" ? "messages" : "prompt", "context_length_exceeded");
    }
    const asked = (kind === "chat" ? (req as ChatRequest).max_completion_tokens : undefined) ?? req.max_tokens;
    const room = ctx - promptTokens.length;
    const sampling: SamplingOptions = { ...this.defaults };
    if (req.temperature != null) sampling.temperature = req.temperature;
    if (req.top_p != null) sampling.topP = req.top_p;
    if (req.top_k != null) sampling.topK = req.top_k;
    if (req.min_p != null) sampling.minP = req.min_p;
    if (req.repeat_penalty != null) sampling.repeatPenalty = req.repeat_penalty;
    if (req.presence_penalty != null) sampling.presencePenalty = req.presence_penalty;
    if (req.frequency_penalty != null) sampling.frequencyPenalty = req.frequency_penalty;
    if (req.seed != null) sampling.seed = req.seed;
    const stop = req.stop == null ? [] : typeof req.stop === "string" ? [req.stop] : req.stop;
    const prefix = kind === "chat" ? "chatcmpl-" : "cmpl-";
    let logprobs: number | undefined;
    if (kind === "chat") {
      const c = req as ChatRequest;
      if (c.top_logprobs != null && !c.logprobs) throw new ApiError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs", "invalid_value");
      logprobs = c.logprobs ? (c.top_logprobs ?? 0) : undefined;
    } else logprobs = (req as CompletionRequest).logprobs ?? undefined;
    const constraint = await requestConstraint(req, forced && forcedConstraint(forced, chat!.thinkOpen));
    // Only where the template knows think blocks: elsewhere a reply that starts with "<think>" is just text.
    const format = (kind === "chat" ? (req as ChatRequest).reasoning_format : undefined) ?? this.reasoningFormat;
    const reasoning = !chat || format === "none" || !this.lm.tokenizer.chatTemplate?.includes("<think>") ? "none" : chat.thinkOpen ? "open" : "split";
    return {
      kind, id: prefix + randomBytes(12).toString("hex"), created: Math.floor(Date.now() / 1000), model: this.modelId,
      promptTokens, maxTokens: Math.min(asked ?? room, room), sampling, stop,
      stream: req.stream ?? false, includeUsage: req.stream_options?.include_usage ?? false,
      logprobs, tools: kind === "chat" && toolsOf(req as ChatRequest) !== undefined, constraint, reasoning,
    };
  }

  /**
   * Run one request on the shared session, keeping the KV of the prefix it shares with the previous request
   * (the expert cache is shared through the Model too); yields deltas with stop sequences cut out and
   * returns the totals. Requests run one at a time (the server's queue). Aborting the signal ends it early.
   */
  async *generate(p: PreparedRequest, signal?: AbortSignal): AsyncGenerator<Delta, GenerationResult> {
    const session = (this.session ??= this.lm.createSession());
    const tok = this.lm.tokenizer;
    const decoder = tok.createStreamDecoder();
    const scan = new StopScanner(p.stop);
    const tools = p.tools ? new ToolCallSplitter() : undefined;
    const think = p.reasoning === "none" ? undefined : new ReasoningSplitter(p.reasoning === "open");
    let text = "";
    let reasoning = "";
    let n = 0;
    let stopped = false;
    let lps: TokenLogprob[] = [];
    const t0 = performance.now();
    this.counters.requests++;
    this.counters.promptTokens += p.promptTokens.length;
    const rest = session.reuse(p.promptTokens);
    const cached = p.promptTokens.length - rest.length;
    const emit = (r: { reasoning: string; content: string }): Delta | undefined => {
      const t = tools ? tools.push(r.content) : r.content;
      text += r.content;
      reasoning += r.reasoning;
      if (!t && !r.reasoning && !lps.length) return undefined;
      const d = { text: t, reasoning: r.reasoning, logprobs: lps };
      lps = [];
      return d;
    };
    const out = (piece: string) => emit(think ? think.push(piece) : { reasoning: "", content: piece });
    try {
      const gen = session.generate(rest, { maxTokens: p.maxTokens, sampling: p.sampling, signal, logprobs: p.logprobs, constraint: p.constraint });
      for await (const step of gen) {
        n++;
        this.counters.completionTokens++;
        if (tok.eogIds.has(step.token)) continue; // generate() ends right after it, reason "stop"
        if (step.logprob !== undefined) lps.push({ id: step.token, logprob: step.logprob, top: step.topLogprobs ?? [] });
        const r = scan.push(decoder.push(step.token));
        const d = out(r.text);
        if (d) yield d;
        if (r.stopped) {
          stopped = true;
          break;
        }
      }
      if (!stopped) {
        const r = scan.push(decoder.flush());
        const f = r.stopped ? { text: "", stopped: true } : scan.flush(); // a match held back for a longer stop
        stopped = f.stopped;
        const d = out(r.text + f.text);
        if (d) yield d;
      }
      const held = think?.flush();
      const hd = held && emit(held);
      if (hd) yield hd;
      const end = tools?.finish();
      if (end?.content) yield { text: end.content, reasoning: "", logprobs: [] };
      const toolCalls = end?.toolCalls ?? [];
      if (toolCalls.length) text = text.slice(0, text.indexOf("<tool_call>"));
      let reason: GenerationResult["finishReason"] = stopped ? "stop" : (session.lastStats?.finishReason ?? "length");
      if (toolCalls.length && reason !== "abort") reason = "tool_calls";
      const decodeMs = performance.now() - t0;
      this.counters.decodeMs += decodeMs;
      const usage = { prompt_tokens: p.promptTokens.length, completion_tokens: n, total_tokens: p.promptTokens.length + n, prompt_tokens_details: { cached_tokens: cached } };
      return { text, reasoning, finishReason: reason, stopSequence: stopped ? scan.matched : undefined, toolCalls, usage, decodeMs };
    } finally {
      if (signal?.aborted) this.counters.aborted++;
    }
  }

  /** Run `p` to its end: the totals (for APIs that need none of the pieces as they come). */
  async run(p: PreparedRequest, signal?: AbortSignal): Promise<GenerationResult> {
    const it = this.generate(p, signal);
    let r = await it.next();
    while (!r.done) r = await it.next();
    return r.value;
  }

  /** OpenAI's logprobs object for `tokens`: chat's {content: [...]} or completions' parallel arrays. */
  private logprobsObject(p: PreparedRequest, tokens: TokenLogprob[], textOffset = 0) {
    if (p.logprobs === undefined) return null;
    const tok = this.lm.tokenizer;
    const piece = (id: number) => tok.tokenToPiece(id, { special: true });
    const str = (id: number) => utf8.decode(piece(id));
    if (p.kind === "chat") {
      const entry = (id: number, logprob: number) => ({ token: str(id), logprob, bytes: Array.from(piece(id)) });
      return { content: tokens.map((t) => ({ ...entry(t.id, t.logprob), top_logprobs: t.top.map(([id, lp]) => entry(id, lp)) })), refusal: null };
    }
    const offsets: number[] = [];
    let at = textOffset;
    for (const t of tokens) {
      offsets.push(at);
      at += str(t.id).length;
    }
    return {
      tokens: tokens.map((t) => str(t.id)), token_logprobs: tokens.map((t) => t.logprob),
      top_logprobs: tokens.map((t) => Object.fromEntries(t.top.map(([id, lp]) => [str(id), lp]))), text_offset: offsets,
    };
  }

  /** The whole response object of a non-streaming request. */
  async complete(p: PreparedRequest, signal?: AbortSignal) {
    const it = this.generate(p, signal);
    const lps: TokenLogprob[] = [];
    let r = await it.next();
    while (!r.done) {
      lps.push(...r.value.logprobs);
      r = await it.next();
    }
    const res = r.value;
    const finish: FinishReason = res.finishReason === "abort" ? "stop" : res.finishReason;
    if (p.kind === "chat") {
      const thought = res.reasoning ? { reasoning_content: res.reasoning } : {};
      const message = res.toolCalls.length
        ? { role: "assistant" as const, content: res.text.trim() ? res.text : null, ...thought, tool_calls: res.toolCalls, refusal: null }
        : { role: "assistant" as const, content: res.text, ...thought, refusal: null };
      return {
        id: p.id, object: "chat.completion" as const, created: p.created, model: p.model,
        choices: [{ index: 0, message, logprobs: this.logprobsObject(p, lps), finish_reason: finish }],
        usage: res.usage,
      };
    }
    return {
      id: p.id, object: "text_completion" as const, created: p.created, model: p.model,
      choices: [{ text: res.text, index: 0, logprobs: this.logprobsObject(p, lps), finish_reason: finish }],
      usage: res.usage,
    };
  }

  /** The chunk objects of a streaming request, in OpenAI's shape; the caller adds `data: [DONE]`. */
  async *stream(p: PreparedRequest, signal?: AbortSignal): AsyncGenerator<Record<string, unknown>, GenerationResult> {
    const usageField = p.includeUsage ? { usage: null } : {};
    let offset = 0;
    const chunk = (delta: Record<string, unknown> | null, finish: FinishReason | null, lps: TokenLogprob[] = []) => {
      const logprobs = lps.length ? this.logprobsObject(p, lps, offset) : null;
      if (p.kind === "chat") {
        return { id: p.id, object: "chat.completion.chunk", created: p.created, model: p.model, choices: [{ index: 0, delta: delta ?? {}, logprobs, finish_reason: finish }], ...usageField };
      }
      const text = (delta?.content as string | undefined) ?? "";
      offset += text.length;
      return { id: p.id, object: "text_completion", created: p.created, model: p.model, choices: [{ text, index: 0, logprobs, finish_reason: finish }], ...usageField };
    };
    if (p.kind === "chat") yield chunk({ role: "assistant", content: "" }, null);
    const it = this.generate(p, signal);
    let r: IteratorResult<Delta, GenerationResult>;
    try {
      r = await it.next();
      while (!r.done) {
        const d = r.value;
        const delta = p.kind === "text" ? { content: d.text } : { ...(d.reasoning ? { reasoning_content: d.reasoning } : {}), ...(d.text ? { content: d.text } : {}) };
        yield chunk(delta, null, d.logprobs);
        r = await it.next();
      }
    } finally {
      await it.return(undefined as never); // a consumer that stops early ends the generation too
    }
    const res = r.value;
    if (res.finishReason === "abort") return res;
    if (res.toolCalls.length) {
      yield chunk({ tool_calls: res.toolCalls.map((c, index) => ({ index, ...c })) }, null);
    }
    yield chunk(null, res.finishReason);
    if (p.includeUsage) {
      const object = p.kind === "chat" ? "chat.completion.chunk" : "text_completion";
      yield { id: p.id, object, created: p.created, model: p.model, choices: [], usage: res.usage };
    }
    return res;
  }

  private modelObject() {
    return { id: this.modelId, object: "model" as const, created: this.created, owned_by: "moestream" };
  }

  private unknownModel(id: string): ApiError {
    return new ApiError(404, `The model '${id}' does not exist; this server serves '${this.modelId}'`, "model", "model_not_found");
  }

  /** The rendered prompt's tokens, and whether it ends inside an opened <think> block. */
  private chatPrompt(req: ChatRequest, noThinking: boolean): { tokens: number[]; thinkOpen: boolean } {
    const messages = req.messages.map((m) => {
      const out: Record<string, unknown> = { role: m.role === "developer" ? "system" : m.role, content: messageText(m.content) };
      if (m.tool_calls) out.tool_calls = m.tool_calls;
      if (m.name) out.name = m.name;
      if (m.tool_call_id) out.tool_call_id = m.tool_call_id;
      if (m.reasoning_content) out.reasoning_content = m.reasoning_content;
      return out as unknown as ChatMessage;
    });
    let text: string;
    try {
      text = renderChat(this.lm.tokenizer.chatTemplate ?? undefined, messages, { addGenerationPrompt: true, enableThinking: noThinking ? false : req.chat_template_kwargs?.enable_thinking, tools: toolsOf(req) });
    } catch (e) {
      const why = e instanceof MoestreamError ? e.message : `the chat template failed: ${(e as Error).message}`;
      throw new ApiError(400, why, "messages", "chat_template_error");
    }
    const open = text.lastIndexOf("<think>");
    return { tokens: this.lm.tokenizer.encode(text, { parseSpecial: true }), thinkOpen: open >= 0 && !text.includes("</think>", open) };
  }

  private textPrompt(req: CompletionRequest): number[] {
    let prompt = req.prompt;
    if (Array.isArray(prompt) && Array.isArray(prompt[0])) prompt = prompt[0];
    else if (Array.isArray(prompt) && typeof prompt[0] === "string") prompt = prompt[0];
    if (typeof prompt === "string") return this.lm.tokenizer.encode(prompt, { parseSpecial: true });
    const ids = prompt as number[];
    const vocab = this.lm.tokenizer.vocabSize;
    const bad = ids.findIndex((t) => t >= vocab);
    if (bad >= 0) throw new ApiError(400, `'prompt[${bad}]': token id ${ids[bad]} is outside the vocabulary (${vocab} tokens)`, "prompt", "invalid_value");
    return ids;
  }
}
