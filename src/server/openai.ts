// OpenAI-shaped calls over one loaded model: request body in, response or chunk objects out. No HTTP
// here (practice 14): http.ts only parses, queues and writes what this returns.
import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import { renderChat, type ChatMessage } from "../engine/chat-template.js";
import type { LoadedModel } from "../engine/load.js";
import { Session } from "../engine/session.js";
import type { SamplingOptions } from "../sampler/index.js";
import { MoestreamError } from "../util/errors.js";
import { ApiError, fromZod } from "./errors.js";
import { chatRequestSchema, completionRequestSchema, type ChatMessageInput, type ChatRequest, type CompletionRequest } from "./schemas.js";
import { StopScanner } from "./stop.js";

export type RequestKind = "chat" | "text";
export type FinishReason = "stop" | "length";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
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
}

export interface GenerationResult {
  text: string;
  finishReason: FinishReason | "abort";
  usage: Usage;
  decodeMs: number;
}

export interface OpenAIApiOptions {
  /** The id clients send as `model`; default: the model file's name without .gguf. */
  modelId?: string;
  /** Server-wide sampling defaults (the CLI's sampling flags); request fields override them. */
  defaults?: SamplingOptions;
}

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

export class OpenAIApi {
  readonly modelId: string;
  readonly created = Math.floor(Date.now() / 1000);
  readonly counters: ApiCounters = { requests: 0, promptTokens: 0, completionTokens: 0, decodeMs: 0, aborted: 0 };
  private readonly defaults: SamplingOptions;

  constructor(readonly lm: LoadedModel, opts: OpenAIApiOptions = {}) {
    this.modelId = opts.modelId ?? defaultModelId(lm.path);
    this.defaults = opts.defaults ?? {};
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
  prepare(kind: RequestKind, body: unknown): PreparedRequest {
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError(400, "the request body must be a JSON object", null, "invalid_body");
    const parsed = (kind === "chat" ? chatRequestSchema : completionRequestSchema).safeParse(body);
    if (!parsed.success) throw fromZod(parsed.error);
    const req = parsed.data;
    if (req.model !== this.modelId) throw this.unknownModel(req.model);
    const promptTokens = kind === "chat" ? this.chatPrompt(req as ChatRequest) : this.textPrompt(req as CompletionRequest);
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
    return {
      kind, id: prefix + randomBytes(12).toString("hex"), created: Math.floor(Date.now() / 1000), model: this.modelId,
      promptTokens, maxTokens: Math.min(asked ?? room, room), sampling, stop,
      stream: req.stream ?? false, includeUsage: req.stream_options?.include_usage ?? false,
    };
  }

  /**
   * Run one request on a fresh Session (the expert cache is shared through the LoadedModel), yielding
   * text deltas with stop sequences cut out; returns the totals. Aborting the signal ends it early.
   */
  async *generate(p: PreparedRequest, signal?: AbortSignal): AsyncGenerator<string, GenerationResult> {
    const session = new Session(this.lm);
    const tok = this.lm.tokenizer;
    const decoder = tok.createStreamDecoder();
    const scan = new StopScanner(p.stop);
    let text = "";
    let n = 0;
    let stopped = false;
    const t0 = performance.now();
    this.counters.requests++;
    this.counters.promptTokens += p.promptTokens.length;
    try {
      const gen = session.generate(p.promptTokens, { maxTokens: p.maxTokens, sampling: p.sampling, signal });
      for await (const step of gen) {
        // With resident experts a forward never waits on I/O: let sockets, disconnects and signals in.
        await new Promise((r) => setImmediate(r));
        n++;
        this.counters.completionTokens++;
        if (tok.eogIds.has(step.token)) continue; // generate() ends right after it, reason "stop"
        const r = scan.push(decoder.push(step.token));
        if (r.text) {
          text += r.text;
          yield r.text;
        }
        if (r.stopped) {
          stopped = true;
          break;
        }
      }
      if (!stopped) {
        const r = scan.push(decoder.flush());
        const tail = r.text + (r.stopped ? "" : scan.flush());
        stopped = r.stopped;
        if (tail) {
          text += tail;
          yield tail;
        }
      }
      const reason = stopped ? "stop" : (session.lastStats?.finishReason ?? "length");
      const decodeMs = performance.now() - t0;
      this.counters.decodeMs += decodeMs;
      return { text, finishReason: reason, usage: { prompt_tokens: p.promptTokens.length, completion_tokens: n, total_tokens: p.promptTokens.length + n }, decodeMs };
    } finally {
      if (signal?.aborted) this.counters.aborted++;
      session.kv.free();
    }
  }

  /** The whole response object of a non-streaming request. */
  async complete(p: PreparedRequest, signal?: AbortSignal) {
    const it = this.generate(p, signal);
    let r = await it.next();
    while (!r.done) r = await it.next();
    const res = r.value;
    const finish: FinishReason = res.finishReason === "length" ? "length" : "stop";
    if (p.kind === "chat") {
      return {
        id: p.id, object: "chat.completion" as const, created: p.created, model: p.model,
        choices: [{ index: 0, message: { role: "assistant" as const, content: res.text, refusal: null }, logprobs: null, finish_reason: finish }],
        usage: res.usage,
      };
    }
    return {
      id: p.id, object: "text_completion" as const, created: p.created, model: p.model,
      choices: [{ text: res.text, index: 0, logprobs: null, finish_reason: finish }],
      usage: res.usage,
    };
  }

  /** The chunk objects of a streaming request, in OpenAI's shape; the caller adds `data: [DONE]`. */
  async *stream(p: PreparedRequest, signal?: AbortSignal): AsyncGenerator<Record<string, unknown>, GenerationResult> {
    const usageField = p.includeUsage ? { usage: null } : {};
    const chunk = (delta: string | null, finish: FinishReason | null, first = false) =>
      p.kind === "chat"
        ? {
          id: p.id, object: "chat.completion.chunk", created: p.created, model: p.model,
          choices: [{ index: 0, delta: first ? { role: "assistant", content: "" } : delta === null ? {} : { content: delta }, logprobs: null, finish_reason: finish }],
          ...usageField,
        }
        : {
          id: p.id, object: "text_completion", created: p.created, model: p.model,
          choices: [{ text: delta ?? "", index: 0, logprobs: null, finish_reason: finish }],
          ...usageField,
        };
    if (p.kind === "chat") yield chunk(null, null, true);
    const it = this.generate(p, signal);
    let r: IteratorResult<string, GenerationResult>;
    try {
      r = await it.next();
      while (!r.done) {
        yield chunk(r.value, null);
        r = await it.next();
      }
    } finally {
      await it.return(undefined as never); // a consumer that stops early ends the generation too
    }
    const res = r.value;
    if (res.finishReason === "abort") return res;
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

  private chatPrompt(req: ChatRequest): number[] {
    const messages = req.messages.map((m) => {
      const out: Record<string, unknown> = { role: m.role === "developer" ? "system" : m.role, content: messageText(m.content) };
      if (m.tool_calls) out.tool_calls = m.tool_calls;
      if (m.name) out.name = m.name;
      if (m.tool_call_id) out.tool_call_id = m.tool_call_id;
      return out as unknown as ChatMessage;
    });
    let text: string;
    try {
      text = renderChat(this.lm.tokenizer.chatTemplate ?? undefined, messages, { addGenerationPrompt: true, enableThinking: req.chat_template_kwargs?.enable_thinking });
    } catch (e) {
      const why = e instanceof MoestreamError ? e.message : `the chat template failed: ${(e as Error).message}`;
      throw new ApiError(400, why, "messages", "chat_template_error");
    }
    return this.lm.tokenizer.encode(text, { parseSpecial: true });
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
