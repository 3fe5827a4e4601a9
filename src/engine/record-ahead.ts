// Decode tokens recorded ahead of their ids. A GPU backend records a token's work (hundreds of dispatches, ~9 µs of
// the host each on an H100 host) before the device runs it; recorded after the token before it is sampled, that
// recording adds to every token's time. Here token N+1's forward is recorded while token N's runs, its embedding's
// id left open (Backend.embedLater) and filled in once the sampler draws it from N's logits: the device then runs
// it at once, and the host records N+2 meanwhile. Where generation stops instead, the token recorded ahead still
// runs (its id: the last one sampled, or 0), and its position is taken back out of the cache.
import type { ModelCache } from "../kv/state.js";
import type { LoadedModel } from "./load.js";

interface Recorded {
  give(ids: Int32Array): void;
  logits: Promise<Float32Array>;
  /** Settles once the forward is recorded (the cache holds its token) or has failed. */
  recorded: Promise<void>;
  /** The cache's length when it began: its token's position. */
  start: number;
}

export class RecordAhead {
  private next: Recorded | undefined;

  private constructor(
    private readonly lm: LoadedModel,
    private readonly cache: ModelCache,
  ) {}

  /** One for this model and cache, if they can: a backend with embedLater, a model that takes its ids later, states that take back a token. */
  static for(lm: LoadedModel, cache: ModelCache): RecordAhead | undefined {
    const ok = lm.config.recordAhead && lm.model.recordsAhead && lm.backend.embedLater && cache.layers.every((l) => l.kind === "full" || l.kind === "latent");
    return ok ? new RecordAhead(lm, cache) : undefined;
  }

  /** A forward is recorded ahead, waiting for its token (feed). */
  get ready(): boolean {
    return this.next !== undefined;
  }

  /**
   * Record the forward of the token sampled next; the forward before it must be recorded already. Not while
   * another generation on the backend waits for its own token (two sessions at once): that token goes the usual way.
   */
  begin(): void {
    if (this.lm.backend.waitingForIds) return;
    let give!: (ids: Int32Array) => void, recorded!: () => void;
    const later = new Promise<Int32Array>((r) => (give = r));
    const rec = new Promise<void>((r) => (recorded = r));
    const start = this.cache.length;
    const logits = this.lm.model.forward(new Int32Array(1), this.cache, { logits: "last", later, onRecorded: recorded });
    logits.catch(() => recorded());
    this.next = { give, logits, recorded: rec, start };
  }

  /**
   * The sampled token goes into the forward recorded for it, which runs; the next one is recorded unless no token
   * will follow (`more` false: the token sampled from these logits is the last); its logits.
   */
  async feed(token: number, more: boolean): Promise<Float32Array> {
    const cur = this.next;
    if (!cur) throw new Error("internal: record-ahead feed() with nothing recorded");
    this.next = undefined;
    cur.give(Int32Array.of(token));
    await cur.recorded; // (its ids went in first: the backend took them as soon as they were given)
    if (more) this.begin();
    try {
      return await cur.logits;
    } catch (e) {
      await this.discard();
      throw e;
    }
  }

  /** Generation ends: the forward recorded ahead runs with `token` (the last sampled) or 0, and its position is dropped. */
  async discard(token = 0): Promise<void> {
    const cur = this.next;
    if (!cur) return;
    this.next = undefined;
    cur.give(Int32Array.of(token));
    await cur.logits.catch(() => undefined);
    if (this.cache.length > cur.start) this.cache.truncate(cur.start);
  }
}
