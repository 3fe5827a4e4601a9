// moestream trace: run a prompt and a greedy decode, recording every layer's routing into a trace file
// that `moestream replay` turns into hit rates per eviction policy and cache size.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { ENGINE_OPTIONS, SAMPLING_OPTIONS } from "../engine/config.js";
import { renderChat } from "../engine/chat-template.js";
import { recordTrace } from "../engine/trace.js";
import { UsageError } from "../util/errors.js";
import { addOptions, engineConfig, intOption, loadInProcess, samplingOptions } from "./common.js";
import { parseRouting } from "./gen.js";
import { registerReplay } from "./replay.js";

/** `trace` and `replay`: main.ts registers both through this one call. */
export function registerTraceCommands(program: Command): void {
  registerTrace(program);
  registerReplay(program);
}

function registerTrace(program: Command): void {
  const cmd = program
    .command("trace")
    .description("record a run's expert routing (prompt, then decode) for `moestream replay`")
    .requiredOption("-m, --model <file>", "model GGUF file or packed directory")
    .option("-p, --prompt <text>", "prompt text")
    .option("-f, --file <file>", "read the prompt from a file")
    .option("-n, --n-predict <n>", "decode steps (one token per forward)", "64")
    .requiredOption("-o, --output <file>", "trace file to write (JSON lines)")
    .option("--follow <file>", "decode this text's tokens one per forward (teacher-forced) instead of sampling: natural text where a synthetic model's own output would loop")
    .option("--chat", "wrap the prompt in the model's chat template as a user message")
    .option("--stop-at-eos", "stop at an end-of-generation token (default: decode all n steps)")
    .option("--routing <kind>", "routing profile the model was generated with, recorded in the trace: uniform | realistic | real-like")
    .option("--skew <x>", "with --routing realistic: its popularity skew", "1")
    .option("--locality <x>", "with --routing realistic: its context locality", "0.5")
    .addHelpText("after", "\nSampling is greedy unless --temp is given.\n\nExamples:\n  moestream trace -m tiny.gguf -p 'Once upon a time' -n 300 -o tiny.trace --routing realistic\n  moestream trace -m a3b.gguf -f prompt.txt --follow story.txt -n 40 -o a3b.trace --expert-io stream --expert-cache 2G");
  addOptions(cmd, SAMPLING_OPTIONS);
  addOptions(cmd, ENGINE_OPTIONS);
  cmd.action(async (opts) => {
    const n = intOption(opts.nPredict, "--n-predict", 0);
    if ((opts.prompt === undefined) === (opts.file === undefined)) throw new UsageError("bad_option", "give exactly one of -p/--prompt and -f/--file");
    const raw: string = opts.prompt ?? readFileSync(opts.file, "utf8");
    const routing = opts.routing ? parseRouting(opts.routing, opts.skew, opts.locality) : null;
    const sampling = samplingOptions({ ...opts, temperature: opts.temperature ?? process.env.MOESTREAM_TEMP ?? "0" });
    const lm = await loadInProcess(opts.model, engineConfig(opts));
    try {
      const tok = lm.tokenizer;
      const text = opts.chat ? renderChat(tok.chatTemplate ?? undefined, [{ role: "user", content: raw }], {}) : raw;
      const prompt = tok.encode(text, { parseSpecial: true });
      if (prompt.length === 0) throw new UsageError("bad_option", "the prompt encodes to no tokens");
      const follow = opts.follow ? tok.encode(readFileSync(opts.follow, "utf8")) : undefined;
      if (follow && follow.length < n) throw new UsageError("bad_option", `--follow ${opts.follow} has ${follow.length} tokens, fewer than -n ${n}`);
      const how = follow ? `teacher-forced ${opts.follow}` : sampling.temperature === 0 ? "greedy" : `sampled ${JSON.stringify(sampling)}`;
      const note = `moestream trace: ${prompt.length} prompt tokens, ${n} decode steps ${how}, expert io ${lm.expertIO.mode}`;
      const { tokens, observed, calls, ms } = await recordTrace(lm, { output: opts.output, prompt, steps: n, follow, sampling, stopAtEos: opts.stopAtEos, routing, note });
      const rate = (p: { hits: number; misses: number }) => (p.hits + p.misses ? `${((100 * p.hits) / (p.hits + p.misses)).toFixed(1)}%` : "-");
      process.stderr.write(`moestream: ${prompt.length} prompt + ${tokens.length} decode tokens (${how}) in ${(ms / 1000).toFixed(1)} s` +
        (observed ? `; ${observed.policy} at ${observed.slots} slots hit prefill ${rate(observed.prefill)}, decode ${rate(observed.decode)}` : "") + "\n");
      process.stderr.write(`moestream: wrote ${calls} forward calls to ${opts.output}\n`);
    } finally {
      await lm.close();
    }
  });
}
