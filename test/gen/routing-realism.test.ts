// The generator's routing knobs change routing measurably, through the real forward pass: uniform
// routers spread tokens evenly and reuse experts at the chance rate; realistic ones concentrate
// popularity and reuse the previous token's experts far more often.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { RoutingRecorder, type RoutingStats } from "../../src/gen/routing-stats.js";
import type { RoutingProfile } from "../../src/gen/weights.js";
import { testModel } from "../helpers/models.js";

const TEXT =
  "In the beginning the universe was created. This has made a lot of people very angry and been widely regarded as a bad move. " +
  "Many were increasingly of the opinion that they'd all made a big mistake in coming down from the trees in the first place. " +
  "And some said that even the trees had been a bad move, and that no one should ever have left the oceans.";

// seed: 11 for the new presets, whose uniform model is the golden tests' source (generated once).
async function measure(routing: RoutingProfile, preset: "tiny" | "mixtral-tiny" | "olmoe-tiny" = "tiny", seed = 21): Promise<RoutingStats> {
  const lm = await loadModel(await testModel({ preset, type: "Q8_0", seed, routing }), defaultEngineConfig({ ctxSize: 256 }));
  try {
    const hp = lm.model.info;
    const kv = lm.model.makeCache(256);
    const rec = new RoutingRecorder(hp.nLayer, hp.nExpert, hp.nExpertUsed);
    await lm.model.forward(Int32Array.from(lm.tokenizer.encode(TEXT)), kv, { logits: "last", hooks: { onRoute: (l, r) => rec.record(l, r.ids, r.nTokens) } });
    return rec.stats();
  } finally {
    await lm.close();
  }
}

test("RoutingRecorder: hand-computed popularity and reuse", () => {
  const rec = new RoutingRecorder(1, 4, 2);
  rec.record(0, Int32Array.of(0, 1, /* t1 */ 0, 2, /* t2 */ 0, 2), 3);
  const s = rec.stats();
  // Top quarter = 1 expert (0) with 3 of 6 routings; reuse: t1 keeps 1 of 2, t2 keeps 2 of 2.
  assert.equal(s.topQuarterShare, 0.5);
  assert.equal(s.reuse, 0.75);
  assert.equal(s.uniformReuse, 0.5);
});

test("realistic routing is skewed and local; uniform routing is neither (tiny, 16 experts, top-4)", async () => {
  const u = await measure({ kind: "uniform" });
  const r = await measure({ kind: "realistic", skew: 1, locality: 0.5 });
  console.log(`# uniform: ${JSON.stringify(u)}\n# realistic(skew 1, locality 0.5): ${JSON.stringify(r)}`);
  assert.ok(u.reuse < 1.3 * u.uniformReuse, `uniform reuse ${u.reuse} should be near chance ${u.uniformReuse}`);
  assert.ok(u.topQuarterShare < 0.45, `uniform top-quarter share ${u.topQuarterShare}`);
  assert.ok(r.reuse > 1.6 * r.uniformReuse, `realistic reuse ${r.reuse} should be well above chance ${r.uniformReuse}`);
  assert.ok(r.topQuarterShare > u.topQuarterShare + 0.12, `realistic top-quarter share ${r.topQuarterShare} vs uniform ${u.topQuarterShare}`);
});

// Mixtral has no q/k norms (the generator puts their gain into attn_q / attn_k); OLMoE picks half its experts per token.
for (const preset of ["mixtral-tiny", "olmoe-tiny"] as const) {
  test(`the routing knobs act on ${preset} too: realistic routing more skewed and local than uniform`, async () => {
    const u = await measure({ kind: "uniform" }, preset, 11);
    const r = await measure({ kind: "realistic", skew: 1, locality: 0.5 }, preset, 11);
    console.log(`# ${preset} uniform: ${JSON.stringify(u)}\n# ${preset} realistic(skew 1, locality 0.5): ${JSON.stringify(r)}`);
    assert.ok(u.reuse < 1.2 * u.uniformReuse, `uniform reuse ${u.reuse} should be near chance ${u.uniformReuse}`);
    assert.ok(r.reuse > 1.25 * r.uniformReuse, `realistic reuse ${r.reuse} should be above chance ${r.uniformReuse}`);
    assert.ok(r.topQuarterShare > u.topQuarterShare + 0.1, `realistic top-quarter share ${r.topQuarterShare} vs uniform ${u.topQuarterShare}`);
  });
}
