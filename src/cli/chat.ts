// moestream chat: an interactive conversation with line editing and history; replies stream as generated.
// Not a TTY: each stdin line is one user turn (commands too), replies go to stdout.
import type { Command } from "commander";
import { createInterface, type Interface } from "node:readline";
import { ENGINE_OPTIONS, SAMPLING_OPTIONS } from "../engine/config.js";
import type { GenerationStats } from "../engine/session.js";
import type { ChatMessage } from "../engine/chat-template.js";
import { MoestreamError, UsageError } from "../util/errors.js";
import { addOptions, engineConfig, intOption, loadWithProgress, samplingOptions } from "./common.js";
import { formatStats } from "./stats.js";
import { ReasoningSplitter } from "../engine/reasoning.js";

const HELP = "commands: /reset (forget the conversation), /save FILE, /load FILE, /stats, /think (show or hide the thinking), /help, /exit";

const DIM = "\x1b[2m";
const UNDIM = "\x1b[22m";

/**
 * What the chat prints of a reply: the <think> block dimmed (plain when not a terminal) or left out, then
 * the answer on its own line.
 */
export class ThinkPrinter {
  private readonly split: ReasoningSplitter;
  private thought = false;

  constructor(private readonly show: boolean, private readonly dim: boolean, open = false) {
    this.split = new ReasoningSplitter(open);
  }

  push(text: string): string {
    return this.print(this.split.push(text));
  }

  flush(): string {
    return this.print(this.split.flush());
  }

  private print(p: { reasoning: string; content: string }): string {
    let s = "";
    if (p.reasoning && this.show) {
      s += this.dim ? DIM + p.reasoning + UNDIM : p.reasoning;
      this.thought = true;
    }
    if (p.content) {
      if (this.thought) s += "\n";
      this.thought = false;
      s += p.content;
    }
    return s;
  }
}

export function registerChat(program: Command): void {
  const cmd = program
    .command("chat")
    .description("interactive chat with the model's chat template; replies stream as they are generated")
    .requiredOption("-m, --model <file>", "model GGUF file or packed directory")
    .option("-s, --system <text>", "system prompt")
    .option("-n, --n-predict <n>", "tokens per reply at most", "1024")
    .option("--no-think", "disable the thinking block (Qwen3 enable_thinking=false)")
    .option("--load <file>", "start from a saved session (/save FILE writes one)")
    .addHelpText("after", `\nIn the chat: ${HELP}. Ctrl-C stops a reply (the turn is not kept); Ctrl-D or /exit quits.\n\nExamples:\n  moestream chat -m model.gguf --temp 0.7\n  echo 'Hello' | moestream chat -m model.gguf -n 64`);
  addOptions(cmd, SAMPLING_OPTIONS);
  addOptions(cmd, ENGINE_OPTIONS);
  cmd.action(async (opts) => {
    const maxTokens = intOption(opts.nPredict, "--n-predict", 1);
    const sampling = samplingOptions(opts);
    const lm = await loadWithProgress(opts.model, engineConfig(opts));
    const session = lm.createSession();
    const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    const fresh = (): ChatMessage[] => (opts.system ? [{ role: "system", content: opts.system }] : []);
    let messages = fresh();
    const load = async (file: string) => {
      await session.load(file);
      const saved = (session.meta as { messages?: ChatMessage[] } | undefined)?.messages;
      messages = Array.isArray(saved) ? saved : fresh();
      return `loaded ${file}: ${messages.filter((m) => m.role !== "system").length} messages, ${session.tokens.length + session.pending.length} tokens`;
    };
    if (opts.load) process.stderr.write(`moestream: ${await load(opts.load)}\n`);

    const rl: Interface = createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty, historySize: 1000 });
    let generating: AbortController | undefined;
    rl.on("SIGINT", () => {
      if (generating) generating.abort();
      else rl.close();
    });
    const say = (line: string) => process.stderr.write(line + "\n");
    // Thinking is shown (dimmed) on a terminal; piped, only the answer, unless /think asks for it.
    let showThink = tty;

    const command = async (line: string): Promise<boolean> => {
      const [name, ...rest] = line.split(/\s+/);
      const arg = rest.join(" ");
      switch (name) {
        case "/exit":
        case "/quit":
          return false;
        case "/reset":
          session.reset();
          messages = fresh();
          say("conversation cleared");
          break;
        case "/save":
          if (!arg) throw new UsageError("bad_command", "/save needs a file name");
          session.meta = { messages };
          await session.save(arg);
          say(`saved ${session.tokens.length + session.pending.length} tokens to ${arg}`);
          break;
        case "/load":
          if (!arg) throw new UsageError("bad_command", "/load needs a file name");
          say(await load(arg));
          break;
        case "/stats":
          say(session.lastStats ? formatStats(session.lastStats) : "no reply yet");
          say(`context ${session.context.length}/${session.nCtx} tokens, expert cache ${lm.expertIO.mode} (${lm.expertSlots} slots)`);
          break;
        case "/think":
          showThink = !showThink;
          say(showThink ? "thinking shown" : "thinking hidden");
          break;
        case "/help":
          say(HELP);
          break;
        default:
          say(`unknown command ${name}; ${HELP}`);
      }
      return true;
    };

    // A turn joins the conversation only when its reply completes: a stopped or failed one leaves no trace.
    const reply = async (text: string) => {
      const turn: ChatMessage[] = [...messages, { role: "user", content: text }];
      generating = new AbortController();
      let out = "";
      let stats: GenerationStats | undefined;
      const printer = new ThinkPrinter(showThink, tty);
      try {
        const gen = session.chat(turn, { maxTokens, sampling, signal: generating.signal, template: { enableThinking: opts.think } });
        for (;;) {
          const step = await gen.next();
          if (step.done) {
            stats = step.value;
            break;
          }
          out += step.value.text;
          process.stdout.write(printer.push(step.value.text));
        }
        process.stdout.write(printer.flush());
      } finally {
        generating = undefined;
        if (out !== "" || stats) process.stdout.write("\n"); // a turn refused before its reply prints nothing
      }
      if (stats.finishReason === "abort") return say("(stopped)"); // not kept: the next message starts afresh
      const shift = stats.contextShift;
      if (shift) {
        turn.splice(turn[0]?.role === "system" ? 1 : 0, shift.droppedMessages);
        say(`moestream: context full (${session.nCtx} tokens): dropped the ${shift.droppedMessages} oldest messages (${shift.droppedTokens} tokens) to continue`);
      }
      messages = [...turn, { role: "assistant", content: out }];
    };

    if (tty) say(`chatting with ${lm.path}; ${HELP}`);
    rl.setPrompt("> ");
    if (tty) rl.prompt();
    try {
      for await (const raw of rl) {
        const line = raw.trim();
        if (line) {
          try {
            if (line.startsWith("/")) {
              if (!(await command(line))) break;
            } else await reply(line);
          } catch (e) {
            if (!(e instanceof MoestreamError)) throw e;
            say(`moestream: error: ${e.message}`); // a bad /load or /save keeps the chat going
          }
        }
        if (tty) rl.prompt();
      }
    } finally {
      rl.close();
      session.free();
      await lm.close();
    }
  });
}
