// Model-level invariants of the scalar forward: a batch equals the same tokens fed one at a time (KV
// cache, causal mask, and the bucketed MoE loop vs single-token buckets), and the context limit is enforced.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { ModelError } from "../../src/util/errors.js";
import { testModel } from "../helpers/models.js";

test("prefill as one batch equals token-by-token decode (logits of every position)", async () => {
  const lm = await loadModel(await testModel({ type: "Q8_0", seed: 21, routing: { kind: "realistic", skew: 1, locality: 0.5 } }), defaultEngineConfig({ ctxSize: 64 }));
  try {
    const hp = lm.model.info;
    const toks = lm.tokenizer.encode("Mixture of experts, streamed from disk: 1, 2, 3.");
    const kvA = lm.model.makeCache(64);
    const batch = await lm.model.forward(Int32Array.from(toks), kvA, { logits: "all" });
    const kvB = lm.model.makeCache(64);
    for (let t = 0; t < toks.length; t++) {
      const one = await lm.model.forward(Int32Array.of(toks[t]), kvB, { logits: "last" });
      const row = batch.subarray(t * hp.nVocab, (t + 1) * hp.nVocab);
      let maxDiff = 0;
      for (let i = 0; i < hp.nVocab; i++) maxDiff = Math.max(maxDiff, Math.abs(one[i] - row[i]));
      assert.ok(maxDiff < 1e-4, `position ${t}: max |diff| ${maxDiff}`);
    }
    assert.equal(kvA.length, toks.length);
    assert.equal(kvB.length, toks.length);
    // "last" of a batch is the batch's final row.
    const kvC = lm.model.makeCache(64);
    const last = await lm.model.forward(Int32Array.from(toks), kvC, { logits: "last" });
    assert.deepEqual(last, batch.slice((toks.length - 1) * hp.nVocab));
  } finally {
    await lm.close();
  }
});

test("a batch beyond the context size is refused with the limit stated", async () => {
  const lm = await loadModel(await testModel({ type: "Q8_0", seed: 3 }), defaultEngineConfig({ ctxSize: 8 }));
  try {
    const hp = lm.model.info;
    const kv = lm.model.makeCache(8);
    await assert.rejects(lm.model.forward(new Int32Array(9).fill(100), kv, { logits: "last" }), (e: unknown) => e instanceof ModelError && /exceed the context size 8/.test(e.message));
  } finally {
    await lm.close();
  }
});

test("overlapping forward calls (two sessions at once) equal the same calls in turn", async () => {
  const lm = await loadModel(await testModel({ type: "Q8_0", seed: 21, routing: { kind: "realistic", skew: 1, locality: 0.5 } }), defaultEngineConfig({ ctxSize: 64 }));
  try {
    // As many tokens each, so that shared activation buffers would be the very same ones.
    const a = lm.tokenizer.encode("One conversation about experts and caches").slice(0, 6), b = lm.tokenizer.encode("Another one entirely, about disks and reads").slice(0, 6);
    assert.equal(a.length, 6);
    assert.equal(b.length, 6);
    const inTurn = [await lm.model.forward(Int32Array.from(a), lm.model.makeCache(64), { logits: "all" }), await lm.model.forward(Int32Array.from(b), lm.model.makeCache(64), { logits: "all" })];
    // Both in flight: they interleave at every await (router readbacks, expert acquires).
    const overlapped = await Promise.all([lm.model.forward(Int32Array.from(a), lm.model.makeCache(64), { logits: "all" }), lm.model.forward(Int32Array.from(b), lm.model.makeCache(64), { logits: "all" })]);
    assert.deepEqual(overlapped, inTurn);
  } finally {
    await lm.close();
  }
});
