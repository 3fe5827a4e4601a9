// The library API from the package entry: loadModel -> generate / chat as async iterators of {token, text},
// calls queued one at a time with results equal to running alone and to the engine in this thread, AbortSignal,
// sessions from the model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EngineSession, defaultEngineConfig, loadEngineModel, loadModel, type GenerateStep } from "../../src/index.js";
import { testModel } from "../helpers/models.js";

async function collect(it: AsyncGenerator<GenerateStep, unknown>): Promise<{ tokens: number[]; text: string }> {
  const tokens: number[] = [];
  let text = "";
  for await (const s of it) {
    tokens.push(s.token);
    text += s.text;
  }
  return { tokens, text };
}

test("loadModel + generate/chat: deltas join to the decoded text; concurrent calls equal sequential ones", async () => {
  const model = await loadModel(await testModel({ type: "Q8_0", seed: 5, peaked: 2 }), { ctxSize: 128 });
  try {
    const opts = { maxTokens: 10, sampling: { temperature: 0 }, stopAtEog: false };
    const a = await collect(model.generate("The capital of France is", opts));
    assert.equal(a.tokens.length, 10);
    assert.equal(a.text, model.tokenizer.decode(a.tokens));
    // Same as the engine run in this thread (no host) over the same tokens.
    const lm = await loadEngineModel(model.path, defaultEngineConfig({ ctxSize: 128 }));
    const s = new EngineSession(lm);
    const ref: number[] = [];
    for await (const st of s.generate(model.tokenizer.encode("The capital of France is", { parseSpecial: true }), opts)) ref.push(st.token);
    assert.deepEqual(a.tokens, ref);
    s.free();
    await lm.close();

    const c = await collect(model.chat([{ role: "user", content: "Hi there" }], opts));
    const [x, y] = await Promise.all([collect(model.generate("The capital of France is", opts)), collect(model.chat([{ role: "user", content: "Hi there" }], opts))]);
    assert.deepEqual(x.tokens, a.tokens);
    assert.deepEqual(y.tokens, c.tokens);

    const ac = new AbortController();
    const seen: number[] = [];
    const it = model.generate("Count with me: one two", { maxTokens: 50, signal: ac.signal, stopAtEog: false });
    for await (const st of it) {
      seen.push(st.token);
      if (seen.length === 3) ac.abort();
    }
    assert.equal(seen.length, 3);
  } finally {
    await model.close();
  }
});
