// Scalar reference decode speed vs llama.cpp on a3b-8L Q8_0 (the baseline the fast CPU backend improves).
import { getLlama } from "node-llama-cpp";
import { loadModel } from "../src/engine/load.js";
import { defaultEngineConfig, type EngineConfig } from "../src/engine/config.js";
import { Session } from "../src/engine/session.js";
import { benchModel } from "./models.js";

const PROMPT = "The history of the Roman Empire spans many centuries, and";

async function llamaDecode(path: string, threads: number, n: number): Promise<{ tokPerS: number; promptTokPerS: number }> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
  const model = await llama.loadModel({ modelPath: path });
  try {
    const ctx = await model.createContext({ contextSize: 512, threads });
    const seq = ctx.getSequence();
    const prompt = model.tokenize(PROMPT, true);
    const t0 = performance.now();
    await seq.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { token: true } }] : t)) as never);
    const t1 = performance.now();
    let produced = 0;
    for await (const _t of seq.evaluate([prompt[prompt.length - 1]] as never, { temperature: 0 })) {
      if (++produced >= n) break;
    }
    const t2 = performance.now();
    await ctx.dispose();
    return { tokPerS: (produced * 1000) / (t2 - t1), promptTokPerS: (prompt.length * 1000) / (t1 - t0) };
  } finally {
    await model.dispose();
  }
}

export async function benchScalar(): Promise<void> {
  const path = await benchModel({ preset: "a3b-8L", type: "Q8_0", seed: 1, routing: { kind: "realistic", skew: 1, locality: 0.5 } }, "a3b-8L-q8_0.gguf");
  const nLlama = 32, nOurs = 4;
  await llamaDecode(path, 2, 4); // warm-up: loads llama.cpp and faults the file in, so neither timed run pays for it
  const l1 = await llamaDecode(path, 1, nLlama);
  const l2 = await llamaDecode(path, 2, nLlama);
  console.log(`a3b-8L Q8_0 (resident), decode tok/s:`);
  console.log(`  llama.cpp 1 thread   ${l1.tokPerS.toFixed(2)}   (prompt ${l1.promptTokPerS.toFixed(1)} tok/s)`);
  console.log(`  llama.cpp 2 threads  ${l2.tokPerS.toFixed(2)}   (prompt ${l2.promptTokPerS.toFixed(1)} tok/s)`);
  const runs: [string, Partial<EngineConfig>, number][] = [["scalar, 1 thread", { backend: "scalar" }, nOurs], ["native, 1 thread", { backend: "native", threads: 1 }, 16], ["native, 2 threads", { backend: "native", threads: 2 }, 16]];
  for (const [label, c, n] of runs) {
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256, expertIo: "resident", ...c }));
    try {
      const s = new Session(lm);
      const prompt = lm.tokenizer.encode(PROMPT);
      for await (const _ of s.generate(prompt, { maxTokens: n + 1, sampling: { temperature: 0 }, stopAtEog: false }));
      const st = s.lastStats!;
      const ours = (Math.max(0, st.generatedTokens - 1) * 1000) / st.decodeMs;
      const ref = c.threads === 2 ? l2.tokPerS : l1.tokPerS;
      console.log(`  moestream ${label.padEnd(18)} ${ours.toFixed(3)}   (prompt ${((st.promptTokens * 1000) / st.promptMs).toFixed(2)} tok/s) = ${(ours / ref).toFixed(3)}x llama.cpp at the same threads`);
    } finally {
      await lm.close();
    }
  }
}
