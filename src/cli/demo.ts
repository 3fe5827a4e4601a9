// moestream demo: generate (once, cached) a small model, pack it, and stream its experts from disk under
// a cache smaller than the experts, printing text, tokens/s and the expert-cache stats line.
import type { Command } from "commander";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { defaultEngineConfig } from "../engine/config.js";
import { packModel, packedExpertBytes } from "../engine/pack.js";
import { generateModel } from "../gen/generate.js";
import { loadWithProgress } from "./common.js";
import { progressBar } from "./progress.js";
import { formatStats } from "./stats.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("generate a small synthetic MoE model (cached in .cache/), pack it, and stream its experts under a small cache")
    .option("--dir <dir>", "cache directory", ".cache")
    .option("-n, --n-predict <n>", "tokens to generate", "24")
    .addHelpText("after", "\nExamples:\n  moestream demo\n  moestream demo --dir /tmp/moestream-demo -n 64")
    .action(async (opts) => {
      mkdirSync(opts.dir, { recursive: true });
      const gguf = join(opts.dir, "demo-tiny-q8_0.gguf");
      const packed = join(opts.dir, "demo-tiny-q8_0.moe");
      if (!existsSync(gguf)) {
        const bar = progressBar("generating tiny model", "values");
        const m = await generateModel(gguf, { preset: "tiny", type: "Q8_0", seed: 7, routing: { kind: "realistic", skew: 1, locality: 0.5 }, onProgress: (d, t) => bar.update(d, t) });
        bar.stop();
        console.error(`generated ${gguf} (${(m.bytes / 2 ** 20).toFixed(1)} MiB, random weights: expect word salad)`);
      }
      if (!existsSync(packed)) {
        const r = await packModel(gguf, packed, { verify: true });
        console.error(`packed ${packed}: experts ${(r.expertBytes / 2 ** 20).toFixed(1)} MiB in ${r.manifest.layers.length} layer files`);
      }
      // A quarter of the experts' bytes: most of the model's experts live on disk, not in memory.
      const cache = Math.ceil((await packedExpertBytes(packed)) / 4);
      const lm = await loadWithProgress(packed, defaultEngineConfig({ expertIo: "stream", expertCache: cache }));
      try {
        const info = lm.info;
        console.error(`model: ${lm.arch}, ${info.nLayer} layers, ${info.nExpert} experts (top-${info.nExpertUsed}), hidden ${info.nEmbd}, backend ${lm.backend}`);
        const prompt = "The quick brown fox";
        const tokens = lm.tokenizer.encode(prompt);
        process.stdout.write(prompt);
        const session = lm.createSession(512);
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
