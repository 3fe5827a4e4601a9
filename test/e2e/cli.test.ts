// The real CLI (bin/moestream.cjs over the built dist/) as a user runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig, ENGINE_OPTIONS, SAMPLING_OPTIONS } from "../../src/engine/config.js";
import { openGGUF } from "../../src/format/gguf/read.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { smallVocabModel, testModel } from "../helpers/models.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "moestream.cjs");
const dir = mkdtempSync(join(tmpdir(), "moestream-cli-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  return cliWithInput(undefined, ...args);
}

/** The CLI with `input` piped on its stdin (undefined: an empty pipe). */
function cliWithInput(input: string | undefined, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", input, env: { ...process.env, MOESTREAM_TEMP: undefined } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("dist/ is built (npm install runs the build through `prepare`)", () => {
  assert.ok(existsSync(join(import.meta.dirname, "..", "..", "dist", "cli", "main.js")), "run `npm run build` first");
});

test("run --json: prompt tokens, greedy tokens matching top logits, text, stats", async () => {
  const model = await testModel({ type: "Q8_0", seed: 3 });
  const r = cli("run", "-m", model, "-p", "Hello, world", "-n", "5", "--temp", "0", "--json", "--ignore-eos");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  const lm = await loadModel(model, defaultEngineConfig());
  try {
    assert.deepEqual(j.prompt_tokens, lm.tokenizer.encode("Hello, world"));
    assert.equal(j.tokens.length, 5);
    assert.equal(j.top_logits.length, 5);
    for (let i = 0; i < 5; i++) {
      const top = j.top_logits[i] as [number, number][];
      assert.equal(top.length, 5);
      for (let k = 1; k < 5; k++) assert.ok(top[k - 1][1] >= top[k][1], "top logits sorted");
      assert.equal(j.tokens[i], top[0][0], "greedy picks the highest logit");
    }
    assert.equal(j.text, lm.tokenizer.decode(j.tokens));
    assert.equal(j.stats.generatedTokens, 5);
  } finally {
    await lm.close();
  }
});

test("run with a sampling seed is reproducible; --chat renders the template", async () => {
  const model = await testModel({ type: "Q8_0", seed: 3 });
  const a = cli("run", "-m", model, "-p", "Hi", "-n", "6", "--temp", "1", "--seed", "9", "--json", "--ignore-eos");
  const b = cli("run", "-m", model, "-p", "Hi", "-n", "6", "--temp", "1", "--seed", "9", "--json", "--ignore-eos");
  assert.equal(a.code, 0, a.err);
  assert.deepEqual(JSON.parse(a.out).tokens, JSON.parse(b.out).tokens);
  const c = cli("run", "-m", model, "-p", "Hi", "-n", "1", "--chat", "--json");
  assert.equal(c.code, 0, c.err);
  const lm = await loadModel(model, defaultEngineConfig());
  try {
    assert.equal(lm.tokenizer.decode(JSON.parse(c.out).prompt_tokens), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  } finally {
    await lm.close();
  }
});

test("run: the context defaults to the model's training context; a prompt beyond --ctx-size is refused before it is evaluated", async () => {
  const model = await testModel({ type: "Q8_0", seed: 3 });
  const ok = cli("run", "-m", model, "-p", "Hi", "-n", "2");
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.err, /^moestream: context 4096 tokens \(--ctx-size 0: the model's training context\)$/m);
  const prompt = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");
  const lm = await loadModel(model, defaultEngineConfig());
  const n = lm.tokenizer.encode(prompt).length;
  await lm.close();
  const r = cli("run", "-m", model, "-p", prompt, "--ctx-size", "32");
  assert.equal(r.code, 2);
  assert.match(r.err, new RegExp(`^moestream: error: the prompt \\(${n} tokens\\) exceeds the context of 32 tokens; raise --ctx-size \\(ctxSize\\) or shorten it\n$`, "m"));
  assert.doesNotMatch(r.err, /tok\/s/, "no stats line: nothing was generated");
});

test("run -f FILE and a prompt piped on stdin read the prompt as -p does (one trailing newline dropped, as llama.cpp's -f); none or two sources is refused before the model loads", async () => {
  const model = await smallVocabModel({ type: "Q8_0", seed: 5, peaked: 2, nVocab: 8192 });
  const f = await openGGUF(model);
  await f.source.close();
  const tok = Tokenizer.fromMetadata(f.metadata);
  const file = join(dir, "prompt.txt");
  writeFileSync(file, "Hello,\nworld\n");
  const args = ["-n", "2", "--temp", "0", "--json"];
  const runs = [cli("run", "-m", model, "-f", file, ...args), cliWithInput("Hello,\nworld\n", "run", "-m", model, ...args), cliWithInput("Hello,\nworld\n\n", "run", "-m", model, "-f", "-", ...args)];
  for (const r of runs) assert.equal(r.code, 0, r.err);
  const [fromFile, piped, twoNewlines] = runs.map((r) => JSON.parse(r.out));
  assert.deepEqual(fromFile.prompt_tokens, tok.encode("Hello,\nworld"));
  assert.deepEqual(piped, { ...fromFile, stats: piped.stats }, "stdin gives the same prompt and the same greedy tokens");
  assert.deepEqual(twoNewlines.prompt_tokens, tok.encode("Hello,\nworld\n"), "only one trailing newline goes");
  const missing = join(dir, "no-such-model.gguf");
  const bad: [string | undefined, string[], RegExp][] = [
    ["x", ["-p", "x", "-f", file], /-p\/--prompt and -f\/--file cannot be combined/],
    [undefined, ["-f", join(dir, "no-such-prompt.txt")], /-f .*no-such-prompt\.txt: ENOENT/],
    ["\n", [], /the prompt from stdin is empty/],
  ];
  for (const [input, extra, message] of bad) {
    const r = cliWithInput(input, "run", "-m", missing, ...extra);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, message);
    assert.doesNotMatch(r.err, /no-such-model/, "refused before the model file was opened");
  }
});

test("inspect reports tensors and expert vs dense bytes", async () => {
  const model = await testModel({ type: "Q8_0", seed: 3 });
  const r = cli("inspect", model, "--json");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.metadata["general.architecture"], "qwen3moe");
  const exp = j.tensors.filter((t: { name: string }) => t.name.endsWith("_exps.weight"));
  assert.equal(exp.length, 3 * 4);
  assert.equal(j.expertBytes, exp.reduce((a: number, t: { bytes: number }) => a + t.bytes, 0));
  const text = cli("inspect", model).out;
  assert.ok(text.includes("expert tensors:"));
  // one expert of tiny: gate, up, down of 256 x 256 Q8_0 = 3 x 256 x 8 blocks x 34 B
  assert.deepEqual(j.perExpert, [{ type: "Q8_0", bytesPerExpert: 3 * 256 * 8 * 34, parts: ["gate", "up", "down"].map((part) => ({ part, layers: 4 })) }]);
  assert.match(text, /routed expert, 4 layers: 204 KiB per expert: Q8_0 204 KiB \(gate, up, down\)/);
});

test("gen writes a model that loads; bad input gives one clear line and a distinct exit code", async () => {
  const out = join(dir, "g.gguf");
  const g = cli("gen", "--preset", "tiny", "--type", "F16", "--routing", "uniform", "-o", out);
  assert.equal(g.code, 0, g.err);
  const lm = await loadModel(out, defaultEngineConfig());
  await lm.close();
  const missing = cli("run", "-m", join(dir, "nope.gguf"), "-p", "x");
  assert.equal(missing.code, 2);
  assert.match(missing.err, /^moestream: error: model file not found: .*nope\.gguf\n$/);
  const bad = cli("run", "-m", out, "-p", "x", "--temp", "hot");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--temp must be a number, got 'hot'/);
  const junk = join(dir, "junk.gguf");
  const { writeFileSync } = await import("node:fs");
  writeFileSync(junk, "not a gguf file at all, just text");
  const j = cli("inspect", junk);
  assert.equal(j.code, 3);
  assert.match(j.err, /junk\.gguf at byte offset 0: .*magic/i);
});

test("every command's --help shows examples", () => {
  for (const c of ["demo", "run", "chat", "serve", "pack", "verify", "pull", "inspect", "bench", "doctor", "gen", "trace", "replay"]) {
    const r = cli(c, "--help");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Examples?:\n  moestream /, `${c} --help`);
  }
});

test("--help shows each engine and sampling option's default (from the option table) in every command that takes them", () => {
  const table = { ...ENGINE_OPTIONS, ...SAMPLING_OPTIONS } as Record<string, { flag: string; default: unknown; env?: string }>;
  for (const c of ["run", "serve", "bench"]) { // chat and trace add the same tables the same way
    const help = cli(c, "--help").out.replace(/\s+/g, " ");
    for (const spec of Object.values(table)) {
      const flag = spec.flag.split(" ")[0];
      if (c === "bench" && !help.includes(` ${flag} `)) continue; // bench takes the engine options only
      const shown = typeof spec.default === "boolean" ? (spec.default ? "on" : "off") : String(spec.default);
      assert.ok(help.includes(`(default: ${shown}${spec.env ? `, env ${spec.env}` : ""})`), `${c} --help: ${flag} default ${shown}`);
    }
  }
});

test("usage errors exit 2 (commander's too), and flags are checked before any model loads", () => {
  const missing = join(dir, "no-such-model.gguf");
  const cases = [["run", "--bogus"], ["nosuchcommand"], ["run", "-m", missing, "-p", "x", "--temp", "hot"], ["chat", "-m", missing, "--top-k", "1.5"], ["serve", "-m", missing, "--cors", "not an origin"]];
  for (const args of cases) {
    const r = cli(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.doesNotMatch(r.err, /no-such-model|ENOENT/, "refused before the model file was opened");
  }
});

test("bench --json: pp and tg tokens/s per repetition, with the last run's stats", async () => {
  const model = await testModel({ type: "Q8_0", seed: 3 });
  const r = cli("bench", "-m", model, "-p", "16", "-n", "4", "-r", "2", "--json");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.pp.tokens, 16);
  assert.equal(j.pp.tokPerSec.length, 2);
  assert.equal(j.tg.tokPerSec.length, 2);
  assert.ok([...j.pp.tokPerSec, ...j.tg.tokPerSec].every((x: number) => x > 0 && Number.isFinite(x)));
  assert.equal(j.lastRun.promptTokens, 16);
  assert.equal(j.lastRun.generatedTokens, 5);
  const bad = cli("bench", "-m", model, "-p", "0");
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--n-prompt must be an integer >= 1/);
});
