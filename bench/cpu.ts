// npm run bench -- cpu: resident decode and prefill, moestream (native, wasm) vs llama.cpp (node-llama-cpp,
// same GGUF, same threads, same token ids), then the per-kernel GB/s table against memory bandwidth.
// Models: a3b-8L and a3b presets (realistic routing) in Q8_0 and Q4_K where they fit in RAM resident, and a3b-8L in
// three mixes (gen/mixes.ts): Q4_K_M-like, Q2_K with IQ3_XXS expert downs, IQ2_XXS (bar: >= 1.0x llama.cpp decode,
// >= 0.8x prefill on each), and gpt-oss-20b's shapes with MXFP4 experts (`--only=gpt-oss`).
import { totalmem } from "node:os";
import { statSync } from "node:fs";
import { getLlama } from "node-llama-cpp";
import type { BackendName } from "../src/engine/config.js";
import { benchKernels } from "./cpu-kernels.js";
import { engineFigures, promptIds, type Figures } from "./engine-figures.js";
import { benchModel } from "./models.js";

const THREADS = 2;
const DECODE = 64;
const PREFILLS = [128, 512];
// This VM is shared and noisy (single decode runs swing by 2x): decode is the best of several runs, per engine.
const DECODE_RUNS = 5;

const LAG_PREFILL = 4096;

async function llamaFigures(path: string): Promise<Figures> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
  const model = await llama.loadModel({ modelPath: path });
  try {
    const prefill: Record<number, number> = {};
    let ttftMs = NaN;
    let decode = NaN;
    for (const n of [...Array(DECODE_RUNS).fill(16), ...PREFILLS]) {
      const ctx = await model.createContext({ contextSize: 1024, batchSize: 512, threads: THREADS });
      try {
        const seq = ctx.getSequence();
        const ids = promptIds(n);
        const t0 = performance.now();
        let produced = 0;
        let t1 = 0;
        for await (const _t of seq.evaluate(ids as never, { temperature: 0 })) {
          if (produced++ === 0) t1 = performance.now();
          if (produced > (n === 16 ? DECODE : 0)) break;
        }
        const t2 = performance.now();
        if (n === 16) decode = Math.max(Number.isNaN(decode) ? 0 : decode, ((produced - 1) * 1000) / (t2 - t1));
        else prefill[n] = (n * 1000) / (t1 - t0);
        if (n === 128) ttftMs = t1 - t0;
      } finally {
        await ctx.dispose();
      }
    }
    return { decode, prefill, ttftMs };
  } finally {
    await model.dispose();
  }
}

const oursFigures = (path: string, backend: BackendName, opts: { decodeOnly?: boolean; hosted?: boolean } = {}): Promise<Figures> =>
  engineFigures(path, { backend, threads: THREADS, decode: DECODE, decodeRuns: DECODE_RUNS, prefills: PREFILLS, lagPrefill: LAG_PREFILL, ...opts });

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");

export async function benchCpu(only?: string): Promise<void> {
  const realistic = { kind: "realistic", skew: 1, locality: 0.5 } as const;
  const models = [
    { label: "a3b-8L Q8_0", preset: "a3b-8L", type: "Q8_0", file: "a3b-8L-q8_0.gguf", wasm: true },
    { label: "a3b-8L Q4_K", preset: "a3b-8L", type: "Q4_K", file: "a3b-8L-q4_k.gguf", wasm: true },
    { label: "a3b-8L Q4_K_M-like mix", preset: "a3b-8L", type: "Q4_K", mix: "q4_k_m", file: "a3b-8L-mix-q4_k_m.gguf", wasm: false },
    { label: "a3b-8L Q2_K/IQ3_XXS mix", preset: "a3b-8L", type: "Q2_K", mix: "q2_k", file: "a3b-8L-mix-q2_k.gguf", wasm: false },
    { label: "a3b-8L IQ2_XXS mix", preset: "a3b-8L", type: "IQ2_XXS", mix: "iq2_xxs", file: "a3b-8L-mix-iq2_xxs.gguf", wasm: false },
    // gpt-oss-20b's shapes with MXFP4 experts and Q8_0 elsewhere, as ggml-org's gpt-oss-20b GGUF (12.1 GB) stores them.
    { label: "gpt-oss-20b MXFP4", preset: "gpt-oss-20b", type: "Q8_0", expertType: "MXFP4", file: "gpt-oss-20b-mxfp4.gguf", wasm: false },
    { label: "a3b Q4_K", preset: "a3b", type: "Q4_K", file: "a3b-q4_k.gguf", wasm: false },
    { label: "a3b Q8_0", preset: "a3b", type: "Q8_0", file: "a3b-q8_0.gguf", wasm: false },
  ] as const;
  console.log(`resident, ${THREADS} threads; decode after a 16-token prompt (${DECODE} tokens, best of ${DECODE_RUNS} runs), prefill of ${PREFILLS.join(" / ")} tokens, TTFT after 128; each engine best of 2 alternated loads`);
  for (const m of models) {
    if (only && !m.file.includes(only)) continue;
    if (m.label === "a3b Q8_0") {
      // 48 layers x 128 experts x 3 x 2048 x 768 x 1.0625 B = 30.8 GB of experts: more than this machine's RAM.
      console.log(`\n${m.label}: skipped: ~31 GB of weights cannot be resident in ${(totalmem() / 2 ** 30).toFixed(1)} GiB of RAM (that is the streaming bench's job)`);
      continue;
    }
    const mix = "mix" in m ? m.mix : undefined, expertType = "expertType" in m ? m.expertType : undefined;
    const path = await benchModel({ preset: m.preset, type: m.type, expertType, mix, seed: 1, routing: realistic, expertSynthesis: "direct" }, m.file);
    console.log(`\n${m.label} (${(statSync(path).size / 1e9).toFixed(1)} GB)`);
    // llama.cpp, the engine in this thread and on its host (a worker), alternated twice: best of each (a loaded VM
    // then slows both engines alike).
    const best = (a: Figures, b: Figures): Figures => ({
      decode: Math.max(a.decode, b.decode), ttftMs: Math.min(a.ttftMs, b.ttftMs), lag: b.lag ?? a.lag,
      prefill: Object.fromEntries(PREFILLS.map((n) => [n, Math.max(a.prefill[n], b.prefill[n])])),
    });
    let l = await llamaFigures(path);
    let inThread = await oursFigures(path, "cpu");
    let hosted = await oursFigures(path, "cpu", { hosted: true });
    l = best(l, await llamaFigures(path));
    inThread = best(inThread, await oursFigures(path, "cpu"));
    hosted = best(hosted, await oursFigures(path, "cpu", { hosted: true }));
    const rows: [string, Figures][] = [["llama.cpp", l], ["moestream cpu (native)", inThread], ["moestream cpu, hosted", hosted]];
    if (m.wasm) rows.push(["moestream wasm", await oursFigures(path, "wasm", { decodeOnly: true })]);
    console.log(`  ${"engine".padEnd(26)} ${"decode tok/s".padStart(13)} ${PREFILLS.map((n) => `pp${n} tok/s`.padStart(12)).join(" ")} ${"TTFT ms".padStart(9)}`);
    for (const [name, r] of rows) {
      const ratio = (a: number, b: number) => (name === "llama.cpp" ? "" : ` (${f(a / b)}x)`);
      console.log(`  ${name.padEnd(26)} ${(f(r.decode) + ratio(r.decode, l.decode)).padStart(13)} ${PREFILLS.map((n) => (f(r.prefill[n] ?? NaN, 1) + (r.prefill[n] ? ratio(r.prefill[n], l.prefill[n]) : "")).padStart(12)).join(" ")} ${f(r.ttftMs, 0).padStart(9)}`);
    }
    const h = hosted.lag!;
    console.log(`  hosted vs in-thread: decode ${f(hosted.decode / inThread.decode)}x, pp512 ${f(hosted.prefill[512] / inThread.prefill[512])}x (best of 2 alternated loads each)`);
    console.log(`  event-loop lag, hosted (10 ms timer, p99 / worst ms): decode ${f(h.decode[0], 1)} / ${f(h.decode[1], 1)}, ${LAG_PREFILL}-token prefill ${f(h.prefill![0], 1)} / ${f(h.prefill![1], 1)} (bar: p99 < 20)`);
  }
  if (only) return;
  console.log("\nper-kernel GB/s of weights vs memory read bandwidth, same run:");
  await benchKernels();
}
