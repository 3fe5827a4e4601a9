// `moestream chat` as a user runs it: piped stdin (one turn per line) and a real terminal under tmux
// (prompt, streamed reply, up-arrow history, /stats, /save, /load, /exit).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testModel } from "../helpers/models.js";
import { loadModel, type ChatMessage } from "../../src/index.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "moestream.cjs");
const dir = mkdtempSync(join(tmpdir(), "moestream-chat-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const model = await testModel({ type: "Q8_0", seed: 3 });
const env = { ...process.env, MOESTREAM_TEMP: undefined };

function chat(input: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, "chat", "-m", model, "--temp", "0", "-n", "8", ...args], { input, encoding: "utf8", env });
  assert.equal(r.status, 0, r.stderr);
  return { out: r.stdout.split("\n"), err: r.stderr };
}

test("piped stdin: the first reply is `run --chat`'s; /save, /reset, /load continue the same conversation", () => {
  const run = spawnSync(process.execPath, [BIN, "run", "-m", model, "-p", "Hi", "--chat", "--temp", "0", "-n", "8"], { encoding: "utf8", env });
  assert.equal(run.status, 0, run.stderr);
  const straight = chat("Hi\nWhat next?\n");
  assert.equal(straight.out[0], run.stdout.replace(/\n$/, ""));
  const file = join(dir, "c.session");
  const resumed = chat(`Hi\n/save ${file}\n/reset\n/load ${file}\nWhat next?\n/exit\nnever read\n`);
  assert.deepEqual(resumed.out.slice(0, 2), straight.out.slice(0, 2));
  assert.match(resumed.err, /saved \d+ tokens/);
  assert.match(resumed.err, /loaded .*: 2 messages/);
  // A bad /load is reported and the chat goes on; /think (thinking hidden when piped) changes no plain reply.
  const bad = chat(`/load ${join(dir, "missing.session")}\n/think\nHi\n`);
  assert.match(bad.err, /missing\.session: session file not found/);
  assert.match(bad.err, /thinking shown/);
  assert.equal(bad.out[0], straight.out[0]);
});

test("at --ctx-size 256, 20 turns run: the oldest turns are dropped (one stderr line each time), a turn too long for the context fails alone; replies equal the library's", async () => {
  const system = "You are terse.";
  const lines = Array.from({ length: 20 }, (_, i) => `Question ${i}: what comes after ${i * 7}?`);
  const long = Array.from({ length: 300 }, (_, i) => `w${i}`).join(" ");
  const input = [...lines.slice(0, 10), long, ...lines.slice(10)].join("\n") + "\n";
  const r = chat(input, "--ctx-size", "256", "-n", "32", "-s", system);
  // The library, the caller appending every message, never shown the failed line.
  const m = await loadModel(model, { ctxSize: 256 });
  const s = m.createSession();
  const messages: ChatMessage[] = [{ role: "system", content: system }];
  let want = "";
  for (const line of lines) {
    messages.push({ role: "user", content: line });
    let text = "";
    for await (const step of s.chat(messages, { maxTokens: 32, sampling: { temperature: 0 } })) text += step.text;
    messages.push({ role: "assistant", content: text });
    want += text + "\n";
  }
  s.free();
  await m.close();
  assert.equal(r.out.join("\n"), want);
  const errors = r.err.split("\n").filter((l) => l.includes("error"));
  assert.equal(errors.length, 1, r.err);
  assert.match(errors[0], /^moestream: error: the system prompt with the latest message \(\d+ tokens\) exceeds the context of 256 tokens; raise --ctx-size/);
  const drops = r.err.split("\n").filter((l) => /^moestream: context full \(256 tokens\): dropped the \d+ oldest messages \(\d+ tokens\) to continue$/.test(l));
  assert.ok(drops.length >= 3, r.err);
});

/** `moestream chat ARGS` in a real terminal (tmux): send keys, read the screen (with scrollback if asked), wait. */
function inTmux(tag: string, args: string, scrollback = false) {
  assert.ok(spawnSync("tmux", ["-V"]).status === 0, "tmux is needed for this test (.ci/run installs it)");
  const name = `moestream-chat-${tag}-${process.pid}`;
  const tmux = (...a: string[]) => execFileSync("tmux", a, { encoding: "utf8" });
  const done = join(dir, `exited-${tag}`);
  tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "50", `MOESTREAM_TEMP= ${process.execPath} ${BIN} chat -m ${model} ${args}; touch ${done}`);
  // Trailing blanks trimmed: the prompt reads ">".
  const screen = () => tmux("capture-pane", "-p", ...(scrollback ? ["-S", "-"] : []), "-t", name);
  return {
    screen,
    keys: (...k: string[]) => tmux("send-keys", "-t", name, ...k),
    async waitFor(re: RegExp, what: string): Promise<string> {
      for (let i = 0; i < 600; i++) {
        const s = screen();
        if (re.test(s)) return s;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`timed out waiting for ${what}; screen:\n${screen()}`);
    },
    async waitExit(): Promise<void> {
      for (let i = 0; i < 100 && !existsSync(done); i++) await new Promise((r) => setTimeout(r, 100));
      if (!existsSync(done)) assert.fail(`chat did not exit; screen:\n${screen()}`);
    },
    close: () => spawnSync("tmux", ["kill-session", "-t", name]),
  };
}

test("in a terminal (tmux): prompt, streamed reply, history recall, /stats, /exit", async () => {
  const t = inTmux("basic", "--temp 0 -n 8");
  try {
    await t.waitFor(/^>$/m, "the prompt");
    t.keys("Hi", "Enter");
    let s = await t.waitFor(/^> Hi\n.+\n>$/m, "the first reply");
    const first = /^> Hi\n(.+)\n>$/m.exec(s)![1];
    assert.ok(first.trim().length > 0);
    t.keys("Up", "Enter"); // history brings back "Hi"
    s = await t.waitFor(/^> Hi\n.+\n> Hi\n.+\n>$/m, "the second reply");
    t.keys("/stats", "Enter");
    s = await t.waitFor(/decode \d+ tok [\d.]+ tok\/s[\s\S]*context \d+\/4096 tokens[\s\S]*\n>$/m, "the stats");
    t.keys("/exit", "Enter");
    await t.waitExit();
  } finally {
    t.close();
  }
});

test("in a terminal (tmux): Ctrl-C stops a long reply at once, the conversation stays and the next turn works", async () => {
  // 16k tokens would take minutes: a reply can only end this soon through Ctrl-C.
  const t = inTmux("int", "--temp 0 -n 16000 --ctx-size 20000", true);
  try {
    await t.waitFor(/^>$/m, "the prompt");
    t.keys("Hi", "Enter");
    await t.waitFor(/^> Hi\n\S/m, "the reply to start");
    t.keys("C-c");
    await t.waitFor(/\(stopped\)\n>$/m, "the reply to stop and the prompt to return");
    t.keys("Again", "Enter");
    await t.waitFor(/^> Again\n\S/m, "the next reply to start");
    t.keys("C-c");
    await t.waitFor(/\(stopped\)\n>$/m, "the next reply to stop");
    t.keys("/stats", "Enter");
    // Stopped turns are not kept in the conversation; the session still answers /stats.
    const s = await t.waitFor(/context \d+\/20000 tokens.*\n>$/m, "the stats after the stops");
    assert.equal((s.match(/\(stopped\)/g) ?? []).length, 2);
    t.keys("C-c"); // no reply running: Ctrl-C at the prompt quits, as before
    await t.waitExit();
  } finally {
    t.close();
  }
});
