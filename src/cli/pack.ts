// moestream pack: rewrite a GGUF's experts into per-layer files, one aligned record per expert.
import type { Command } from "commander";
import { basename, dirname, join } from "node:path";
import { packModel, verifyPack } from "../engine/pack.js";
import { progressBar } from "./progress.js";

/** MODEL without .gguf, plus .moe, beside it. */
export function defaultPackDir(model: string): string {
  return join(dirname(model), basename(model).replace(/\.gguf$/i, "") + ".moe");
}

/** Pack with a progress bar and a summary line on stderr (pack, and pull --pack); returns the directory. */
export async function packWithProgress(model: string, out: string, opts: { verify?: boolean; overwrite?: boolean }): Promise<string> {
  const bar = progressBar("packing");
  const t0 = performance.now();
  try {
    const r = await packModel(model, out, { verify: opts.verify, overwrite: opts.overwrite, onProgress: (d, t) => bar.update(d, t) });
    bar.stop();
    const s = (performance.now() - t0) / 1000;
    process.stderr.write(`packed ${model} -> ${r.dir}: dense ${(r.denseBytes / 2 ** 20).toFixed(1)} MiB, experts ${(r.expertBytes / 2 ** 20).toFixed(1)} MiB in ${s.toFixed(1)} s${opts.verify ? " (verified)" : ""}\n`);
    return r.dir;
  } finally {
    bar.stop();
  }
}

export function registerPack(program: Command): void {
  program
    .command("pack <model>")
    .description("write a packed model directory: dense.gguf + experts/layer_NNN.bin (one read per expert)")
    .option("-o, --output <dir>", "output directory (default: MODEL without .gguf, plus .moe)")
    .option("--verify", "re-read every record and check its crc32c before the directory is put in place")
    .option("--overwrite", "replace an existing output directory")
    .addHelpText("after", "\nExamples:\n  moestream pack model.gguf -o model.moe\n  moestream run -m model.moe -p 'Hello' --expert-io stream --expert-cache 2G")
    .action(async (model: string, opts) => {
      await packWithProgress(model, opts.output ?? defaultPackDir(model), { verify: opts.verify, overwrite: opts.overwrite });
    });
  program
    .command("verify <dir>")
    .description("check every expert record of a packed model against its crc32c")
    .addHelpText("after", "\nExample:\n  moestream verify model.moe")
    .action(async (dir: string) => {
      const r = await verifyPack(dir);
      process.stderr.write(`${dir}: ${r.records} records, ${(r.bytes / 2 ** 20).toFixed(1)} MiB, all checksums match\n`);
    });
}
