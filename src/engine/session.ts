// A conversation's state: KV cache, the tokens it holds, and generation as an async iterator.
import { KVCache } from "../kv/kv-cache.js";
import { createSampler, type SamplingOptions } from "../sampler/index.js";
import type { LoadedModel } from "./load.js";

export interface GenerateOptions {
  /** Tokens to generate at most. */
  maxTokens: number;
  sampling?: SamplingOptions;
  /** Stop at end-of-generation tokens (default true). */
  stopAtEog?: boolean;
  signal?: AbortSignal;
  /** Keep the top n raw logits of each step in the yielded step (for --json and logprobs). */
  topLogits?: number;
}

export interface GenerateStep {
  token: number;
  /** Text completed by this token (may be "" while a multi-byte character is incomplete). */
  text: string;
  /** [id, logit] pairs, highest first, when topLogits was asked for. */
  topLogits?: [number, number][];
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
}

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  promptMs: number;
  decodeMs: number;
  finishReason: "stop" | "length" | "abort";
  expertIO: "resident" | "stream";
  experts: { prefill: ExpertPhaseStats; decode: ExpertPhaseStats };
}

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

export class Session {
  readonly kv: KVCache;
  /** Every token the KV cache holds, in order. */
  readonly tokens: number[] = [];
  lastStats: GenerationStats | undefined;

  constructor(readonly lm: LoadedModel, nCtx = lm.config.ctxSize) {
    const hp = lm.model.hp;
    this.kv = new KVCache(lm.backend, hp.nLayer, nCtx, hp.nHeadKv * hp.headDim);
  }

  reset(): void {
    this.kv.truncate(0);
    this.tokens.length = 0;
    void this.lm.experts.cancelPrefetch(); // predictions for the old context are worthless
  }

  /** Feed tokens; returns the logits of the last one, or of every one. */
  async eval(tokens: readonly number[], logits: "last" | "all" = "last"): Promise<Float32Array> {
    const out = await this.lm.model.forward(Int32Array.from(tokens), this.kv, { logits });
    this.tokens.push(...tokens);
    return out;
  }

  /** Evaluate the prompt, then sample up to maxTokens, yielding each token as it is chosen. */
  async *generate(prompt: readonly number[], opts: GenerateOptions): AsyncGenerator<GenerateStep, GenerationStats> {
    const sampler = createSampler(opts.sampling);
    const tok = this.lm.tokenizer;
    const decoder = tok.createStreamDecoder();
    const stopAtEog = opts.stopAtEog ?? true;
    const snap = (): ExpertPhaseStats => {
      const x = this.lm.experts;
      const p = x.staging?.stats;
      const sum = (f: "issued" | "used" | "wasted" | "bytesRead") => (p ? p.prev[f] + p.lookahead[f] : 0);
      return {
        hits: x.stats.hits, misses: x.stats.misses, prefetched: x.stats.prefetched, bytesRead: x.stats.bytesRead,
        prefetchIssued: sum("issued"), prefetchUsed: sum("used"), prefetchWasted: sum("wasted"), prefetchBytes: sum("bytesRead"),
        reads: x.readLatency.count, readP50Ms: 0, readP99Ms: 0, ioWaitMs: x.stats.ioWaitMs,
      };
    };
    const s0 = snap();
    const t0 = performance.now();
    let logits = await this.eval(prompt);
    const t1 = performance.now();
    const s1 = snap();
    let n = 0;
    let finishReason: GenerationStats["finishReason"] = "length";
    while (n < opts.maxTokens) {
      if (opts.signal?.aborted) {
        finishReason = "abort";
        break;
      }
      const top = opts.topLogits ? topN(logits, opts.topLogits) : undefined;
      const token = sampler.sample(logits, this.tokens);
      n++;
      if (stopAtEog && tok.eogIds.has(token)) {
        finishReason = "stop";
        yield { token, text: "", topLogits: top };
        break;
      }
      yield { token, text: decoder.push(token), topLogits: top };
      if (n >= opts.maxTokens) break;
      if (this.tokens.length >= this.kv.nCtx) break;
      logits = await this.eval([token]);
    }
    const s2 = snap();
    const diff = (a: ExpertPhaseStats, b: ExpertPhaseStats): ExpertPhaseStats => {
      const d = Object.fromEntries(Object.keys(a).map((k) => [k, b[k as keyof ExpertPhaseStats] - a[k as keyof ExpertPhaseStats]])) as unknown as ExpertPhaseStats;
      [d.readP50Ms, d.readP99Ms] = this.lm.experts.readLatency.percentiles(a.reads, [0.5, 0.99]);
      return d;
    };
    const stats: GenerationStats = {
      promptTokens: prompt.length, generatedTokens: n, promptMs: t1 - t0, decodeMs: performance.now() - t1, finishReason,
      expertIO: this.lm.expertIO.mode, experts: { prefill: diff(s0, s1), decode: diff(s1, s2) },
    };
    this.lastStats = stats;
    return stats;
  }
}
