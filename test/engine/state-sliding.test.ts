// gpt-oss sessions over sliding-window states (even layers) and full ones: a saved and loaded session continues bit
// for bit; reuse rolls back within the held rows and evaluates only the new suffix, to the checkpoint a prompt left, and
// beyond both starts over; each lands on a fresh session's logits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import { checkSaveLoadContinues } from "../helpers/greedy.js";
import { smallVocabModel } from "../helpers/models.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-state-sliding-"));
let lm: LoadedModel;
const W = 8; // the tiny preset's window; its states hold 2W - 1 rows
test.before(async () => {
  lm = await loadModel(await smallVocabModel({ preset: "gpt-oss-tiny", type: "Q8_0", seed: 3, nVocab: 4096 }), defaultEngineConfig({ ctxSize: 128 }));
});
test.after(async () => {
  await lm?.close();
  rmSync(dir, { recursive: true, force: true });
});

const LONG = "Sliding windows keep only the last few positions of every other layer, and that must be enough.";

test("save after a prompt longer than the window, load into a fresh session: the continuation equals the uninterrupted one", async () => {
  const prompt = lm.tokenizer.encode(LONG);
  assert.ok(prompt.length > 2 * W, "the prompt outruns the held rows");
  const file = join(dir, "a.session");
  await checkSaveLoadContinues(lm, prompt, file, 4);
  const bytes = readFileSync(file);
  const header = JSON.parse(bytes.toString("utf8", 16, 16 + bytes.readUInt32LE(12))) as { states: { kind: string; bytes: number }[] };
  const n = prompt.length + 1, kv = 2 * 64; // the pending token is fed after the load
  assert.deepEqual(header.states, [0, 1, 2, 3].map((i) => (i % 2 === 0 ? { kind: "sliding", bytes: 2 * 4 * (2 * W - 1) * kv } : { kind: "full", bytes: 2 * 4 * (n - 1) * kv })));
});

/** p1 = prefix + a, p2 = prefix + b, with the common prefix ending `back` tokens before p1's end. */
function prompts(prefixText: string, a: string, b: string) {
  const prefix = lm.tokenizer.encode(prefixText);
  return { p1: [...prefix, ...lm.tokenizer.encode(a)], p2: [...prefix, ...lm.tokenizer.encode(b)], common: prefix.length };
}

test("reuse within the held rows truncates and evaluates only the suffix; beyond them it starts over; both equal a fresh session", async () => {
  const near = prompts(LONG, " Yes.", " No, never.");
  assert.ok(near.p1.length - near.common <= W, "the rollback stays within the held rows");
  const far = prompts(LONG.slice(0, 20), LONG.slice(20), " Something else entirely, written out at some length.");
  assert.ok(far.p1.length - far.common > 2 * W, "the rollback reaches past the held rows");
  for (const [what, { p1, p2, common }, fits] of [["near", near, true], ["far", far, false]] as const) {
    const s = new Session(lm);
    await s.eval(p1);
    assert.equal(s.cache.canTruncate(common), fits, what);
    const rest = s.reuse(p2);
    if (fits) {
      assert.deepEqual(rest, p2.slice(common), `${what}: only the new suffix is evaluated`);
      assert.equal(s.cache.length, common);
    } else {
      assert.equal(s.cache.length, 0, `${what}: the states started over`);
      assert.deepEqual(s.pending, p2.slice(0, common));
    }
    const got = await s.eval(rest);
    const fresh = new Session(lm);
    assert.deepEqual(got, await fresh.eval(p2), `${what}: logits equal a fresh session's`);
    s.free();
    fresh.free();
  }
});

test("a next turn diverging inside the reply rolls back to the prompt's checkpoint, not to 0, and equals a fresh session", async () => {
  const prompt = lm.tokenizer.encode(LONG);
  const s = new Session(lm);
  await s.eval(prompt);
  s.cache.checkpoint(); // as generate() does after its prompt
  await s.eval(lm.tokenizer.encode(" A reply long enough to leave the prompt's window far behind it, then some."));
  const next = [...prompt, ...lm.tokenizer.encode(" The reply, rendered differently.")];
  const rest = s.reuse(next);
  assert.equal(s.cache.length, prompt.length, "back at the checkpoint");
  assert.deepEqual([...s.pending, ...rest], next.slice(prompt.length));
  const got = await s.eval(rest);
  const fresh = new Session(lm);
  assert.deepEqual(got, await fresh.eval(next));
  s.free();
  fresh.free();
});
