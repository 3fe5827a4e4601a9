// The real-like routing profile lands in the bands real routers show (issue 17; measured on the real
// Qwen3-30B-A3B trace: adjacent-token overlap 0.37, top-16 of 128 share 0.59, 78 experts touched per
// layer in 156 tokens), through the real forward pass of a small 128-expert top-6 model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateModel } from "../../src/gen/generate.js";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { formatRoutingStats, layerRoutingStats } from "../../src/gen/routing-stats.js";
import { REAL_LIKE } from "../../src/gen/weights.js";
import { PRESETS } from "../../src/gen/presets.js";

// Plain prose, ~160 tokens, no repeats: a repeated passage would replay its routing and flatter the cache.
const TEXT =
  "The harbour town woke slowly that winter. Fishing boats stayed tied to the pier while their owners argued about the price of diesel, " +
  "the weather forecast, and whether the new mayor would ever repair the lighthouse. Children ran past the bakery, where the smell of " +
  "cinnamon drifted into the cold street. An old sailor sat on a bench near the chapel, reading yesterday's newspaper and counting gulls. " +
  "By noon the fog had lifted, revealing distant islands, grey cliffs and a cargo ship heading north toward the open sea. Nobody " +
  "noticed the small wooden crate that had washed ashore beside the slipway, its lid sealed with wax and stamped with a crown.";

test("real-like routing: overlap, top-16 share and distinct experts in the real traces' bands (128 experts, top-6)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "moestream-real-like-"));
  try {
    // a3b's expert count and the trace's k; narrow layers and tiny experts keep it fast (the statistics barely move with width).
    const hp = { ...PRESETS.tiny.hp, nLayer: 4, nExpert: 128, nExpertUsed: 6, nFfExp: 64 };
    const path = join(dir, "m.gguf");
    await generateModel(path, { preset: { ...PRESETS.tiny, hp }, type: "Q8_0", seed: 1, routing: REAL_LIKE });
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256 }));
    const layers: Int32Array[][] = Array.from({ length: hp.nLayer }, () => []);
    try {
      const kv = lm.model.makeCache(256);
      const ids = lm.tokenizer.encode(TEXT).slice(0, 156);
      assert.ok(ids.length >= 120, `text encodes to ${ids.length} tokens`);
      // One token per forward, as a decode (and the real traces) route them.
      for (const t of ids) await lm.model.forward(Int32Array.of(t), kv, { logits: "last", hooks: { onRoute: (l, r) => layers[l].push(Int32Array.from(r.ids)) } });
    } finally {
      await lm.close();
    }
    const s = layerRoutingStats(layers, hp.nExpert, hp.nExpertUsed);
    console.log(`# real-like: ${formatRoutingStats(s)}`);
    // Real traces: overlap 0.19-0.37, top-16 share 0.59-0.65, ~78 distinct; bands a little wider for 4 layers' noise.
    assert.ok(s.overlap.mean > 0.25 && s.overlap.mean < 0.5, `overlap ${s.overlap.mean}`);
    assert.ok(s.topEighthShare.mean > 0.5 && s.topEighthShare.mean < 0.72, `top-16 share ${s.topEighthShare.mean}`);
    assert.ok(s.distinct.mean > 65 && s.distinct.mean < 100, `distinct ${s.distinct.mean}`);
    // Layers differ, as real ones do (real sd over layers: 0.07-0.10 overlap, 0.09-0.11 share).
    assert.ok(s.topEighthShare.max - s.topEighthShare.min > 0.04, `top-16 share range ${s.topEighthShare.min}-${s.topEighthShare.max}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
