// npm run bench -- ops [--only=ds|q35|oss|oss-wasm]: where prefill and decode time goes, per backend op, on small
// DeepSeek-V3-, Qwen3.5- and gpt-oss-20b-shaped models (real head layouts, few layers). Each op is timed around its
// call (the native backend runs synchronously; wasm copies in and out inside the call); what a fast backend hands to
// its scalar reference shows as "scalar:op". The gpt-oss model (1.8 GB) only when asked: --only=oss also runs prefill
// and decode paired ABBA in one process against the dispatch of before its kernels (attention with sinks / windows,
// swigluOai and addRows on the reference); --only=oss-wasm profiles it on the wasm kernels.
import { loadModel } from "../src/engine/load.js";
import { defaultEngineConfig, type BackendName } from "../src/engine/config.js";
import { Session } from "../src/engine/session.js";
import type { Backend } from "../src/backends/backend.js";
import { benchModel } from "./models.js";

const OPS = ["embed", "matmul", "matmulSet", "matmulHeads", "rmsNorm", "rope", "copy", "kvStore", "attention", "add", "swiglu", "gatherRows",
  "scatterAddRows", "addRows", "zero", "convSilu", "l2Norm", "deltaGates", "gatedDeltaNet", "rmsNormGated", "sigmoidMul", "expertFfn", "moeFfn", "read", "readMany", "swigluOai"] as const;

type OpTimes = Map<string, { ms: number; calls: number }>;

/**
 * Wraps the backend's methods in place (the model holds this object) with timers that add into `into()` (none:
 * not counting); a delegating backend's reference too, its ops as "scalar:op" (time also inside the calling op's).
 */
function instrument(be: Backend, into: () => OpTimes | undefined, prefix = ""): void {
  const obj = be as unknown as Record<string, unknown>;
  for (const op of OPS) {
    const fn = obj[op];
    if (typeof fn !== "function") continue;
    const name = prefix + op;
    obj[op] = function (this: unknown, ...args: unknown[]) {
      const acc = into();
      if (!acc) return fn.apply(be, args);
      const t0 = performance.now();
      const r = fn.apply(be, args);
      const a = acc.get(name) ?? { ms: 0, calls: 0 };
      a.ms += performance.now() - t0;
      a.calls++;
      acc.set(name, a);
      return r;
    };
  }
  const ref = (be as unknown as { ref?: Backend }).ref;
  if (ref && !prefix) instrument(ref, into, "scalar:");
}

/** Each op's time and calls per unit (n units), and its share of `wall` where given. */
function printOps(acc: OpTimes, n: number, unit: string, wall?: number): void {
  for (const [op, a] of [...acc].sort((x, y) => y[1].ms - x[1].ms)) {
    const share = wall ? `${((100 * a.ms) / wall).toFixed(1).padStart(5)}%` : "";
    console.log(`  ${op.padEnd(22)} ${(a.ms / n).toFixed(3).padStart(8)} ms/${unit} ${share}  ${(a.calls / n).toFixed(0).padStart(5)} calls/${unit}`);
  }
}

/** The prompt's forward (per-op time per prompt token) and the decode steps after it (per token). */
export async function profileOps(path: string, opts: { backend?: BackendName; prompt?: number; decode?: number; threads?: number } = {}): Promise<void> {
  const prompt = opts.prompt ?? 64, decode = opts.decode ?? 32;
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: prompt + decode + 16, expertIo: "resident", backend: opts.backend ?? "native", threads: opts.threads ?? 2 }));
  const s = new Session(lm);
  const pre: OpTimes = new Map(), dec: OpTimes = new Map();
  let phase: OpTimes | undefined = pre;
  instrument(lm.backend, () => phase);
  try {
    const ids = Array.from({ length: prompt }, (_, i) => 1000 + ((i * 7919) % 90_000));
    let steps = 0;
    const t0 = performance.now();
    let t1 = 0;
    for await (const _ of s.generate(ids, { maxTokens: decode + 1, sampling: { temperature: 0 }, stopAtEog: false })) {
      if (steps++ === 0) {
        phase = dec;
        t1 = performance.now();
      }
    }
    const prefill = t1 - t0, wall = performance.now() - t1, n = steps - 1;
    const total = (acc: OpTimes) => [...acc.values()].filter((_, i) => ![...acc.keys()][i].startsWith("scalar:")).reduce((a, b) => a + b.ms, 0);
    const head = `${path} (${lm.backend.name}, ${opts.threads ?? 2} threads)`;
    console.log(`${head}: prefill of ${prompt} tokens ${prefill.toFixed(0)} ms (${((prompt * 1000) / prefill).toFixed(1)} tok/s), ops ${(total(pre) / prompt).toFixed(2)} ms/prompt token`);
    printOps(pre, prompt, "ptok", prefill);
    console.log(`${head}: ${n} decode steps after ${prompt} prompt tokens, ${(wall / n).toFixed(2)} ms/token (${((n * 1000) / wall).toFixed(1)} tok/s), ops ${(total(dec) / n).toFixed(2)} ms/token`);
    printOps(dec, n, "token", wall);
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
  // gpt-oss-20b itself (64 heads / 8 kv of 64, SWA 128, 32 experts of 2880, MXFP4 experts, the Qwen3 vocabulary) cut to 2 layers: one sliding, one full.
  oss: { preset: "gpt-oss-20b", file: "oss20b-2l-q8_0-mxfp4.gguf", expertType: "MXFP4", hp: { nLayer: 2, swa: [true, false] } },
} as const;

export async function smallModel(which: keyof typeof SMALL_MODELS): Promise<string> {
  const m: { preset: string; file: string; hp: Record<string, unknown>; expertType?: string } = SMALL_MODELS[which];
  return benchModel({ preset: m.preset as never, type: "Q8_0", expertType: m.expertType, seed: 1, hp: m.hp, routing: { kind: "realistic", skew: 1, locality: 0.5 }, expertSynthesis: "direct" }, m.file);
}

export async function benchOps(only?: string): Promise<void> {
  for (const which of Object.keys(SMALL_MODELS) as (keyof typeof SMALL_MODELS)[]) {
    if (only !== which && (only || which === "oss")) continue; // the gpt-oss model (1.8 GB) only when asked
    await profileOps(await smallModel(which));
    if (which === "oss") await pairedOss(await smallModel(which));
  }
  if (only === "oss-wasm") await profileOssWasm();
}

/**
 * gpt-oss paired in one process: the backend as it stands (B) against its dispatch before the gpt-oss kernels (A:
 * attention with sinks or a window, swigluOai and addRows handed to the scalar reference), ABBA rounds over one
 * loaded model, each run a fresh cache: the prompt's forward, then `decode` single-token forwards, both timed, and
 * the decode steps' per-op times of each side.
 */
async function pairedOss(path: string, opts: { backend?: BackendName; threads?: number; prompt?: number; decode?: number; rounds?: number } = {}): Promise<void> {
  const prompt = opts.prompt ?? 32, decode = opts.decode ?? 24, rounds = opts.rounds ?? 3, threads = opts.threads ?? 2;
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: prompt + decode + 16, expertIo: "resident", backend: opts.backend ?? "native", threads }));
  const be = lm.backend as unknown as Record<string, (...a: unknown[]) => unknown> & { ref: Record<string, (...a: unknown[]) => unknown> };
  let before = false;
  for (const op of ["attention", "swigluOai", "addRows"]) {
    const own = be[op], ref = be.ref[op];
    be[op] = (...a: unknown[]) => {
      const p = a[4] as { sinks?: unknown; window?: number };
      const gptOssOp = op !== "attention" || p.sinks !== undefined || p.window !== undefined;
      return before && gptOssOp ? ref.apply(be.ref, a) : own.apply(be, a);
    };
  }
  const ops: Record<"A" | "B", OpTimes> = { A: new Map(), B: new Map() };
  let counting: OpTimes | undefined;
  instrument(lm.backend, () => counting);
  const run = async (into?: OpTimes): Promise<{ prefill: number; decode: number }> => {
    const cache = lm.model.makeCache(prompt + decode + 16);
    try {
      const t0 = performance.now();
      await lm.model.forward(Int32Array.from({ length: prompt }, (_, i) => 1000 + ((i * 7919) % 90_000)), cache, { logits: "last" });
      const t1 = performance.now();
      counting = into;
      for (let i = 0; i < decode; i++) await lm.model.forward(Int32Array.of(2000 + i), cache, { logits: "last" });
      counting = undefined;
      return { prefill: (prompt * 1000) / (t1 - t0), decode: (decode * 1000) / (performance.now() - t1) };
    } finally {
      cache.free();
    }
  };
  try {
    await run(); // warm-up
    const tps: Record<"A" | "B", { prefill: number; decode: number }[]> = { A: [], B: [] };
    for (let r = 0; r < rounds; r++)
      for (const m of ["A", "B", "B", "A"] as const) {
        before = m === "A";
        tps[m].push(await run(ops[m]));
      }
    const med = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)];
    const fmt = (x: number[]) => `median ${med(x).toFixed(2)} tok/s [${x.map((v) => v.toFixed(2)).join(" ")}]`;
    console.log(`${path} (${lm.backend.name}, ${threads} threads), ${prompt} prompt tokens then ${decode} decode steps, ABBA x${rounds}:`);
    for (const phase of ["prefill", "decode"] as const) {
      const a = tps.A.map((x) => x[phase]), b = tps.B.map((x) => x[phase]), ratios = b.map((v, i) => v / a[i]);
      console.log(`  ${phase} A (sinks/window attention, swigluOai, addRows on the scalar reference): ${fmt(a)}`);
      console.log(`  ${phase} B (in the ${lm.backend.name} kernels): ${fmt(b)}`);
      console.log(`  ${phase} B/A per pair: median ${med(ratios).toFixed(3)} [${ratios.map((v) => v.toFixed(3)).join(" ")}]`);
    }
    const n = 2 * rounds * decode;
    for (const m of ["A", "B"] as const) {
      console.log(`  decode ops, ${m}:`);
      printOps(ops[m], n, "token");
    }
  } finally {
    await lm.close();
  }
}

/** --only=oss-wasm: the gpt-oss profile on the wasm kernels (2 threads), few steps: its Q8_0 output head is slow on them. */
export async function profileOssWasm(): Promise<void> {
  await profileOps(await smallModel("oss"), { backend: "wasm", prompt: 16, decode: 4 });
}
