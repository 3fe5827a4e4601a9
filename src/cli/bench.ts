// moestream bench: llama-bench's two figures for one model — prompt processing (pp) and token generation
// (tg) tokens/s, mean ± sd over repetitions — with the expert cache's behaviour during them.
import type { Command } from "commander";
import { cpus } from "node:os";
import { ENGINE_OPTIONS } from "../engine/config.js";
import { Session } from "../engine/session.js";
import { addOptions, engineConfig, intOption, loadInProcess } from "./common.js";
import { formatStats } from "./stats.js";

const meanSd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${m.toFixed(2)} ± ${sd.toFixed(2)}`;
};

export function registerBench(program: Command): void {
  const cmd = program
    .command("bench")
    .description("measure prompt processing and generation speed of a model (like llama-bench)")
    .requiredOption("-m, --model <file>", "model GGUF file or packed directory")
    .option("-p, --n-prompt <n>", "prompt tokens (pp)", "512")
    .option("-n, --n-gen <n>", "generated tokens (tg)", "128")
    .option("-r, --repetitions <n>", "runs of each, reported as mean ± sd", "3")
    .option("--json", "print one JSON object instead of the table")
    .addHelpText("after", "\nExamples:\n  moestream bench -m model.gguf\n  moestream bench -m model.moe -p 128 -n 64 --expert-io stream --mem-budget 8G");
  addOptions(cmd, ENGINE_OPTIONS);
  cmd.action(async (opts) => {
    const nPrompt = intOption(opts.nPrompt, "--n-prompt", 1);
    const nGen = intOption(opts.nGen, "--n-gen", 0);
    const reps = intOption(opts.repetitions, "--repetitions", 1);
    const cfg = engineConfig({ ...opts, ctxSize: opts.ctxSize ?? String(nPrompt + nGen + 1) });
    const lm = await loadInProcess(opts.model, cfg);
    try {
      const session = new Session(lm);
      // Ordinary (non-special) token ids spread over the vocabulary, the same every run.
      const vocab = Math.min(lm.tokenizer.vocabSize, 100_000);
      const prompt = Array.from({ length: nPrompt }, (_, i) => (1 + i * 7919) % vocab);
      const pp: number[] = [];
      const tg: number[] = [];
      for (let r = 0; r < reps; r++) {
        session.reset();
        const gen = session.generate(prompt, { maxTokens: nGen + 1, sampling: { temperature: 0 }, stopAtEog: false });
        for await (const _ of gen);
        const st = session.lastStats!;
        pp.push((st.promptTokens * 1000) / st.promptMs);
        if (nGen > 0) tg.push((nGen * 1000) / st.decodeMs); // nGen forwards after the prompt's
      }
      const out = {
        model: lm.path, backend: lm.backend.name, threads: cfg.threads || cpus().length, expertIO: lm.expertIO.mode,
        pp: { tokens: nPrompt, tokPerSec: pp }, tg: { tokens: nGen, tokPerSec: tg }, lastRun: session.lastStats,
      };
      if (opts.json) process.stdout.write(JSON.stringify(out) + "\n");
      else {
        process.stdout.write(`model ${lm.path} | backend ${out.backend}, ${out.threads} threads | experts ${out.expertIO}\n`);
        process.stdout.write(`pp${nPrompt}: ${meanSd(pp)} tok/s\n`);
        if (nGen > 0) process.stdout.write(`tg${nGen}: ${meanSd(tg)} tok/s\n`);
        process.stderr.write(`last run: ${formatStats(session.lastStats!)}\n`);
      }
      session.free();
    } finally {
      await lm.close();
    }
  });
}
