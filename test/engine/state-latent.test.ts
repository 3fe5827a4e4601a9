// The latent (MLA) state through the engine, on the DeepSeek-V3-shaped tiny model: a saved and loaded session
// continues bit for bit as one never interrupted (the f16 rows are saved without loss, 2 bytes a value), and prefix
// reuse truncates the latent rows and lands on a fresh session's logits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import { argmax, checkSaveLoadContinues, divergentPrompts, greedy } from "../helpers/greedy.js";
import { smallVocabModel } from "../helpers/models.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-state-latent-"));
let lm: LoadedModel;
test.before(async () => {
  // The scalar reference: bit-identical is the claim, whatever the batch split.
  lm = await loadModel(await smallVocabModel({ preset: "deepseek2-tiny", type: "Q8_0", seed: 5, nVocab: 4096 }), defaultEngineConfig({ ctxSize: 128, backend: "scalar" }));
});
test.after(async () => {
  await lm?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("latent state: save after a prompt, load into a fresh session: its continuation equals the uninterrupted one bit for bit", async () => {
  const prompt = lm.tokenizer.encode("The latent rows of every layer, saved and loaded");
  const file = join(dir, "a.session");
  await checkSaveLoadContinues(lm, prompt, file, 4);
  // Every layer keeps a latent state, saving kv_lora_rank + rope = 288 f16 values a token.
  const bytes = readFileSync(file);
  const header = JSON.parse(bytes.toString("utf8", 16, 16 + bytes.readUInt32LE(12))) as { states: { kind: string; bytes: number }[] };
  assert.deepEqual(header.states, Array.from({ length: 3 }, () => ({ kind: "latent", bytes: 2 * 288 * prompt.length })));
});

test("latent state: reuse truncates to the common prefix and evaluates only the rest, giving a fresh session's logits", async () => {
  const { p1, p2, common } = divergentPrompts(lm);
  const s = new Session(lm);
  await s.eval(p1);
  assert.equal(s.cache.canTruncate(common), true, "latent rows roll back to any prefix");
  const rest = s.reuse(p2);
  assert.deepEqual(rest, p2.slice(common), "only the new suffix is evaluated");
  assert.equal(s.cache.length, common);
  assert.deepEqual(s.pending, []);
  const got = await s.eval(rest);
  const fresh = new Session(lm);
  assert.deepEqual(got, await fresh.eval(p2));
  s.free();
  fresh.free();
});
