// Benchmark models: generated once into .cache/bench and reused.
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { generateModel, type GenerateOptions } from "../src/gen/generate.js";

export async function benchModel(opts: Omit<GenerateOptions, "onProgress">, name: string): Promise<string> {
  const dir = join(".cache", "bench");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  if (existsSync(path)) return path;
  console.error(`generating ${path} (once; cached) ...`);
  const t0 = performance.now();
  let last = 0;
  await generateModel(path + ".part", {
    ...opts,
    onProgress(d, t) {
      const pct = Math.floor((100 * d) / t);
      if (pct >= last + 10) {
        last = pct;
        console.error(`  ${pct}%`);
      }
    },
  });
  renameSync(path + ".part", path);
  console.error(`  done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return path;
}
