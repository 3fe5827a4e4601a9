// npm run bench -- ops [--only=ds|q35]: where a decode step's time goes, per backend op, on small DeepSeek-V3- and
// Qwen3.5-shaped models (real head layouts, 2048 wide, 4 layers, few experts). Each op is timed around its call
// (the native backend runs synchronously; wasm copies in and out inside the call), during decode steps only.
import { loadModel } from "../src/engine/load.js";
import { defaultEngineConfig, type BackendName } from "../src/engine/config.js";
import { Session } from "../src/engine/session.js";
import type { Backend } from "../src/backends/backend.js";
import { benchModel } from "./models.js";

const OPS = ["embed", "matmul", "matmulSet", "matmulHeads", "rmsNorm", "rope", "copy", "kvStore", "attention", "add", "swiglu", "gatherRows",
  "scatterAddRows", "addRows", "zero", "convSilu", "l2Norm", "deltaGates", "gatedDeltaNet", "rmsNormGated", "sigmoidMul", "expertFfn", "moeFfn", "read", "readMany"] as const;

/** Wraps the backend's methods in place (the model holds this object) with timers that add into `acc` while `on()`. */
function instrument(be: Backend, on: () => boolean): Map<string, { ms: number; calls: number }> {
  const acc = new Map<string, { ms: number; calls: number }>();
  const obj = be as unknown as Record<string, unknown>;
  for (const op of OPS) {
    const fn = obj[op];
    if (typeof fn !== "function") continue;
    obj[op] = function (this: unknown, ...args: unknown[]) {
      if (!on()) return fn.apply(be, args);
      const t0 = performance.now();
      const r = fn.apply(be, args);
      const a = acc.get(op) ?? { ms: 0, calls: 0 };
      a.ms += performance.now() - t0;
      a.calls++;
      acc.set(op, a);
      return r;
    };
  }
  return acc;
}

export async function profileOps(path: string, opts: { backend?: BackendName; prompt?: number; decode?: number; threads?: number } = {}): Promise<void> {
  const prompt = opts.prompt ?? 64, decode = opts.decode ?? 32;
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: prompt + decode + 16, expertIo: "resident", backend: opts.backend ?? "native", threads: opts.threads ?? 2 }));
  const s = new Session(lm);
  let counting = false;
  const acc = instrument(lm.backend, () => counting);
  try {
    const ids = Array.from({ length: prompt }, (_, i) => 1000 + ((i * 7919) % 90_000));
    let steps = 0;
    const t0 = { v: 0 };
    for await (const _ of s.generate(ids, { maxTokens: decode + 1, sampling: { temperature: 0 }, stopAtEog: false })) {
      if (steps++ === 0) {
        counting = true;
        t0.v = performance.now();
      }
    }
    const wall = performance.now() - t0.v, n = steps - 1;
    const total = [...acc.values()].reduce((a, b) => a + b.ms, 0);
    console.log(`${path} (${lm.backend.name}, ${opts.threads ?? 2} threads): ${n} decode steps after ${prompt} prompt tokens, ${(wall / n).toFixed(2)} ms/token (${((n * 1000) / wall).toFixed(1)} tok/s), ops ${(total / n).toFixed(2)} ms/token`);
    for (const [op, a] of [...acc].sort((x, y) => y[1].ms - x[1].ms))
      console.log(`  ${op.padEnd(14)} ${(a.ms / n).toFixed(3).padStart(8)} ms/token ${((100 * a.ms) / wall).toFixed(1).padStart(5)}%  ${(a.calls / n).toFixed(0).padStart(5)} calls/token`);
  } finally {
    s.free();
    await lm.close();
  }
}

/** DeepSeek-V3's attention (q-lora, 576-wide latent, YaRN) and Qwen3.5's DeltaNet heads at 2048 wide, 4 layers. */
export const SMALL_MODELS = {
  ds: { preset: "deepseek2-tiny", file: "ds-small-q8_0.gguf", hp: {
    nEmbd: 2048, nLayer: 4, nNextn: 0, nHead: 16, qLoraRank: 512, kvLoraRank: 512, nRot: 64, headDimK: 192, headDimV: 128, nDenseLead: 1, nFf: 5632,
    nExpert: 16, nExpertUsed: 4, nFfExp: 1408, nExpertShared: 1, nGroup: 4, nGroupUsed: 2 } },
  q35: { preset: "qwen35moe-tiny", file: "q35-small-q8_0.gguf", hp: {
    nEmbd: 2048, nLayer: 4, nNextn: 0, nHead: 16, nHeadKv: 2, headDim: 256, nRot: 64, nFf: 512, nExpert: 32, nExpertUsed: 8, nFfExp: 512, nFfShexp: 512,
    ssmState: 128, nHeadK: 16, nHeadV: 32, ropeSections: [11, 11, 10, 0] } },
} as const;

export async function smallModel(which: keyof typeof SMALL_MODELS): Promise<string> {
  const m = SMALL_MODELS[which];
  return benchModel({ preset: m.preset, type: "Q8_0", seed: 1, hp: m.hp, routing: { kind: "realistic", skew: 1, locality: 0.5 }, expertSynthesis: "direct" }, m.file);
}

export async function benchOps(only?: string): Promise<void> {
  for (const which of Object.keys(SMALL_MODELS) as (keyof typeof SMALL_MODELS)[]) {
    if (only && only !== which) continue;
    await profileOps(await smallModel(which));
  }
}
