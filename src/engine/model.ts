// The library's front door: `const model = await loadModel(path, options)`, then generate / chat as async
// iterators of {token, text} deltas, sessions that keep a conversation and save/load it. The model runs
// on an engine host (a worker thread): the caller's event loop stays free while it computes.
import { defaultEngineConfig, validateGenerateOptions, validateLoadOptions, type EngineConfig } from "./config.js";
import type { LoadProgress } from "./load.js";
import type { ExpertIODecision } from "./expert-io.js";
import type { GenerateOptions, GenerateStep, GenerationStats } from "./session.js";
import type { ChatMessage, ChatTemplateOptions } from "./chat-template.js";
import type { ModelInfo } from "../models/model.js";
import { EngineHost } from "./host.js";
import type { ExpertCounters } from "./host-protocol.js";
import { HostedSession } from "./hosted-session.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { UsageError } from "../util/errors.js";

/** The engine table's options (checked by validateLoadOptions); any of them may also be a string as its flag takes it. */
export interface LoadOptions extends Partial<Omit<EngineConfig, "memBudget" | "expertCache" | "gpuExpertCache">> {
  /** Bytes, or a size as --mem-budget takes it ("8G", "512M"). */
  memBudget?: number | string;
  expertCache?: number | string;
  gpuExpertCache?: number | string;
  onProgress?: LoadProgress;
}

export interface ModelGenerateOptions extends Partial<GenerateOptions> {
  /** Chat only: template switches (enable_thinking, tools). */
  template?: ChatTemplateOptions;
}

const DEFAULT_MAX_TOKENS = 256;

function generateOptions(o: ModelGenerateOptions = {}): GenerateOptions & { template?: ChatTemplateOptions } {
  validateGenerateOptions(o);
  return { ...o, maxTokens: o.maxTokens ?? DEFAULT_MAX_TOKENS };
}

/** A loaded model. One generation runs at a time per model: calls wait their turn (the expert cache is shared). */
export class Model {
  readonly path: string;
  /** GGUF general.architecture. */
  readonly arch: string;
  readonly info: ModelInfo;
  readonly tokenizer: Tokenizer;
  /** The options it was loaded with, ctxSize resolved (0 = auto becomes the chosen size). */
  readonly config: EngineConfig;
  /** The context size and why (one line for the user). */
  readonly contextReason: string;
  /** Resident or streamed experts, the cache size, and why (one line for the user). */
  readonly expertIO: ExpertIODecision;
  /** Things the user should hear about once. */
  readonly warnings: readonly string[];
  /** The compute backend's name. */
  readonly backend: string;
  /** Expert cache slots (every expert when resident). */
  readonly expertSlots: number;
  private turn: Promise<void> = Promise.resolve();
  private scratch: HostedSession | undefined;
  private sessions = 0;
  private closed = false;

  /** @internal loadModel makes these. */
  constructor(private readonly host: EngineHost) {
    const r = host.ready;
    [this.path, this.arch, this.info, this.config, this.contextReason, this.expertIO, this.warnings, this.backend, this.expertSlots] = [r.path, r.arch, r.info, r.config, r.contextReason, r.expertIO, r.warnings, r.backend, r.expertSlots];
    this.tokenizer = host.tokenizer;
  }

  /** Expert cache counters since load (hits, misses, bytes read, ...), current during a generation. */
  get expertStats(): ExpertCounters {
    return this.host.expertCounters;
  }

  /** Complete `prompt` (text, special tokens parsed; or token ids). A repeated prefix is not evaluated again. */
  generate(prompt: string | readonly number[], options?: ModelGenerateOptions): AsyncGenerator<GenerateStep, GenerationStats> {
    this.open();
    const ids = typeof prompt === "string" ? this.tokenizer.encode(prompt, { parseSpecial: true }) : prompt;
    const opts = generateOptions(options);
    return this.exclusive((s) => s.generate(s.reuse(ids), opts));
  }

  /** Reply to a conversation rendered with the model's chat template. */
  chat(messages: ChatMessage[], options?: ModelGenerateOptions): AsyncGenerator<GenerateStep, GenerationStats> {
    this.open();
    const opts = generateOptions(options);
    return this.exclusive((s) => s.chat(messages, opts));
  }

  /** A session of its own (its own KV cache of `ctxSize` positions): a conversation to continue, save and load. */
  createSession(ctxSize?: number): HostedSession {
    this.open();
    return new HostedSession(this.host, ++this.sessions, ctxSize ?? this.config.ctxSize);
  }

  /** A new session holding the state saved at `path` (refused if it came from another model or is damaged). */
  async loadSession(path: string, ctxSize?: number): Promise<HostedSession> {
    const s = this.createSession(ctxSize);
    try {
      await s.load(path);
      return s;
    } catch (e) {
      s.free();
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.turn;
    await this.host.close();
  }

  private open(): void {
    if (this.closed) throw new UsageError("model_closed", "the model is closed: load it again to use it");
  }

  /** Run one generation on the shared scratch session once the previous one has finished. */
  private async *exclusive(start: (s: HostedSession) => AsyncGenerator<GenerateStep, GenerationStats>): AsyncGenerator<GenerateStep, GenerationStats> {
    const prev = this.turn;
    let done!: () => void;
    this.turn = new Promise((r) => (done = r));
    await prev;
    try {
      this.open();
      this.scratch ??= this.createSession();
      return yield* start(this.scratch);
    } finally {
      done();
    }
  }
}

/** Load a GGUF file or a packed directory on an engine host of its own; options default as the CLI's flags do. */
export async function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  const config: EngineConfig = defaultEngineConfig(validateLoadOptions(options));
  return new Model(await EngineHost.start(path, config, options.onProgress));
}
