// llama.cpp (through node-llama-cpp, CPU build from the npm registry) as the acceptance oracle.
import { getLlama, type Llama, type LlamaModel } from "node-llama-cpp";

let llamaP: Promise<Llama> | undefined;
function llama(): Promise<Llama> {
  llamaP ??= getLlama({ gpu: false, build: "never", logLevel: "error" as never, progressLogs: false } as never);
  return llamaP;
}

export interface LlamaRun {
  promptTokens: number[];
  /** llama.cpp's greedy continuation. */
  tokens: number[];
  /** Raw logits before each generated token (tokens.length rows of nVocab). */
  logits: Float32Array[];
}

function toArray(logits: Map<number, number> | undefined, nVocab: number): Float32Array {
  if (!logits) throw new Error("node-llama-cpp returned no logits");
  const out = new Float32Array(nVocab).fill(-Infinity);
  for (const [id, v] of logits) out[id] = v;
  return out;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

export async function withLlamaModel<T>(path: string, fn: (m: LlamaModel) => Promise<T>, opts: { vocabOnly?: boolean } = {}): Promise<T> {
  const model = await (await llama()).loadModel({ modelPath: path, vocabOnly: opts.vocabOnly });
  try {
    return await fn(model);
  } finally {
    await model.dispose();
  }
}

/**
 * Tokenize (special tokens parsed) and decode greedily for n tokens, one token per evaluation. flashAttention
 * false is the parity setting (node-llama-cpp's "auto" turns it on for the CPU, which accumulates differently).
 */
export async function llamaGreedy(path: string, prompt: string, n: number, opts: { flashAttention?: boolean } = {}): Promise<LlamaRun> {
  return withLlamaModel(path, async (model) => {
    const ctx = await model.createContext({ contextSize: 512, threads: 1, ...(opts.flashAttention !== undefined ? { flashAttention: opts.flashAttention } : {}) });
    try {
      const seq = ctx.getSequence();
      const vocab = model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight")?.dimensions[1];
      if (vocab === undefined) throw new Error("token_embd.weight not found by node-llama-cpp");
      const promptTokens = [...model.tokenize(prompt, true)].map(Number);
      const tokens: number[] = [];
      const logits: Float32Array[] = [];
      let input: number[] = promptTokens;
      for (let i = 0; i < n; i++) {
        const items = input.map((t, j) => (j === input.length - 1 ? ([t, { generateNext: { logits: true } }] as never) : (t as never)));
        const res = await seq.controlledEvaluate(items);
        const last = res[res.length - 1] as { next: { logits?: Map<number, number> } } | undefined;
        const l = toArray(last?.next.logits, Number(vocab));
        logits.push(l);
        const t = argmax(l);
        tokens.push(t);
        input = [t];
      }
      return { promptTokens, tokens, logits };
    } finally {
      await ctx.dispose();
    }
  });
}

export async function llamaTokenize(path: string, texts: string[], special: boolean, opts: { vocabOnly?: boolean } = {}): Promise<number[][]> {
  return withLlamaModel(path, async (model) => texts.map((t) => [...model.tokenize(t, special)].map(Number)), opts);
}

/**
 * llama.cpp's logits at every position of `tokens` (teacher-forced), from a fresh context: in one batch, or one
 * token per evaluation ("single"). A hybrid model's recurrent state cannot roll back, so each run gets its own.
 */
export async function llamaLogitsAll(path: string, tokens: readonly number[], mode: "batch" | "single", opts: { flashAttention?: boolean } = {}): Promise<Float32Array[]> {
  return withLlamaModel(path, async (model) => {
    const ctx = await model.createContext({ contextSize: 512, batchSize: 512, threads: 1, ...(opts.flashAttention !== undefined ? { flashAttention: opts.flashAttention } : {}) });
    try {
      const seq = ctx.getSequence();
      const vocab = model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight")?.dimensions[1];
      if (vocab === undefined) throw new Error("token_embd.weight not found by node-llama-cpp");
      const item = (t: number) => [t, { generateNext: { logits: true } }] as never;
      const rows = (res: unknown[]) => res.map((r) => toArray((r as { next: { logits?: Map<number, number> } }).next.logits, Number(vocab)));
      if (mode === "batch") return rows(await seq.controlledEvaluate(tokens.map(item)));
      const out: Float32Array[] = [];
      for (const t of tokens) out.push(...rows(await seq.controlledEvaluate([item(t)])));
      return out;
    } finally {
      await ctx.dispose();
    }
  });
}
