// moestream demo: generate (once, cached) a small model and run a short generation.
import type { Command } from "commander";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { defaultEngineConfig } from "../engine/config.js";
import { Session } from "../engine/session.js";
import { generateModel } from "../gen/generate.js";
import { loadWithProgress } from "./common.js";
import { progressBar } from "./progress.js";
import { formatStats } from "./stats.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("generate a small synthetic MoE model (cached in .cache/) and stream a short generation")
    .option("--dir <dir>", "cache directory", ".cache")
    .option("-n, --n-predict <n>", "tokens to generate", "24")
    .action(async (opts) => {
      mkdirSync(opts.dir, { recursive: true });
      const path = join(opts.dir, "demo-tiny-q8_0.gguf");
      if (!existsSync(path)) {
        const bar = progressBar("generating tiny model", "values");
        const m = await generateModel(path, { preset: "tiny", type: "Q8_0", seed: 7, routing: { kind: "realistic", skew: 1, locality: 0.5 }, peaked: 0 });
        bar.stop();
        console.error(`generated ${path} (${(m.bytes / 2 ** 20).toFixed(1)} MiB, random weights: expect word salad)`);
      }
      const lm = await loadWithProgress(path, defaultEngineConfig());
      try {
        const hp = lm.model.hp;
        console.error(`model: ${lm.arch}, ${hp.nLayer} layers, ${hp.nExpert} experts (top-${hp.nExpertUsed}), hidden ${hp.nEmbd}, backend ${lm.backend.name}`);
        const prompt = "The quick brown fox";
        const tokens = lm.tokenizer.encode(prompt);
        process.stdout.write(prompt);
        const session = new Session(lm, 512);
        for await (const step of session.generate(tokens, { maxTokens: Number(opts.nPredict), sampling: { temperature: 0.8, seed: 42 } })) {
          process.stdout.write(step.text);
        }
        process.stdout.write("\n");
        console.error(formatStats(session.lastStats!));
      } finally {
        await lm.close();
      }
    });
}
