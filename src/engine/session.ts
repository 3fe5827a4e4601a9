// A conversation's state: KV cache, the tokens it holds, and generation as an async iterator.
import type { ModelCache } from "../kv/state.js";
import { createSampler, type SamplingOptions } from "../sampler/index.js";
import type { LoadedModel } from "./load.js";
import { renderChat, type ChatMessage, type ChatTemplateOptions } from "./chat-template.js";
import { loadSessionInto, saveSession } from "./session-file.js";
import { AbortedError, namingFile } from "../util/errors.js";
import { fitContext, promptTooLong, replyReserve, shiftSlack } from "./context-fit.js";
import { TokenConstraint, type OutputConstraint } from "./constraint.js";
import { RecordAhead } from "./record-ahead.js";

export interface GenerateOptions {
  /** Tokens to generate at most. */
  maxTokens: number;
  sampling?: SamplingOptions;
  /** Stop at end-of-generation tokens (default true). */
  stopAtEog?: boolean;
  signal?: AbortSignal;
  /** Keep the top n raw logits of each step in the yielded step (for --json). */
  topLogits?: number;
  /** Hears (prompt tokens evaluated, total) after each prefill batch: for progress bars on long prompts. */
  onPrefill?: (done: number, total: number) => void;
  /** Report each chosen token's log-probability under the model, with this many top alternatives (0 = none). */
  logprobs?: number;
  /** Constrain the output to a JSON Schema, any JSON object, or a GBNF grammar (token masking before sampling). */
  constraint?: OutputConstraint;
}

export interface GenerateStep {
  token: number;
  /** Text completed by this token (may be "" while a multi-byte character is incomplete). */
  text: string;
  /** [id, logit] pairs, highest first, when topLogits was asked for. */
  topLogits?: [number, number][];
  /** With `logprobs`: the token's log-probability (softmax of the raw logits) and the top alternatives'. */
  logprob?: number;
  topLogprobs?: [number, number][];
}

/** Expert cache traffic of one phase. */
export interface ExpertPhaseStats {
  hits: number;
  misses: number;
  /** Misses served by a staged prefetch. */
  prefetched: number;
  /** Bytes read on demand. */
  bytesRead: number;
  prefetchIssued: number;
  prefetchUsed: number;
  prefetchWasted: number;
  prefetchBytes: number;
  /** Demand reads, and their latency percentiles in ms. */
  reads: number;
  readP50Ms: number;
  readP99Ms: number;
  /** Time the forward waited on expert reads; the rest of the phase is compute. */
  ioWaitMs: number;
  /**
   * The GPU expert tier (webgpu; zeros elsewhere): experts found on the device, and those not (each looked up in
   * the host cache above: hits and misses then count those lookups, a miss a read from disk), the bytes uploaded
   * and the ms the engine's thread spent handing them to the device queue.
   */
  gpuHits: number;
  gpuMisses: number;
  /** Split tier (--gpu-misses cpu): lookups of experts that ran on the CPU instead of going up (also host lookups). */
  gpuHostRuns: number;
  /** Split tier: experts admitted after running on the CPU, uploaded in the background (uploads, not lookups). */
  gpuAdmits: number;
  uploadBytes: number;
  uploadMs: number;
}

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  promptMs: number;
  decodeMs: number;
  finishReason: "stop" | "length" | "abort";
  expertIO: "resident" | "stream";
  experts: { prefill: ExpertPhaseStats; decode: ExpertPhaseStats };
  /**
   * Chat only, when the conversation did not fit the context: how many of the given messages after the
   * system prompt were left out of this turn's prompt (the oldest, whole turns) and the tokens they took.
   */
  contextShift?: { droppedMessages: number; droppedTokens: number };
}

/** Prompt tokens per forward: bounds activation memory on long prompts; each expert is still read once per batch. */
export const PREFILL_BATCH = 512;

export function topN(logits: Float32Array, n: number): [number, number][] {
  const best: [number, number][] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (best.length < n || v > best[best.length - 1][1]) {
      let j = best.length < n ? best.length : n - 1;
      if (best.length < n) best.push([i, v]);
      while (j > 0 && best[j - 1][1] < v) {
        best[j] = best[j - 1];
        j--;
      }
      best[j] = [i, v];
    }
  }
  return best;
}

/** log-softmax of `logits` at `ids`: one pass for the max, one for the sum. */
export function logSoftmaxAt(logits: Float32Array, ids: readonly number[]): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  return ids.map((id) => logits[id] - lse);
}

export class Session {
  /** Per-layer state (KV rows, or whatever each layer's kind keeps), made by the model. */
  readonly cache: ModelCache;
  /** Every token the KV cache holds, in order. */
  readonly tokens: number[] = [];
  /** Sampled tokens not yet run through the model (the last token of a generation); the next eval feeds them first. */
  readonly pending: number[] = [];
  /** The sampler's RNG state after the last generation: a generation without a seed continues it. */
  rngState: number[] | undefined;
  /** Saved and loaded with the session, untouched otherwise: an application's own state (a chat's messages). */
  meta: unknown;
  lastStats: GenerationStats | undefined;
  /** The messages the last chat turn dropped (as JSON) and how many: a caller who keeps appending gets the same cut. */
  private shift: { key: string; dropped: number } | undefined;
  /** A generation's decode token recorded ahead (record-ahead.ts), while the generation runs. */
  private ahead: RecordAhead | undefined;

  constructor(readonly lm: LoadedModel, nCtx = lm.config.ctxSize) {
    this.cache = lm.model.makeCache(nCtx);
  }

  /** The whole context: tokens in the KV cache, then pending ones. */
  get context(): number[] {
    return [...this.tokens, ...this.pending];
  }

  reset(): void {
    this.truncate(0);
    this.rngState = undefined;
    this.meta = undefined;
    this.shift = undefined;
  }

  /** Keep the first `length` tokens of the context, forget the rest. */
  truncate(length: number): void {
    this.idle();
    if (length < 0 || length > this.tokens.length + this.pending.length) throw new RangeError(`cannot truncate a context of ${this.tokens.length + this.pending.length} tokens to ${length}`);
    if (length >= this.tokens.length) {
      this.pending.length = length - this.tokens.length;
      return;
    }
    this.pending.length = 0;
    // A state that cannot roll back (recurrent layers) goes back to its checkpoint or to 0; the caller re-evaluates the rest.
    const keep = this.cache.rollbackPoint(length);
    this.cache.truncate(keep);
    const dropped = this.tokens.splice(keep);
    if (keep < length) this.pending.push(...dropped.slice(0, length - keep));
    void this.lm.experts.cancelPrefetch(); // predictions for the old context are worthless
  }

  /**
   * Make the context start with `prompt`, keeping the longest common prefix already evaluated, and return
   * the tokens still to feed (at least one, so there are logits to sample from). Where the state cannot
   * be rolled back to that prefix, the kept tokens become pending and are evaluated again.
   */
  reuse(prompt: readonly number[]): number[] {
    const ctx = this.context;
    let n = 0;
    while (n < ctx.length && n < prompt.length && ctx[n] === prompt[n]) n++;
    if (n === prompt.length) n = Math.max(0, n - 1);
    this.truncate(n);
    return prompt.slice(n);
  }

  /**
   * Feed tokens (after any pending ones) in batches of at most PREFILL_BATCH; returns the logits of the last
   * one, or of every one. `onProgress` hears (tokens done, total) after each batch. A set `signal` stops it
   * between layers (AbortedError); the batches done by then stay in the context.
   */
  async eval(tokens: readonly number[], logits: "last" | "all" = "last", onProgress?: (done: number, total: number) => void, signal?: { readonly aborted: boolean }): Promise<Float32Array> {
    this.idle();
    const all = this.pending.length ? [...this.pending, ...tokens] : tokens;
    if (all.length === 0) throw new RangeError("eval needs at least one token");
    const nVocab = this.lm.model.info.nVocab;
    const outs: Float32Array[] = [];
    for (let at = 0; at < all.length; at += PREFILL_BATCH) {
      const batch = all.slice(at, at + PREFILL_BATCH);
      outs.push(await this.lm.model.forward(Int32Array.from(batch), this.cache, { logits, signal }));
      if (at === 0) this.pending.length = 0; // fed now: the KV holds them
      this.tokens.push(...batch);
      onProgress?.(Math.min(all.length, at + PREFILL_BATCH), all.length);
    }
    if (logits === "last") return outs[outs.length - 1];
    const out = outs.length === 1 ? outs[0] : new Float32Array(all.length * nVocab);
    if (outs.length > 1) outs.reduce((off, o) => (out.set(o, off), off + o.length), 0);
    return all.length !== tokens.length ? out.subarray((all.length - tokens.length) * nVocab) : out;
  }

  /**
   * Append the prompt to the context (an empty prompt continues from the pending token), then sample up to
   * maxTokens, yielding each token as it is chosen. The last sampled token stays pending: the next call feeds it.
   */
  async *generate(prompt: readonly number[], opts: GenerateOptions): AsyncGenerator<GenerateStep, GenerationStats> {
    // Compiled before the prompt runs: a constraint that cannot be honoured is refused before any work.
    const constraint = opts.constraint ? await TokenConstraint.create(this.lm.tokenizer, this.lm.model.info.nVocab, opts.constraint) : undefined;
    try {
      return yield* this.sampleLoop(prompt, opts, constraint);
    } finally {
      constraint?.dispose();
    }
  }

  /**
   * Refuses work while a generation holds a token recorded ahead (its generator neither finished nor returned):
   * that token's forward waits for an id only the generation gives, and the cache's length is its.
   */
  private idle(): void {
    if (this.ahead?.ready) throw new Error("session: a generation is still running (its generator neither finished nor returned); finish it or call its return() first");
  }

  private async *sampleLoop(prompt: readonly number[], opts: GenerateOptions, constraint: TokenConstraint | undefined): AsyncGenerator<GenerateStep, GenerationStats> {
    const sampler = createSampler(opts.sampling);
    if (opts.sampling?.seed === undefined && this.rngState) sampler.setState(this.rngState);
    const tok = this.lm.tokenizer;
    const decoder = tok.createStreamDecoder();
    const stopAtEog = opts.stopAtEog ?? true;
    const snap = (): ExpertPhaseStats => {
      const x = this.lm.experts, g = this.lm.gpuExperts;
      const p = x.staging?.stats;
      const sum = (f: "issued" | "used" | "wasted" | "bytesRead") => (p ? p.prev[f] + p.lookahead[f] : 0);
      return {
        hits: x.stats.hits, misses: x.stats.misses, prefetched: x.stats.prefetched, bytesRead: x.stats.bytesRead,
        prefetchIssued: sum("issued"), prefetchUsed: sum("used"), prefetchWasted: sum("wasted"), prefetchBytes: sum("bytesRead"),
        reads: x.readLatency.count, readP50Ms: 0, readP99Ms: 0, ioWaitMs: x.stats.ioWaitMs,
        gpuHits: g?.stats.hits ?? 0, gpuMisses: g?.stats.misses ?? 0, gpuHostRuns: g?.stats.hostRuns ?? 0, gpuAdmits: g?.stats.admits ?? 0, uploadBytes: g?.slots.uploadStats.bytes ?? 0, uploadMs: g?.slots.uploadStats.ms ?? 0,
      };
    };
    const s0 = snap();
    const promptTokens = prompt.length + this.pending.length;
    // Refused before anything is evaluated (it would fail at the context's end). A context filled exactly
    // still gives one token: it is sampled from the last logits and needs no KV row until it is fed.
    if (this.tokens.length + promptTokens > this.cache.nCtx) throw promptTooLong(this.tokens.length + promptTokens, this.cache.nCtx);
    const t0 = performance.now();
    // Logits of the next position, or undefined once the signal stopped a forward part-way.
    const feed = async (tokens: readonly number[], onProgress?: typeof opts.onPrefill): Promise<Float32Array | undefined> => {
      try {
        return await this.eval(tokens, "last", onProgress, opts.signal);
      } catch (e) {
        if (e instanceof AbortedError) return undefined;
        throw e;
      }
    };
    let logits = await feed(prompt, opts.onPrefill);
    // Recurrent layers keep the state at the prompt's end: the next turn's prompt starts with this one, so a reply
    // rendered back differently from how it was generated costs only the reply, not the whole conversation.
    if (logits) this.cache.checkpoint();
    const t1 = performance.now();
    const s1 = snap();
    let n = 0;
    let finishReason: GenerationStats["finishReason"] = "length";
    // On a GPU, each token's forward is recorded while the one before it runs (record-ahead.ts).
    const ahead = logits && opts.maxTokens > 1 ? RecordAhead.for(this.lm, this.cache) : undefined;
    let last: number | undefined, tEnd = 0;
    try {
      ahead?.begin();
      this.ahead = ahead;
      while (n < opts.maxTokens) {
        if (!logits || opts.signal?.aborted) {
          finishReason = "abort";
          break;
        }
        const top = opts.topLogits ? topN(logits, opts.topLogits) : undefined;
        const token = sampler.sample(constraint ? await constraint.mask(logits) : logits, this.tokens);
        last = token;
        constraint?.accept(token);
        n++;
        this.pending.push(token);
        const step: GenerateStep = { token, text: "", topLogits: top };
        if (opts.logprobs !== undefined) {
          const alts = opts.logprobs > 0 ? topN(logits, opts.logprobs).map(([id]) => id) : [];
          const lp = logSoftmaxAt(logits, [token, ...alts]);
          step.logprob = lp[0];
          step.topLogprobs = alts.map((id, i) => [id, lp[i + 1]]);
        }
        if (stopAtEog && tok.eogIds.has(token)) {
          finishReason = "stop";
          yield step;
          break;
        }
        step.text = decoder.push(token);
        yield step;
        if (constraint?.done) {
          finishReason = "stop"; // the grammar is complete (a vocabulary without an end-of-generation token)
          break;
        }
        if (n >= opts.maxTokens) break;
        if (this.tokens.length + this.pending.length >= this.cache.nCtx) break;
        const more = n + 1 < opts.maxTokens; // a token sampled from the next logits is fed too
        if (ahead?.ready) {
          logits = await ahead.feed(token, more);
          this.pending.length = 0; // fed: the KV holds it
          this.tokens.push(token);
        } else {
          logits = await feed([]);
          if (logits && more) ahead?.begin();
        }
      }
    } finally {
      tEnd = performance.now(); // a token recorded ahead and not needed is run out of the decode time
      this.ahead = undefined;
      await ahead?.discard(last);
    }
    this.rngState = sampler.getState();
    const s2 = snap();
    const diff = (a: ExpertPhaseStats, b: ExpertPhaseStats): ExpertPhaseStats => {
      const d = Object.fromEntries(Object.keys(a).map((k) => [k, b[k as keyof ExpertPhaseStats] - a[k as keyof ExpertPhaseStats]])) as unknown as ExpertPhaseStats;
      [d.readP50Ms, d.readP99Ms] = this.lm.experts.readLatency.percentiles(a.reads, [0.5, 0.99]);
      return d;
    };
    const stats: GenerationStats = {
      promptTokens, generatedTokens: n, promptMs: t1 - t0, decodeMs: tEnd - t1, finishReason,
      expertIO: this.lm.expertIO.mode, experts: { prefill: diff(s0, s1), decode: diff(s1, s2) },
    };
    this.lastStats = stats;
    return stats;
  }

  /**
   * One chat turn: render the conversation with the model's template, reuse the part of the context that
   * already matches it, and generate the reply. A conversation beyond the context loses its oldest turns
   * (system prompt and latest turn kept; stats.contextShift says how many). Nothing runs before the first
   * next(): a refusal (a template that cannot render, a message beyond the context) arrives there.
   */
  async *chat(messages: ChatMessage[], opts: GenerateOptions & { template?: ChatTemplateOptions }): AsyncGenerator<GenerateStep, GenerationStats> {
    const nCtx = this.cache.nCtx;
    const sys = messages[0]?.role === "system" ? 1 : 0;
    const same = this.shift && messages.length > sys + this.shift.dropped && JSON.stringify(messages.slice(sys, sys + this.shift.dropped)) === this.shift.key;
    const rendered = new Map<ChatMessage[], number[]>();
    const encode = (m: ChatMessage[]) => {
      const text = namingFile(this.lm.path, () => renderChat(this.lm.tokenizer.chatTemplate ?? undefined, m, opts.template));
      const ids = this.lm.tokenizer.encode(text, { parseSpecial: true });
      rendered.set(m, ids);
      return ids.length;
    };
    const fit = fitContext(messages, { count: encode, nCtx, reserve: replyReserve(opts.maxTokens, nCtx), slack: shiftSlack(nCtx), minDropped: same ? this.shift!.dropped : 0 });
    this.shift = fit.dropped ? { key: JSON.stringify(messages.slice(sys, sys + fit.dropped)), dropped: fit.dropped } : undefined;
    const stats = yield* this.generate(this.reuse(rendered.get(fit.messages)!), opts);
    if (fit.dropped) stats.contextShift = { droppedMessages: fit.dropped, droppedTokens: fit.droppedTokens };
    return stats;
  }

  /** Write the KV rows, tokens and sampler state to `path` (atomically). */
  save(path: string): Promise<void> {
    return saveSession(this, path);
  }

  /** Replace this session's state with a saved one (same model only); a bad file leaves the session as it was. */
  load(path: string): Promise<void> {
    return loadSessionInto(this, path);
  }

  /** Release the per-layer state's buffers; the session is unusable afterwards. */
  free(): void {
    this.cache.free();
  }
}
