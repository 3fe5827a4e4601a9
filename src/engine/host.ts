// The caller's side of an engine host (host-worker.ts): starts the worker, matches answers to calls,
// turns a generation's messages back into an async iterator, and sets abort flags in shared memory so a
// stop reaches the forward pass between layers even while the host's own event loop is busy computing.
import { Worker } from "node:worker_threads";
import { MoestreamError } from "../util/errors.js";
import { Tokenizer } from "../tokenizer/index.js";
import { openGGUF } from "../format/gguf/read.js";


async function readTokenizer(path: string): Promise<Tokenizer> {
  await new Promise((r) => setImmediate(r)); // let the worker start first
  const file = await openGGUF(denseFile(path));
  try {
    return Tokenizer.fromMetadata(file.metadata);
  } finally {
    await file.source.close();
  }
}
import type { EngineConfig } from "./config.js";
import { denseFile, type LoadProgress } from "./load.js";
import type { GenerateStep, GenerationStats } from "./session.js";
import type { ChatMessage } from "./chat-template.js";
import {
  EXPERT_COUNTERS, fromWire, type ContextState, type ExpertCounters, type FromHost, type HostReady, type HostStart, type SessionCall, type ToHost, type WireGenerateOptions,
} from "./host-protocol.js";

/** The worker's entry. Under tsx (tests, scripts) this module is TypeScript: the worker registers tsx first. */
function spawnHost(data: HostStart): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./host-worker.js", import.meta.url), { workerData: data });
  const entry = new URL("./host-worker.ts", import.meta.url).href;
  const tsx = import.meta.resolve("tsx/esm/api");
  const code = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(code, { eval: true, workerData: data });
}

interface Pending {
  resolve(value: unknown): void;
  reject(e: Error): void;
  onState?(s: ContextState): void;
}

/** A generation's messages, queued until its iterator takes them. */
interface Stream {
  push(m: FromHost): void;
  fail(e: Error): void;
}

export class EngineHost {
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, Stream>();
  private nextId = 1;
  private dead: Error | undefined;
  private readonly counters: Float64Array;

  private constructor(
    private readonly worker: Worker,
    stats: SharedArrayBuffer,
    readonly ready: HostReady,
    /** Built on this thread from the same header: encoding never waits on the host. */
    readonly tokenizer: Tokenizer,
  ) {
    this.counters = new Float64Array(stats);
    worker.on("message", (m: FromHost) => this.receive(m));
    worker.on("error", (e) => this.die(new MoestreamError("engine_failed", `the engine thread failed: ${e.message}`, { cause: e })));
    worker.on("exit", (code) => this.die(new MoestreamError("engine_closed", code === 0 ? "the model is closed" : `the engine thread exited with code ${code}`)));
    this.idle();
  }

  /** Start a host and load `path` in it; progress and a load error arrive as the in-process loader gives them. */
  static async start(path: string, config: EngineConfig, onProgress?: LoadProgress): Promise<EngineHost> {
    const stats = new SharedArrayBuffer(8 * EXPERT_COUNTERS.length);
    const data: HostStart = { path, config, stats };
    const worker = spawnHost(data);
    // This thread reads the header and builds its own tokenizer while the host loads (cloning a 150k-token
    // vocabulary across threads costs more than parsing it again); the host's error, if any, is the one reported.
    const tokenizer = readTokenizer(path);
    tokenizer.catch(() => undefined);
    const ready = new Promise<{ worker: Worker; ready: HostReady }>((resolve, reject) => {
      const early = (e: Error) => reject(new MoestreamError("engine_failed", `the engine thread failed to start: ${e.message}`, { cause: e }));
      const exit = (code: number) => reject(new MoestreamError("engine_failed", `the engine thread exited with code ${code} while loading`));
      const first = (m: FromHost) => {
        if (m.t === "progress") return onProgress?.(m.done, m.total);
        worker.off("message", first).off("error", early).off("exit", exit);
        if (m.t === "ready") resolve({ worker, ready: m.ready });
        else if (m.t === "failed") {
          reject(fromWire(m.error));
          void worker.terminate();
        }
      };
      worker.on("message", first).on("error", early).on("exit", exit);
    });
    const r = await ready;
    try {
      return new EngineHost(r.worker, stats, r.ready, await tokenizer);
    } catch (e) {
      await worker.terminate();
      throw e;
    }
  }

  /** The expert cache counters as the host last published them (after each forward batch or step). */
  get expertCounters(): ExpertCounters {
    return Object.fromEntries(EXPERT_COUNTERS.map((k, i) => [k, this.counters[i]])) as ExpertCounters;
  }

  /** One session call; `onState` hears the session's context after it, whether it succeeded or not. */
  call(sid: number, call: SessionCall, onState?: (s: ContextState) => void): Promise<unknown> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    this.send({ t: "call", id, sid, call });
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, onState }));
  }

  /**
   * A generation on session `sid`: steps as they are made, the stats at the end. `onState` hears the
   * session's context when it ends (normally, early, or by an error).
   */
  async *generate(
    sid: number,
    what: { prompt: number[] } | { messages: ChatMessage[] },
    opts: WireGenerateOptions,
    hooks: { onPrefill?: (done: number, total: number) => void; onState(s: ContextState): void },
  ): AsyncGenerator<GenerateStep, GenerationStats | undefined> {
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    const queue: FromHost[] = [];
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    this.streams.set(id, {
      push: (m) => (queue.push(m), wake?.()),
      fail: (e) => ((failure = e), wake?.()),
    });
    this.send("prompt" in what ? { t: "generate", id, sid, prompt: what.prompt, opts } : { t: "chat", id, sid, messages: what.messages, opts });
    let finished = false;
    try {
      for (;;) {
        while (!queue.length && !failure) await new Promise<void>((r) => (wake = r));
        const m = queue.shift();
        if (!m) throw failure!;
        if (m.t === "prefill") hooks.onPrefill?.(m.done, m.total);
        else if (m.t === "step") {
          yield m.step;
          this.send({ t: "next", id });
        } else if (m.t === "done") {
          finished = true;
          hooks.onState(m.state);
          return m.stats;
        } else if (m.t === "error") {
          finished = true;
          if (m.state) hooks.onState(m.state);
          throw fromWire(m.error);
        }
      }
    } finally {
      if (!finished && !this.dead) {
        // The caller stopped iterating: end the host's generation and wait for its final state, so the
        // next call on this session sees the context the stop left.
        this.send({ t: "return", id });
        while (!failure) {
          const m = queue.shift();
          if (!m) {
            await new Promise<void>((r) => (wake = r));
            continue;
          }
          if (m.t === "done" || m.t === "error") {
            if (m.state) hooks.onState(m.state);
            break;
          }
        }
      }
      this.streams.delete(id);
      this.idle();
    }
  }

  async close(): Promise<void> {
    if (this.dead) return;
    const id = this.nextId++;
    this.send({ t: "close", id });
    await new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    await this.worker.terminate();
  }

  private send(m: ToHost): void {
    this.worker.ref(); // an answer is owed: keep the process alive for it
    this.worker.postMessage(m);
  }

  /** With nothing owed, the host does not keep the caller's process alive (an unclosed model never hangs exit). */
  private idle(): void {
    if (!this.pending.size && !this.streams.size) this.worker.unref();
  }

  private receive(m: FromHost): void {
    if (m.t === "result" || (m.t === "error" && this.pending.has(m.id))) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      this.idle();
      if (m.state) p.onState?.(m.state);
      if (m.t === "result") p.resolve(m.value);
      else p.reject(fromWire(m.error));
      return;
    }
    if ("id" in m) this.streams.get(m.id)?.push(m);
  }

  private die(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    for (const p of this.pending.values()) p.reject(e);
    for (const s of this.streams.values()) s.fail(e);
    this.pending.clear();
  }
}
