// Sessions: a continued generation equals one long one (the last sampled token is fed next time), prefix
// reuse gives the same tokens as a fresh evaluation, save/load restores KV, tokens and the sampler's RNG
// (across a GGUF and its pack), and damaged or foreign session files are refused without touching the session.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { PREFILL_BATCH, Session, type GenerateOptions } from "../../src/engine/session.js";
import { nmse } from "../helpers/numeric.js";
import { packModel } from "../../src/experts/pack.js";
import { expertLayout } from "../../src/engine/expert-layout.js";
import { FormatError, ModelError } from "../../src/util/errors.js";
import { testModel } from "../helpers/models.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-session-"));
const cfg = defaultEngineConfig({ ctxSize: 1200 });
const models: LoadedModel[] = [];
test.after(async () => {
  for (const m of models) await m.close();
  rmSync(dir, { recursive: true, force: true });
});
async function open(path: string): Promise<LoadedModel> {
  const lm = await loadModel(path, cfg);
  models.push(lm);
  return lm;
}
async function run(s: Session, prompt: number[], opts: GenerateOptions): Promise<number[]> {
  const out: number[] = [];
  for await (const step of s.generate(prompt, opts)) out.push(step.token);
  return out;
}
const greedy = (n: number): GenerateOptions => ({ maxTokens: n, sampling: { temperature: 0 }, stopAtEog: false });

test("two generations in a row equal one of their combined length", async () => {
  const lm = await open(await testModel({ type: "Q8_0", seed: 5, peaked: 2 }));
  const prompt = lm.tokenizer.encode("The quick brown fox");
  const one = await run(new Session(lm), prompt, greedy(12));
  const s = new Session(lm);
  const a = await run(s, prompt, greedy(5));
  assert.deepEqual(s.pending, [a[4]], "the last sampled token waits to be fed");
  const b = await run(s, [], greedy(7));
  assert.deepEqual([...a, ...b], one);
  assert.equal(s.tokens.length + s.pending.length, prompt.length + 12);
});

test("reuse keeps the common prefix and gives the tokens a fresh session gives", async () => {
  const lm = await open(await testModel({ type: "Q8_0", seed: 5, peaked: 2 }));
  const p1 = lm.tokenizer.encode("One two three four five six");
  const p2 = lm.tokenizer.encode("One two three four seven eight nine");
  const fresh = await run(new Session(lm), p2, greedy(6));
  const s = new Session(lm);
  await run(s, p1, greedy(3));
  let common = 0;
  while (p1[common] === p2[common]) common++;
  const rest = s.reuse(p2);
  assert.deepEqual(rest, p2.slice(common));
  assert.equal(s.tokens.length, common);
  assert.deepEqual(await run(s, rest, greedy(6)), fresh);
  assert.equal(s.lastStats!.promptTokens, p2.length - common, "only the new part was evaluated");
  // A prompt entirely in the context still leaves one token to evaluate, for logits.
  assert.deepEqual(s.reuse(p2), [p2[p2.length - 1]]);
});

test("save/load restores KV, tokens and the RNG: the continuation is identical, also from the pack", async () => {
  const gguf = await testModel({ type: "Q8_0", seed: 5, peaked: 2 });
  const lm = await open(gguf);
  const prompt = lm.tokenizer.encode("Once upon a time");
  const sampled: GenerateOptions = { maxTokens: 6, sampling: { temperature: 0.9, seed: 11 }, stopAtEog: false };
  const s = new Session(lm);
  await run(s, prompt, sampled);
  const file = join(dir, "a.session");
  await s.save(file);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes("tmp")), [], "no temp file left behind");
  const cont: GenerateOptions = { maxTokens: 8, sampling: { temperature: 0.9 }, stopAtEog: false }; // no seed: continues the RNG
  const want = await run(s, [], cont);

  const t = new Session(lm);
  await t.load(file);
  assert.deepEqual(await run(t, [], cont), want);

  const packed = join(dir, "packed");
  await packModel(gguf, packed, { experts: expertLayout });
  const lp = await open(packed);
  const u = new Session(lp);
  await u.load(file);
  assert.deepEqual(await run(u, [], cont), want);
});

test("damaged or foreign session files are refused, naming the file, and leave the session as it was", async () => {
  const lm = await open(await testModel({ type: "Q8_0", seed: 5, peaked: 2 }));
  const s = new Session(lm);
  await run(s, lm.tokenizer.encode("Hello world"), greedy(3));
  const file = join(dir, "b.session");
  await s.save(file);
  const bytes = readFileSync(file);

  const target = new Session(lm);
  await run(target, lm.tokenizer.encode("Something else entirely"), greedy(2));
  const before = target.context;
  const refuse = async (name: string, data: Uint8Array, check: (e: unknown) => boolean) => {
    const p = join(dir, name);
    writeFileSync(p, data);
    await assert.rejects(target.load(p), (e: unknown) => check(e) && (e as Error).message.includes(p));
    assert.deepEqual(target.context, before);
  };
  await refuse("cut.session", bytes.subarray(0, bytes.length - 100), (e) => e instanceof FormatError && e.code === "truncated");
  const flipped = Uint8Array.from(bytes);
  flipped[flipped.length - 50] ^= 0x40;
  await refuse("flip.session", flipped, (e) => e instanceof FormatError && e.code === "checksum_mismatch");
  await refuse("junk.session", Buffer.from("definitely not a session file"), (e) => e instanceof FormatError && e.code === "bad_magic");

  const other = await open(await testModel({ type: "Q8_0", seed: 6 }));
  const o = new Session(other);
  await assert.rejects(o.load(file), (e: unknown) => e instanceof ModelError && e.code === "session_model_mismatch" && (e as Error).message.includes(file));
  await assert.rejects(new Session(lm, 4).load(file), (e: unknown) => e instanceof ModelError && e.code === "session_too_long");
});

test("a prompt longer than one prefill batch: same logits as one forward over it all, progress per batch", async () => {
  const lm = await open(await testModel({ type: "Q8_0", seed: 5, peaked: 2 }));
  const ids = Array.from({ length: PREFILL_BATCH + 77 }, (_, i) => (i * 7919) % 5000);
  const s = new Session(lm);
  const seen: [number, number][] = [];
  const batched = await s.eval(ids, "all", (d, t) => seen.push([d, t]));
  assert.deepEqual(seen, [[PREFILL_BATCH, ids.length], [ids.length, ids.length]]);
  const whole = new Session(lm);
  const once = await lm.model.forward(Int32Array.from(ids), whole.cache, { logits: "all" });
  assert.equal(batched.length, once.length);
  assert.ok(nmse(batched, once) < 1e-10, `nmse ${nmse(batched, once)}`);
  s.free();
  whole.free();
});
