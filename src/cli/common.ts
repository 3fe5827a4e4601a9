// Pieces shared by CLI commands: option tables turned into commander flags, model loading with a bar.
import { Command, Option } from "commander";
import { ENGINE_OPTIONS, SAMPLING_OPTIONS, resolveOptions, type EngineConfig, type OptionSpec, type SamplingOptions } from "../engine/config.js";
import { loadModel, type Model } from "../engine/model.js";
import { loadModel as loadEngineModel, type LoadedModel, type LoadProgress } from "../engine/load.js";
import { progressBar } from "./progress.js";
import { UsageError } from "../util/errors.js";

/** Add every option of a table to a command; values stay raw strings until resolveOptions parses them. */
export function addOptions(cmd: Command, table: Record<string, OptionSpec<unknown>>): Command {
  for (const [key, spec] of Object.entries(table)) {
    // The default in the help text: commander prints one only for a set value, and these stay unset so the
    // environment can still fill them.
    const shown = typeof spec.default === "boolean" ? (spec.default ? "on" : "off") : String(spec.default);
    const env = spec.env ? `, env ${spec.env}` : "";
    const opt = new Option(spec.flag, `${spec.help} (default: ${shown}${env})`);
    opt.attributeName = () => key;
    cmd.addOption(opt);
    // A switch that is on by default also gets its commander negation (--no-verify-experts = --verify-experts off).
    if (spec.default === true) {
      const no = new Option(`--no-${spec.flag.split(" ")[0].slice(2)}`, `same as ${spec.flag.split(" ")[0]} off`);
      no.attributeName = () => key;
      cmd.addOption(no);
    }
  }
  return cmd;
}

/** A command's integer flag: `flag` must be an integer >= min (and <= max when given), else a UsageError naming it. */
export function intOption(raw: unknown, flag: string, min: number, max?: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || (max !== undefined && n > max)) {
    const range = max === undefined ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new UsageError("bad_option", `${flag} must be an integer ${range}, got '${String(raw)}'`);
  }
  return n;
}

export function engineConfig(opts: Record<string, unknown>): EngineConfig {
  const cfg = resolveOptions(ENGINE_OPTIONS, opts, process.env);
  // Reads beyond libuv's pool only queue inside libuv (out of priority order): match its size, which the
  // launcher sets before the pool starts.
  const uv = Number(process.env.UV_THREADPOOL_SIZE);
  if (cfg.ioDepth === 0 && Number.isInteger(uv) && uv > 0) cfg.ioDepth = Math.min(uv, 1024);
  return cfg;
}

export function samplingOptions(opts: Record<string, unknown>): SamplingOptions {
  const s = resolveOptions(SAMPLING_OPTIONS, opts, process.env);
  return { ...s, seed: s.seed < 0 ? undefined : s.seed };
}

/** Load on an engine host (the CLI's event loop stays free for Ctrl-C, timers and HTTP), with a progress bar. */
export function loadWithProgress(path: string, cfg: EngineConfig): Promise<Model> {
  return withProgress((onProgress) => loadModel(path, { ...cfg, onProgress }));
}

/** Load in this thread (trace and bench drive the forward pass themselves), with a progress bar. */
export function loadInProcess(path: string, cfg: EngineConfig): Promise<LoadedModel> {
  return withProgress((onProgress) => loadEngineModel(path, cfg, onProgress));
}

async function withProgress<M extends Pick<Model, "contextReason" | "expertIO" | "warnings">>(load: (onProgress: LoadProgress) => Promise<M>): Promise<M> {
  const bar = progressBar("loading");
  let lm: M;
  try {
    lm = await load((d, t) => bar.update(d, t));
  } finally {
    bar.stop();
  }
  process.stderr.write(`moestream: ${lm.contextReason}\n`);
  process.stderr.write(`moestream: ${lm.expertIO.reason}\n`);
  for (const w of lm.warnings) process.stderr.write(`moestream: warning: ${w}\n`);
  return lm;
}
