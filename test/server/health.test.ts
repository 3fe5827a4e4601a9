// `serve` stays responsive while it computes: /health answers throughout a long prefill and the decode
// after it (the engine runs on its own thread; before, the server was deaf for the whole prefill).
import { test } from "node:test";
import assert from "node:assert/strict";
import { testModel } from "../helpers/models.js";
import { post, startServer } from "./server.js";

test("/health answers throughout a 4,000-token prefill and its decode", async (t) => {
  const srv = await startServer(await testModel({ type: "Q8_0", seed: 3 }), "--ctx-size", "8192", "--temp", "0");
  try {
    const prompt = Array.from({ length: 4000 }, (_, i) => 1000 + ((i * 7919) % 50000));
    let finished = false;
    const t0 = performance.now();
    const completion = post(`${srv.url}/v1/completions`, JSON.stringify({ model: srv.model, prompt, max_tokens: 16 })).then((r) => {
      finished = true;
      return r;
    });
    const during: number[] = [];
    while (!finished) {
      const s = performance.now();
      const r = await fetch(`${srv.url}/health`);
      assert.equal(r.status, 200);
      await r.text();
      if (!finished) during.push(performance.now() - s);
      await new Promise((r) => setTimeout(r, 10));
    }
    const r = await completion;
    assert.equal(r.status, 200, r.text);
    const totalMs = performance.now() - t0;
    during.sort((a, b) => a - b);
    const why = `${during.length} /health answers during a ${totalMs.toFixed(0)} ms request: p99 ${during[Math.floor(0.99 * (during.length - 1))]?.toFixed(1)} ms, worst ${during[during.length - 1]?.toFixed(1)} ms`;
    t.diagnostic(why);
    // Blocked, the server could answer only before the prefill began or after it ended: at most a couple.
    assert.ok(during.length >= 10, why);
    assert.ok(during[during.length - 1] < totalMs / 4, why);
  } finally {
    await srv.stop();
  }
});
