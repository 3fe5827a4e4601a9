// moestream run: one prompt in, generated text out (or one JSON object with --json).
import type { Command } from "commander";
import { readFileSync, writeFileSync } from "node:fs";
import { SAMPLING_OPTIONS, ENGINE_OPTIONS } from "../engine/config.js";
import { PREFILL_BATCH } from "../engine/session.js";
import { renderChat } from "../engine/chat-template.js";
import { checkConstraint, ConstraintError, type OutputConstraint } from "../engine/constraint.js";
import { UsageError } from "../util/errors.js";
import { addOptions, engineConfig, intOption, loadWithProgress, samplingOptions } from "./common.js";
import { formatStats } from "./stats.js";
import { prefillBar } from "./progress.js";

export function registerRun(program: Command): void {
  const cmd = program
    .command("run")
    .description("generate text from a prompt")
    .requiredOption("-m, --model <file>", "model GGUF file")
    .option("-p, --prompt <text>", "prompt, used as raw text unless --chat; default: -f, else text piped on stdin")
    .option("-f, --file <file>", "read the prompt from FILE ('-' = stdin); one trailing newline is dropped, as llama.cpp's -f does")
    .option("-n, --n-predict <n>", "tokens to generate", "64")
    .option("--chat", "wrap the prompt in the model's chat template as a user message")
    .option("--no-think", "with --chat: disable the thinking block (Qwen3 enable_thinking=false)")
    .option("--ignore-eos", "keep generating past end-of-generation tokens")
    .option("--json", "print one JSON object: prompt_tokens, tokens, top_logits, text, stats")
    .option("--json-schema <file>", "constrain the output to the JSON Schema in FILE (README: structured output)")
    .option("--grammar-file <file>", "constrain the output to the GBNF grammar in FILE")
    .option("--stats-json [file]", "write the full generation stats as JSON (to FILE, or stderr)")
    .addHelpText("after", "\nExamples:\n  moestream run -m model.gguf -p 'Once upon a time' -n 32 --temp 0\n  moestream run -m model.gguf -p 'Hello' --chat --json\n  moestream run -m model.gguf -f prompt.txt\n  echo 'Hello' | moestream run -m model.gguf --chat");
  addOptions(cmd, SAMPLING_OPTIONS);
  addOptions(cmd, ENGINE_OPTIONS);
  cmd.action(async (opts) => {
    const prompt = promptOption(opts.prompt, opts.file, process.stdin.isTTY === true);
    const n = intOption(opts.nPredict, "--n-predict", 0);
    const constraint = await constraintOption(opts.jsonSchema, opts.grammarFile);
    const sampling = samplingOptions(opts); // every flag is checked before the model loads
    const lm = await loadWithProgress(opts.model, engineConfig(opts));
    try {
      const text = opts.chat
        ? renderChat(lm.tokenizer.chatTemplate ?? undefined, [{ role: "user", content: prompt }], { enableThinking: opts.think })
        : prompt;
      const promptTokens = lm.tokenizer.encode(text, { parseSpecial: true });
      const session = lm.createSession();
      const tokens: number[] = [];
      const top: [number, number][][] = [];
      const bar = prefillBar(promptTokens.length, PREFILL_BATCH);
      const gen = session.generate(promptTokens, { maxTokens: n, sampling, stopAtEog: !opts.ignoreEos, constraint, topLogits: opts.json ? 5 : undefined, onPrefill: bar.onPrefill });
      for await (const step of gen) {
        bar.stop();
        tokens.push(step.token);
        if (step.topLogits) top.push(step.topLogits);
        if (!opts.json) process.stdout.write(step.text);
      }
      const stats = session.lastStats!;
      if (opts.json) {
        const out = { prompt_tokens: promptTokens, tokens, top_logits: top, text: lm.tokenizer.decode(tokens), stats };
        process.stdout.write(JSON.stringify(out) + "\n");
      } else {
        process.stdout.write("\n");
        process.stderr.write(formatStats(stats) + "\n");
      }
      if (opts.statsJson) {
        const json = JSON.stringify({ ...stats, expertCache: { mode: lm.expertIO.mode, bytes: lm.expertIO.cacheBytes, slots: lm.expertSlots, reason: lm.expertIO.reason, perExpert: lm.expertIO.perExpert, gpu: lm.expertIO.gpu } }) + "\n";
        if (opts.statsJson === true) process.stderr.write(json);
        else writeFileSync(opts.statsJson, json);
      }
    } finally {
      await lm.close();
    }
  });
}

/** The prompt: -p, -f FILE ('-' = stdin), or stdin when it is not a terminal; read before the model loads. */
function promptOption(text: string | undefined, file: string | undefined, stdinIsTTY: boolean): string {
  if (text !== undefined && file !== undefined) throw new UsageError("bad_option", "-p/--prompt and -f/--file cannot be combined: give the prompt one way");
  if (text !== undefined) return text;
  if (file === undefined && stdinIsTTY) throw new UsageError("bad_option", "no prompt: give -p TEXT, -f FILE, or pipe the prompt on stdin");
  const from = file === undefined || file === "-" ? "stdin" : file;
  let read: string;
  try {
    read = readFileSync(from === "stdin" ? 0 : from, "utf8");
  } catch (e) {
    throw new UsageError("bad_option", `${from === "stdin" ? "reading the prompt from stdin" : `-f ${from}`}: ${(e as Error).message}`);
  }
  const prompt = read.endsWith("\n") ? read.slice(0, -1) : read;
  if (!prompt) throw new UsageError("bad_option", `the prompt from ${from === "stdin" ? "stdin" : `-f ${from}`} is empty`);
  return prompt;
}

/** --json-schema / --grammar-file, read and checked before the model loads (a UsageError names the flag and file). */
async function constraintOption(schemaFile: string | undefined, grammarFile: string | undefined): Promise<OutputConstraint | undefined> {
  if (schemaFile && grammarFile) throw new UsageError("bad_option", "--json-schema and --grammar-file cannot be combined");
  const file = schemaFile ?? grammarFile;
  if (!file) return undefined;
  const flag = schemaFile ? "--json-schema" : "--grammar-file";
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError("bad_option", `${flag} ${file}: ${(e as Error).message}`);
  }
  let c: OutputConstraint;
  if (schemaFile) {
    let schema: unknown;
    try {
      schema = JSON.parse(text);
    } catch (e) {
      throw new UsageError("bad_option", `${flag} ${file}: not JSON: ${(e as Error).message}`);
    }
    c = { type: "json_schema", schema: schema as Record<string, unknown> };
  } else c = { type: "grammar", grammar: text };
  try {
    await checkConstraint(c);
  } catch (e) {
    if (e instanceof ConstraintError) throw new UsageError("bad_option", `${flag} ${file}: ${e.field.replace(/^schema\.?/, "") || "the schema"}: ${e.reason}`);
    throw e;
  }
  return c;
}
