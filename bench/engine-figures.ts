// Decode, prefill and TTFT of moestream's engine on one model (in this thread or on its host), and the event loop's
// lateness meanwhile: shared by the cpu and gpu benches.
import { loadModel } from "../src/engine/load.js";
import { loadModel as loadHosted } from "../src/engine/model.js";
import { defaultEngineConfig, type BackendName } from "../src/engine/config.js";
import { Session } from "../src/engine/session.js";
import type { GenerateOptions, GenerateStep, GenerationStats } from "../src/engine/session.js";
import { quantile, timerLags } from "./timer-lag.js";

export interface Figures {
  decode: number;
  prefill: Record<number, number>;
  /** Time to first token after a 128-token prompt, ms. */
  ttftMs: number;
  /** A 10 ms timer's lateness (p99, worst) during the decode runs, and during the prompts (hosted: one long prefill). */
  lag?: { decode: [number, number]; prefill?: [number, number] };
}

/** The calls a figure needs, from the engine in this thread or on its host. */
interface BenchSession {
  reset(): void;
  generate(prompt: readonly number[], opts: GenerateOptions): AsyncGenerator<GenerateStep, GenerationStats>;
  readonly lastStats: GenerationStats | undefined;
  free(): void;
}

/** [p99, worst] of a 10 ms timer's lateness while `work` runs, ms. */
async function timerLag(work: () => Promise<void>): Promise<[number, number]> {
  const late = await timerLags(work);
  return [quantile(late, 0.99), late[late.length - 1]];
}

/** Ordinary token ids spread over the vocabulary (below `vocab`), the same for every engine. */
export const promptIds = (n: number, vocab = Infinity) => Array.from({ length: n }, (_, i) => (1000 + ((i * 7919) % 90_000)) % vocab);

export interface FigureOptions {
  backend: BackendName;
  threads: number;
  /** Tokens per decode run, after a 16-token prompt; the best of `decodeRuns` runs. */
  decode: number;
  decodeRuns: number;
  prefills: readonly number[];
  decodeOnly?: boolean;
  /** On the engine's host (a worker); lag is measured then, with a `lagPrefill`-token prefill. */
  hosted?: boolean;
  /** Measure the timer lag during decode in this thread too. */
  lag?: boolean;
  lagPrefill: number;
  vocab?: number;
}

export async function engineFigures(path: string, o: FigureOptions): Promise<Figures> {
  const cfg = { ctxSize: Math.max(o.lagPrefill, ...o.prefills) + 64, expertIo: "resident", backend: o.backend, threads: o.threads } as const;
  let s: BenchSession;
  let close: () => Promise<void>;
  if (o.hosted) {
    const m = await loadHosted(path, cfg);
    [s, close] = [m.createSession(), () => m.close()];
  } else {
    const lm = await loadModel(path, defaultEngineConfig(cfg));
    [s, close] = [new Session(lm), () => lm.close()];
  }
  try {
    const prefill: Record<number, number> = {};
    let ttftMs = NaN;
    let decode = NaN;
    const runs: number[] = Array(o.decodeRuns).fill(16);
    const prompts = o.decodeOnly ? [] : o.prefills;
    const run = async (ns: readonly number[]) => {
      for (const n of ns) {
        s.reset();
        const t0 = performance.now();
        let t1 = 0;
        let produced = 0;
        const gen = s.generate(promptIds(n, o.vocab), { maxTokens: n === 16 ? o.decode + 1 : 1, sampling: { temperature: 0 }, stopAtEog: false });
        for await (const _ of gen) if (produced++ === 0) t1 = performance.now();
        const st = s.lastStats!;
        if (n === 16) decode = Math.max(Number.isNaN(decode) ? 0 : decode, (o.decode * 1000) / st.decodeMs);
        else prefill[n] = (n * 1000) / st.promptMs;
        if (n === 128) ttftMs = t1 - t0;
      }
    };
    if (!o.hosted) {
      if (!o.lag) {
        await run([...runs, ...prompts]);
        return { decode, prefill, ttftMs };
      }
      // The decode runs' lateness apart from the prompts' (a long prompt's layers are long recordings).
      const decodeLag = await timerLag(() => run(runs)); // before the literal reads decode and the rest
      const promptLag = prompts.length ? await timerLag(() => run(prompts)) : undefined;
      return { decode, prefill, ttftMs, lag: { decode: decodeLag, ...(promptLag ? { prefill: promptLag } : {}) } };
    }
    const decodeLag = await timerLag(() => run(runs));
    await run(prompts);
    s.reset();
    const prefillLag = await timerLag(async () => {
      for await (const _ of s.generate(promptIds(o.lagPrefill, o.vocab), { maxTokens: 1, sampling: { temperature: 0 } }));
    });
    return { decode, prefill, ttftMs, lag: { decode: decodeLag, prefill: prefillLag } };
  } finally {
    s.free();
    await close();
  }
}
