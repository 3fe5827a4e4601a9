// Sessions over a hybrid model (recurrent DeltaNet states + full-attention KV): a saved and loaded session continues
// bit for bit as one never interrupted; reuse keeps the evaluated prefix when the new prompt extends the context,
// rolls back to the checkpoint a generation keeps at its prompt's end when the new prompt diverges after it, and
// re-evaluates from 0 when it diverges before (a recurrent state cannot roll back further), each landing on a fresh
// session's logits; an aborted forward leaves the states as they were.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import { AbortedError } from "../../src/util/errors.js";
import { smallVocabModel } from "../helpers/models.js";
import { divergentPrompts } from "../helpers/greedy.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-session-qnext-"));
let lm: LoadedModel;
test.before(async () => {
  lm = await loadModel(await smallVocabModel({ preset: "qwen3next-tiny", type: "Q8_0", seed: 5, nVocab: 4096 }), defaultEngineConfig({ ctxSize: 128, backend: "scalar" }));
});
test.after(async () => {
  await lm?.close();
  rmSync(dir, { recursive: true, force: true });
});

function argmax(l: Float32Array): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
  return best;
}

test("the hybrid cache: recurrent states on the DeltaNet layers, full attention on every 4th", () => {
  const s = new Session(lm);
  assert.deepEqual(s.cache.layers.map((l) => l.kind), ["recurrent", "recurrent", "recurrent", "full"]);
  assert.equal(s.cache.bytes, lm.model.cacheBytes(128));
  s.free();
});

test("save after a prompt, load into a fresh session: the continuation equals the uninterrupted one bit for bit", async () => {
  const prompt = lm.tokenizer.encode("The state of every layer, saved and loaded");
  const steps = async (s: Session, logits: Float32Array, n: number) => {
    const out: Float32Array[] = [];
    for (let i = 0; i < n; i++) out.push((logits = await s.eval([argmax(logits)])));
    return out;
  };
  const whole = new Session(lm);
  const want = await steps(whole, await whole.eval(prompt), 4);

  const s = new Session(lm);
  const first = await s.eval(prompt);
  const file = join(dir, "a.session");
  await s.save(file);
  const t = new Session(lm);
  await t.load(file);
  assert.deepEqual(t.cache.layers.map((l) => [l.kind, l.length]), s.cache.layers.map((l) => [l.kind, l.length]));
  assert.deepEqual(await steps(t, first, 4), want);
  assert.deepEqual(await steps(s, first, 4), want, "saving changed nothing");
  for (const x of [whole, s, t]) x.free();
});

test("reuse: an extension of the context keeps it; a divergent prompt re-evaluates from 0; both match a fresh session", async () => {
  const { p1, p2, common } = divergentPrompts(lm);

  const s = new Session(lm);
  await s.eval(p1);
  // A continuing conversation: the new prompt starts with everything evaluated, which stays.
  const p1x = [...p1, ...lm.tokenizer.encode(" seven")];
  assert.deepEqual(s.reuse(p1x), p1x.slice(p1.length));
  assert.equal(s.cache.length, p1.length, "nothing re-evaluated");
  const fresh = new Session(lm);
  assert.deepEqual(await s.eval(p1x.slice(p1.length)), await fresh.eval(p1x));

  // A different prompt: the recurrent states cannot roll back to the common prefix, so it is evaluated again.
  const rest = s.reuse(p2);
  assert.equal(s.cache.length, 0, "the states started over");
  assert.deepEqual(s.pending, p2.slice(0, common), "the kept prefix is pending, to be evaluated again");
  assert.deepEqual(rest, p2.slice(common));
  const again = new Session(lm);
  assert.deepEqual(await s.eval(rest), await again.eval(p2));
  assert.deepEqual(s.tokens, p2);
  for (const x of [s, fresh, again]) x.free();
});

test("a new prompt diverging inside the last reply rolls back to the checkpoint at the previous prompt's end, not to 0", async () => {
  const p1 = lm.tokenizer.encode("A question asked in the first turn");
  const s = new Session(lm);
  const reply: number[] = [];
  for await (const step of s.generate(p1, { maxTokens: 5, sampling: { temperature: 0 }, stopAtEog: false })) reply.push(step.token);
  assert.equal(s.cache.length, p1.length + 4, "the last sampled token waits to be fed");
  // The next turn renders the reply differently: it shares p1 and one reply token, then diverges.
  const other = lm.tokenizer.encode(" rendered otherwise, and a second question");
  const p2 = [...p1, reply[0], ...other.filter((t) => t !== reply[1])];
  const rest = s.reuse(p2);
  assert.equal(s.cache.length, p1.length, "back to the checkpoint at p1's end");
  assert.deepEqual(s.pending, [reply[0]], "only the kept part of the reply is evaluated again");
  assert.deepEqual(rest, p2.slice(p1.length + 1));
  const fresh = new Session(lm);
  assert.deepEqual(await s.eval(rest), await fresh.eval(p2));
  s.free();
  fresh.free();
});

test("an abort in the middle of a forward leaves the recurrent states as they were", async () => {
  const p = lm.tokenizer.encode("Stop me halfway through");
  const more = lm.tokenizer.encode(" and go on");
  const s = new Session(lm);
  await s.eval(p);
  let polls = 0;
  const signal = { get aborted() { return ++polls > 3; } }; // after layers 0 and 1's DeltaNets have run
  await assert.rejects(s.eval(more, "last", undefined, signal), AbortedError);
  assert.ok(polls > 3);
  assert.equal(s.cache.length, p.length);
  const fresh = new Session(lm);
  assert.deepEqual(await s.eval(more), await fresh.eval([...p, ...more]));
  s.free();
  fresh.free();
});
