// moestream CLI entry: one file per command; errors become one clear line on stderr.
import { Command, CommanderError } from "commander";
import { MoestreamError } from "../util/errors.js";
import { registerBench } from "./bench.js";
import { registerChat } from "./chat.js";
import { registerDemo } from "./demo.js";
import { registerDoctor } from "./doctor.js";
import { registerGen } from "./gen.js";
import { registerInspect } from "./inspect.js";
import { registerPack } from "./pack.js";
import { registerPull } from "./pull.js";
import { registerRun } from "./run.js";
import { registerServe } from "./serve.js";
import { registerTraceCommands } from "./trace.js";

const EXIT = { usage: 2, model: 3, network: 4, internal: 1 } as const;

const program = new Command()
  .name("moestream")
  .description("Run Mixture-of-Experts models larger than memory, streaming experts from disk.")
  .option("--verbose", "print stack traces on errors")
  // Usage errors (unknown flag, missing value) throw instead of exiting 1: they exit 2 like ours.
  .exitOverride()
  .showHelpAfterError("(run with --help for usage)");
registerDemo(program);
registerRun(program);
registerChat(program);
registerServe(program);
registerInspect(program);
registerGen(program);
registerPack(program);
registerPull(program);
registerBench(program);
registerDoctor(program);
registerTraceCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Help and --version "fail" with exit code 0; commander has already printed its message.
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : EXIT.usage);
  const verbose = program.opts().verbose || process.argv.includes("--verbose");
  if (e instanceof MoestreamError) {
    process.stderr.write(`moestream: error: ${e.message}\n`);
    if (verbose && e.stack) process.stderr.write(e.stack + "\n");
    process.exit(e.name === "UsageError" ? EXIT.usage : e.name === "NetworkError" ? EXIT.network : EXIT.model);
  }
  const err = e as Error;
  process.stderr.write(`moestream: ${err?.message ?? String(e)}\n`);
  if (verbose && err?.stack) process.stderr.write(err.stack + "\n");
  process.exit(EXIT.internal);
}
