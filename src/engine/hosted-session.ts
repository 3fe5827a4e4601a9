// A session whose state lives in the engine host: the caller's thread keeps a mirror of its context
// (tokens, meta, last stats) so the synchronous parts of the Session API (context, reuse, truncate,
// reset) answer at once; each change is sent to the host, which applies them in order.
import type { EngineHost } from "./host.js";
import type { ContextState, WireGenerateOptions } from "./host-protocol.js";
import type { GenerateOptions, GenerateStep, GenerationStats } from "./session.js";
import type { ChatMessage, ChatTemplateOptions } from "./chat-template.js";
import { UsageError } from "../util/errors.js";
import { validateGenerateOptions } from "./config.js";

export type HostedGenerateOptions = GenerateOptions & { template?: ChatTemplateOptions };

export class HostedSession {
  private ctx: number[] = [];
  private evaluated = 0;
  /** A failure of a call nobody awaited (creating the state, a truncate): the next call reports it. */
  private broken: Error | undefined;
  private freed = false;
  private readonly abortFlag = new Int32Array(new SharedArrayBuffer(4));
  /** Saved and loaded with the session, untouched otherwise: an application's own state (a chat's messages). */
  meta: unknown;
  lastStats: GenerationStats | undefined;

  /** @internal Model.createSession makes these. */
  constructor(
    private readonly host: EngineHost,
    private readonly sid: number,
    /** Tokens the session may hold. */
    readonly nCtx: number,
  ) {
    this.send({ op: "create", nCtx, abort: this.abortFlag.buffer as SharedArrayBuffer });
  }

  /** The whole context: tokens the state holds, then pending ones (the last sampled token). */
  get context(): number[] {
    return [...this.ctx];
  }

  /** Tokens the state has absorbed. */
  get tokens(): readonly number[] {
    return this.ctx.slice(0, this.evaluated);
  }

  /** Tokens still to be fed before the next forward (the last sampled token). */
  get pending(): readonly number[] {
    return this.ctx.slice(this.evaluated);
  }

  reset(): void {
    this.usable();
    this.ctx = [];
    this.evaluated = 0;
    this.meta = undefined;
    this.send({ op: "reset" });
  }

  /** Keep the first `length` tokens of the context, forget the rest. */
  truncate(length: number): void {
    this.usable();
    if (!Number.isInteger(length) || length < 0 || length > this.ctx.length) throw new RangeError(`cannot truncate a context of ${this.ctx.length} tokens to ${length}`);
    this.ctx.length = length;
    this.evaluated = Math.min(this.evaluated, length);
    this.send({ op: "truncate", length });
  }

  /** Make the context start with `prompt`, keeping the longest prefix already there; returns the tokens still to feed. */
  reuse(prompt: readonly number[]): number[] {
    let n = 0;
    while (n < this.ctx.length && n < prompt.length && this.ctx[n] === prompt[n]) n++;
    if (n === prompt.length) n = Math.max(0, n - 1);
    this.truncate(n);
    return prompt.slice(n);
  }

  /** Feed tokens; the logits of the last one, or of every one. */
  async eval(tokens: readonly number[], logits: "last" | "all" = "last"): Promise<Float32Array> {
    Atomics.store(this.abortFlag, 0, 0); // a stop meant for an earlier generation must not stop this
    return (await this.request({ op: "eval", tokens: [...tokens], logits })) as Float32Array;
  }

  /** Append `prompt` and sample up to maxTokens, yielding each token as the host makes it. */
  generate(prompt: readonly number[], opts: HostedGenerateOptions): AsyncGenerator<GenerateStep, GenerationStats> {
    return this.run({ prompt: [...prompt] }, opts);
  }

  /** One chat turn: the host renders the conversation with the model's template and reuses the matching prefix. */
  chat(messages: ChatMessage[], opts: HostedGenerateOptions): AsyncGenerator<GenerateStep, GenerationStats> {
    return this.run({ messages }, opts);
  }

  /** Write the state, tokens, sampler state and `meta` to `path` (atomically). */
  async save(path: string): Promise<void> {
    await this.request({ op: "save", path, meta: this.meta });
  }

  /** Replace this session's state with a saved one (same model only); a bad file leaves the session as it was. */
  async load(path: string): Promise<void> {
    this.meta = await this.request({ op: "load", path });
  }

  /** Release the state's memory in the host; the session is unusable afterwards. */
  free(): void {
    if (this.freed) return;
    this.send({ op: "free" });
    this.freed = true;
  }

  private async *run(what: { prompt: number[] } | { messages: ChatMessage[] }, opts: HostedGenerateOptions): AsyncGenerator<GenerateStep, GenerationStats> {
    this.usable();
    if (this.broken) throw this.broken;
    validateGenerateOptions(opts); // here, where a bad value can be named (the wire would only fail to clone it)
    const { signal, onPrefill, template, ...rest } = opts;
    const wire: WireGenerateOptions = { ...rest, prefill: onPrefill !== undefined, template };
    // The flag is shared memory: the host sees it between layers, whatever its event loop is doing.
    Atomics.store(this.abortFlag, 0, signal?.aborted ? 1 : 0);
    const stop = () => Atomics.store(this.abortFlag, 0, 1);
    signal?.addEventListener("abort", stop, { once: true });
    try {
      const stats = yield* this.host.generate(this.sid, what, wire, { onPrefill, onState: (s) => this.mirror(s) });
      if (stats) this.lastStats = stats;
      return this.lastStats!;
    } finally {
      signal?.removeEventListener("abort", stop);
    }
  }

  private usable(): void {
    if (this.freed) throw new UsageError("session_freed", "this session was freed");
  }

  private mirror(s: ContextState): void {
    this.ctx = s.context;
    this.evaluated = s.evaluated;
  }

  private async request(call: Parameters<EngineHost["call"]>[1]): Promise<unknown> {
    this.usable();
    if (this.broken) throw this.broken;
    return this.host.call(this.sid, call, (s) => this.mirror(s));
  }

  /** A call answered later: a failure is kept for the next call (never an unhandled rejection). */
  private send(call: Parameters<EngineHost["call"]>[1]): void {
    this.host.call(this.sid, call).catch((e: Error) => (this.broken ??= e));
  }
}
