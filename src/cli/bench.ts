// moestream bench: llama-bench's two figures for one model — prompt processing (pp) and token generation
// (tg) tokens/s, mean ± sd over repetitions — with the expert cache's behaviour during them.
import type { Command } from "commander";
import { cpus } from "node:os";
import { ENGINE_OPTIONS } from "../engine/config.js";
import { forecastFor, prefillFor, probeMachine, readModelSource, type MachineProbe } from "../engine/doctor.js";
import { Session } from "../engine/session.js";
import { addOptions, engineConfig, intOption, loadInProcess } from "./common.js";
import { formatStats } from "./stats.js";

const meanSd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${m.toFixed(2)} ± ${sd.toFixed(2)}`;
};

/** The compute probes on both sides of a run, averaged type by type. */
function meanCompute(a: MachineProbe, b: MachineProbe): MachineProbe["compute"] {
  if (!a.compute || !b.compute) return a.compute;
  const mean = (x: Record<string, number>, y: Record<string, number> = {}) => Object.fromEntries(Object.entries(x).map(([t, g]) => [t, y[t] === undefined ? g : (g + y[t]) / 2]));
  const { dense, experts, attentionMs } = a.compute;
  const attn = attentionMs !== undefined && b.compute.attentionMs !== undefined ? (attentionMs + b.compute.attentionMs) / 2 : attentionMs;
  return {
    dense: { ...dense, gflops: mean(dense.gflops, b.compute.dense.gflops) }, ...(experts ? { experts: { ...experts, gflops: mean(experts.gflops, b.compute.experts?.gflops) } } : {}),
    ...(attn !== undefined ? { attentionMs: attn } : {}),
  };
}

export function registerBench(program: Command): void {
  const cmd = program
    .command("bench")
    .description("measure prompt processing and generation speed of a model (like llama-bench)")
    .requiredOption("-m, --model <file>", "model GGUF file or packed directory")
    .option("-p, --n-prompt <n>", "prompt tokens (pp)", "512")
    .option("-n, --n-gen <n>", "generated tokens (tg)", "128")
    .option("-r, --repetitions <n>", "runs of each, reported as mean ± sd", "3")
    .option("--no-warmup", "skip the untimed warm-up run (the prompt and one token) before the repetitions, as llama-bench's --no-warmup")
    .option("--json", "print one JSON object instead of the table")
    .option("--forecast", "before each repetition, probe memory, disk and matmul throughput as doctor does and print doctor's decode and prefill forecasts beside the measurements")
    .addHelpText("after", "\nExamples:\n  moestream bench -m model.gguf\n  moestream bench -m model.moe -p 128 -n 64 --expert-io stream --mem-budget 8G");
  addOptions(cmd, ENGINE_OPTIONS);
  cmd.action(async (opts) => {
    const nPrompt = intOption(opts.nPrompt, "--n-prompt", 1);
    const nGen = intOption(opts.nGen, "--n-gen", 0);
    const reps = intOption(opts.repetitions, "--repetitions", 1);
    const cfg = engineConfig({ ...opts, ctxSize: opts.ctxSize ?? String(nPrompt + nGen + 1) });
    // The header is read before the load: the load itself must not be the process the probe measures beside.
    const source = opts.forecast ? await readModelSource(opts.model) : undefined;
    const lm = await loadInProcess(opts.model, cfg);
    try {
      const session = new Session(lm);
      // Ordinary (non-special) token ids spread over the vocabulary, the same every run.
      const vocab = Math.min(lm.tokenizer.vocabSize, 100_000);
      const prompt = Array.from({ length: nPrompt }, (_, i) => (1 + i * 7919) % vocab);
      const pp: number[] = [];
      const tg: number[] = [];
      const forecasts: { tokPerSec: number; low: number; high: number; memGBps: number; diskGBps?: number; hitRate: number; diskMiBPerToken: number; measured: { hitRate: number; diskMiBPerToken: number; ioWaitMsPerToken: number } }[] = [];
      // Probed between runs, and each run's forecast from the probes on both sides of it: forecast and measurement
      // share the machine's load. 128 MiB, well past any L3.
      const probeNow = () => probeMachine(source!, cfg, lm.expertIO.mode === "stream", { memProbeBytes: 128 * 2 ** 20, diskProbeBytes: 96 * 2 ** 20, promptTokens: nPrompt });
      const ppForecasts: { tokPerSec: number; low: number }[] = [];
      // As llama-bench: one untimed run of the prompt and a token first, so the first repetition does not pay for
      // what happens once (shader compiles, a GPU tier's first fill, host records repacked on first use).
      if (opts.warmup !== false) {
        for await (const _ of session.generate(prompt, { maxTokens: 2, sampling: { temperature: 0 }, stopAtEog: false }));
      }
      let before = source ? await probeNow() : undefined;
      for (let r = 0; r < reps; r++) {
        session.reset();
        const gen = session.generate(prompt, { maxTokens: nGen + 1, sampling: { temperature: 0 }, stopAtEog: false });
        for await (const _ of gen);
        const st = session.lastStats!;
        pp.push((st.promptTokens * 1000) / st.promptMs);
        if (nGen > 0) tg.push((nGen * 1000) / st.decodeMs); // nGen forwards after the prompt's
        if (source && before) {
          const after = await probeNow();
          const mean = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : (a + b) / 2);
          const memGBps = mean(before.memory!.gbps, after.memory!.gbps)!;
          const diskGBps = mean(before.disk?.gbps, after.disk?.gbps);
          const f = forecastFor(source, lm.expertIO, before, { memGBps, diskGBps });
          const pf = prefillFor(source, lm.expertIO, { ...before, compute: meanCompute(before, after) }, { memGBps, diskGBps, promptTokens: nPrompt });
          if (pf) ppForecasts.push({ tokPerSec: pf.tokPerSec.mid, low: pf.tokPerSec.low });
          const d = st.experts.decode;
          const perToken = (x: number) => x / Math.max(1, nGen);
          forecasts.push({
            tokPerSec: f.decode.mid, low: f.decode.low, high: f.decode.high, memGBps, ...(diskGBps !== undefined ? { diskGBps } : {}),
            hitRate: f.hitRate.mid, diskMiBPerToken: f.diskBytesPerToken.mid / 2 ** 20,
            measured: { hitRate: d.hits / Math.max(1, d.hits + d.misses), diskMiBPerToken: perToken(d.bytesRead + d.prefetchBytes) / 2 ** 20, ioWaitMsPerToken: perToken(d.ioWaitMs) },
          });
          before = after;
        }
      }
      const out = {
        model: lm.path, backend: lm.backend.name, threads: cfg.threads || cpus().length, expertIO: lm.expertIO.mode,
        pp: { tokens: nPrompt, tokPerSec: pp }, tg: { tokens: nGen, tokPerSec: tg }, lastRun: session.lastStats,
        ...(source ? { forecast: { tg: forecasts, pp: ppForecasts } } : {}),
      };
      if (opts.json) process.stdout.write(JSON.stringify(out) + "\n");
      else {
        process.stdout.write(`model ${lm.path} | backend ${out.backend}, ${out.threads} threads | experts ${out.expertIO}\n`);
        process.stdout.write(`pp${nPrompt}: ${meanSd(pp)} tok/s\n`);
        if (ppForecasts.length) {
          const ratios = pp.map((t, i) => t / ppForecasts[i].tokPerSec);
          process.stdout.write(`forecast pp${nPrompt}: ${meanSd(ppForecasts.map((f) => f.tokPerSec))} tok/s (doctor, matmul throughput probed before and after each run); measured / forecast ${ratios.map((x) => x.toFixed(2)).join(", ")}\n`);
        }
        if (nGen > 0) process.stdout.write(`tg${nGen}: ${meanSd(tg)} tok/s\n`);
        if (nGen > 0 && forecasts.length) {
          const ratios = tg.map((t, i) => t / forecasts[i].tokPerSec);
          process.stdout.write(`forecast tg: ${meanSd(forecasts.map((f) => f.tokPerSec))} tok/s (doctor, memory and disk probed before and after each run); measured / forecast ${ratios.map((x) => x.toFixed(2)).join(", ")}\n`);
        }
        process.stderr.write(`last run: ${formatStats(session.lastStats!)}\n`);
      }
      session.free();
    } finally {
      await lm.close();
    }
  });
}
