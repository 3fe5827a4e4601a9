// Per-layer state kinds through the engine: a saved and loaded session continues bit for bit as one never
// interrupted; reuse() over states that cannot roll back re-evaluates the kept prefix and lands on a fresh
// session's logits; session files of version 1 or with a layer's kind or size wrong are refused by name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import { argmax, checkSaveLoadContinues, divergentPrompts, greedy } from "../helpers/greedy.js";
import { FormatError, UsageError } from "../../src/util/errors.js";
import { testModel } from "../helpers/models.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-state-kinds-"));
let lm: LoadedModel;
test.before(async () => {
  lm = await loadModel(await testModel({ type: "Q8_0", seed: 5, peaked: 2 }), defaultEngineConfig({ ctxSize: 256 }));
});
test.after(async () => {
  await lm?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("save after a prompt, load into a fresh session: its continuation equals the uninterrupted one bit for bit", async () => {
  await checkSaveLoadContinues(lm, lm.tokenizer.encode("The state of every layer, saved and loaded"), join(dir, "a.session"), 5);
});

test("reuse when the states cannot truncate to the prefix: the prefix becomes pending, then logits match a fresh session", async () => {
  const { p1, p2, common } = divergentPrompts(lm);

  const s = new Session(lm);
  await s.eval(p1);
  // Recurrent-like layers: only 0 or the current length (the ModelCache wrapper consults canTruncate first).
  for (const l of s.cache.layers) {
    const own = l.canTruncate.bind(l);
    l.canTruncate = (n: number) => (n === 0 || n === l.length) && own(n);
  }
  assert.equal(s.cache.canTruncate(common), false);
  const rest = s.reuse(p2);
  assert.equal(s.cache.length, 0, "the states started over");
  assert.deepEqual(s.tokens, []);
  assert.deepEqual(s.pending, p2.slice(0, common), "the kept prefix is pending, to be evaluated again");
  assert.deepEqual(rest, p2.slice(common));
  assert.deepEqual([...s.pending, ...rest], p2, "everything is fed again");

  const got = await s.eval(rest);
  const fresh = new Session(lm);
  assert.deepEqual(got, await fresh.eval(p2));
  assert.deepEqual(s.tokens, p2);
  assert.equal(s.cache.length, p2.length);

  // A prompt extending the context needs no rollback: nothing is re-evaluated.
  const p3 = [...p2, ...lm.tokenizer.encode(" ten")];
  assert.deepEqual(s.reuse(p3), p3.slice(p2.length));
  assert.deepEqual(s.pending, []);
  assert.equal(s.cache.length, p2.length);
  s.free();
  fresh.free();
});

/** A saved session file split at its header JSON, to rewrite the JSON and reassemble the rest unchanged. */
function splitFile(bytes: Buffer): { pre: Buffer; header: Record<string, unknown>; rest: Buffer } {
  const n = bytes.readUInt32LE(12);
  return { pre: Buffer.from(bytes.subarray(0, 16)), header: JSON.parse(bytes.toString("utf8", 16, 16 + n)), rest: bytes.subarray(16 + n) };
}
function joinFile(pre: Buffer, header: unknown, rest: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const p = Buffer.from(pre);
  p.writeUInt32LE(json.byteLength, 12);
  return Buffer.concat([p, json, rest]);
}

test("a version 1 session file, or one whose header lists a wrong state kind or size, is refused by name", async () => {
  const s = new Session(lm);
  await s.eval(lm.tokenizer.encode("Refuse what does not fit"));
  const file = join(dir, "b.session");
  await s.save(file);
  const bytes = readFileSync(file);

  const target = new Session(lm);
  await target.eval(lm.tokenizer.encode("Something else"));
  const before = target.context;
  const refuse = async (name: string, data: Uint8Array, re: RegExp) => {
    const p = join(dir, name);
    writeFileSync(p, data);
    await assert.rejects(target.load(p), (e: unknown) => {
      assert.ok(e instanceof FormatError, `not a FormatError: ${e}`);
      assert.match(e.message, re);
      assert.ok(e.message.includes(p), "names the file");
      return true;
    });
    assert.deepEqual(target.context, before, "the session is left as it was");
  };

  const v1 = Buffer.from(bytes);
  v1.writeUInt32LE(1, 8);
  await refuse("v1.session", v1, /version 1\b/);

  const { pre, header, rest } = splitFile(bytes);
  const states = header.states as { kind: string; bytes: number }[];
  assert.equal(states.length, lm.model.info.nLayer);
  assert.ok(states.every((st) => st.kind === "full"));
  const edit = (i: number, st: { kind: string; bytes: number }) => ({ ...header, states: states.map((x, j) => (j === i ? st : x)) });
  await refuse("kind.session", joinFile(pre, edit(1, { ...states[1], kind: "recurrent" }), rest), /layer 1: .*"recurrent".*'full'/);
  await refuse("size.session", joinFile(pre, edit(2, { ...states[2], bytes: states[2].bytes + 8 }), rest), new RegExp(`layer 2: .*of ${states[2].bytes + 8} bytes`));
  await refuse("count.session", joinFile(pre, { ...header, states: states.slice(1) }, rest), /layer states/);

  // The unedited file still loads (the rewriting itself is not what is refused).
  const same = join(dir, "same.session");
  writeFileSync(same, joinFile(pre, header, rest));
  await target.load(same);
  assert.deepEqual(target.context, s.context);
  s.free();
  target.free();
});

test("a flipped bit in the header length is a typed error at once, not a huge read; a killed save's temp file is cleared by the next save", async () => {
  const s = new Session(lm);
  try {
    await s.eval(lm.tokenizer.encode("A short conversation to save."));
    const path = join(dir, "flip-length.session");
    // A temp file of a save whose process is gone (pid 999999999 cannot exist on Linux: pid_max <= 2^22).
    const stale = join(dir, ".flip-length.session.tmp-999999999-0123abcd");
    writeFileSync(stale, new Uint8Array(1024));
    await s.save(path);
    assert.ok(!readdirSync(dir).includes(".flip-length.session.tmp-999999999-0123abcd"), "the dead save's temp file is gone");
    const bytes = readFileSync(path);
    bytes[15] ^= 0x80; // top bit of the little-endian header length: > 2 GiB
    writeFileSync(path, bytes);
    const t0 = performance.now();
    await assert.rejects(new Session(lm).load(path), (e: unknown) => e instanceof FormatError && e.code === "bad_header" && /header length \d+ exceeds/.test(e.message) && e.message.includes(path));
    assert.ok(performance.now() - t0 < 10_000); // a >2 GiB read before; now a header check (a loaded machine must not fail it)
  } finally {
    s.free();
  }
});

test("file-system failures of save and load are one-line typed errors naming the path (a chat reports them and goes on)", async () => {
  const s = new Session(lm);
  try {
    await s.eval(lm.tokenizer.encode("Saved nowhere."));
    const nowhere = join(dir, "no", "such", "dir", "x.session");
    await assert.rejects(s.save(nowhere), (e: unknown) => e instanceof UsageError && e.code === "session_save_failed" && e.message.includes(nowhere) && /no such directory/.test(e.message));
    await assert.rejects(s.save(dir), (e: unknown) => e instanceof UsageError && e.message.includes(dir));
    assert.ok(!readdirSync(dir).some((n) => n.includes(".tmp-")), "no temp file left by a failed save");
    await assert.rejects(new Session(lm).load(dir), (e: unknown) => e instanceof FormatError && /is a directory/.test(e.message));
  } finally {
    s.free();
  }
});
