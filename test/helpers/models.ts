// Synthetic test models, generated once per machine into the OS temp dir and reused by every test file.
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateModel, type GenerateOptions } from "../../src/gen/generate.js";

const DIR = join(tmpdir(), "moestream-test-models-v4");

export async function testModel(opts: Omit<GenerateOptions, "preset" | "onProgress"> & { preset?: GenerateOptions["preset"] }): Promise<string> {
  const preset = opts.preset ?? "tiny";
  const r = opts.routing ?? { kind: "uniform" };
  const key = [preset, opts.type, opts.seed ?? 1, r.kind === "uniform" ? "u" : r.kind === "realistic" ? `r${r.skew}-${r.locality}` : `rl${r.skew}-${r.skewSpread}-${r.locality}-${r.recency}`, `p${opts.peaked ?? 0}`, opts.expertSynthesis ?? "q"].join("-");
  const path = join(DIR, `${key}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(DIR, { recursive: true });
  // Unique name first: parallel test files may generate the same model at once.
  const tmp = `${path}.${process.pid}`;
  await generateModel(tmp, { ...opts, preset });
  renameSync(tmp, path);
  return path;
}
