// The library's front door: `const model = await loadModel(path, options)`, then generate / chat as async
// iterators of {token, text} deltas, sessions that keep a conversation and save/load it.
import { defaultEngineConfig, type EngineConfig } from "./config.js";
import { loadModel as loadEngineModel, type LoadedModel, type LoadProgress } from "./load.js";
import { Session, type GenerateOptions, type GenerateStep, type GenerationStats } from "./session.js";
import type { ChatMessage, ChatTemplateOptions } from "./chat-template.js";

export interface LoadOptions extends Partial<EngineConfig> {
  onProgress?: LoadProgress;
}

export interface ModelGenerateOptions extends Partial<GenerateOptions> {
  /** Chat only: template switches (enable_thinking, tools). */
  template?: ChatTemplateOptions;
}

const DEFAULT_MAX_TOKENS = 256;

function generateOptions(o: ModelGenerateOptions = {}): GenerateOptions & { template?: ChatTemplateOptions } {
  return { ...o, maxTokens: o.maxTokens ?? DEFAULT_MAX_TOKENS };
}

/** A loaded model. One generation runs at a time per model: calls wait their turn (the expert cache is shared). */
export class Model {
  private turn: Promise<void> = Promise.resolve();
  private scratch: Session | undefined;

  constructor(readonly loaded: LoadedModel) {}

  get tokenizer() {
    return this.loaded.tokenizer;
  }

  /** Complete `prompt` (text, special tokens parsed; or token ids). A repeated prefix is not evaluated again. */
  generate(prompt: string | readonly number[], options?: ModelGenerateOptions): AsyncGenerator<GenerateStep, GenerationStats> {
    const ids = typeof prompt === "string" ? this.tokenizer.encode(prompt, { parseSpecial: true }) : prompt;
    return this.exclusive((s) => s.generate(s.reuse(ids), generateOptions(options)));
  }

  /** Reply to a conversation rendered with the model's chat template. */
  chat(messages: ChatMessage[], options?: ModelGenerateOptions): AsyncGenerator<GenerateStep, GenerationStats> {
    return this.exclusive((s) => s.chat(messages, generateOptions(options)));
  }

  /** A session of its own (its own KV cache of `ctxSize` positions): a conversation to continue, save and load. */
  createSession(ctxSize?: number): Session {
    return new Session(this.loaded, ctxSize);
  }

  /** A new session holding the state saved at `path` (refused if it came from another model or is damaged). */
  async loadSession(path: string, ctxSize?: number): Promise<Session> {
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
    await this.turn;
    this.scratch?.free();
    await this.loaded.close();
  }

  /** Run one generation on the shared scratch session once the previous one has finished. */
  private async *exclusive(start: (s: Session) => AsyncGenerator<GenerateStep, GenerationStats>): AsyncGenerator<GenerateStep, GenerationStats> {
    const prev = this.turn;
    let done!: () => void;
    this.turn = new Promise((r) => (done = r));
    await prev;
    try {
      this.scratch ??= new Session(this.loaded);
      return yield* start(this.scratch);
    } finally {
      done();
    }
  }
}

/** Load a GGUF file or a packed directory; options default as the CLI's flags do. */
export async function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  const { onProgress, ...cfg } = options;
  const config: EngineConfig = defaultEngineConfig(Object.fromEntries(Object.entries(cfg).filter(([, v]) => v !== undefined)));
  return new Model(await loadEngineModel(path, config, onProgress));
}
