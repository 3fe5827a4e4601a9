// Library options checked with the CLI's option table: typed UsageErrors naming the option and what it
// takes, unknown names refused with a suggestion, strings parsed as the flag parses them; generation
// options likewise; a closed model refuses every call.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { loadModel, UsageError, type LoadOptions, type ModelGenerateOptions } from "../../src/index.js";
import { validateGenerateOptions, validateLoadOptions } from "../../src/engine/config.js";
import { closest } from "../../src/util/suggest.js";
import { testModel } from "../helpers/models.js";

const usage = (code: string, re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof UsageError, `a UsageError, got ${String(e)}`);
  assert.equal(e.code, code);
  assert.match(e.message, re);
  return true;
};
const GiB = 2 ** 30;

test("load options: wrong values, unknown names and types are refused naming the option and what it takes", () => {
  const bad: [unknown, string, RegExp][] = [
    [{ backend: "gpu" }, "bad_option", /^--backend \(backend\) must be one of auto, cpu, native, wasm, webgpu, scalar, got 'gpu'$/],
    [{ ctxSize: -5 }, "bad_option", /^--ctx-size \(ctxSize\) must be an integer in \[0, 16777216\], got '-5'$/],
    [{ ctxSize: 0.5 }, "bad_option", /^--ctx-size \(ctxSize\) must be an integer/],
    [{ threds: 1 }, "unknown_option", /^unknown load option 'threds' \(did you mean threads\?\); known: backend, threads, ctxSize, /],
    [{ ctx_size: 1 }, "unknown_option", /did you mean ctxSize\?/],
    [{ onprogress: () => {} }, "unknown_option", /did you mean onProgress\?/],
    [{ flux: 1 }, "unknown_option", /^unknown load option 'flux'; known: /],
    [{ memBudget: "8 gigs" }, "bad_option", /^--mem-budget \(memBudget\) must be a size like 512M or 8G, got '8 gigs'$/],
    [{ memBudget: -1 }, "bad_option", /^--mem-budget \(memBudget\) must be a size/],
    [{ memBudget: true }, "bad_option", /^--mem-budget \(memBudget\) must be a number or a string as the flag takes, got boolean$/],
    [{ prefetch: 1 }, "bad_option", /^--prefetch \(prefetch\) must be a boolean or a string as the flag takes, got number$/],
    [{ threads: null }, "bad_option", /^--threads \(threads\) must be a number .* got null$/],
    [{ expertPolicy: "mru" }, "bad_option", /^--expert-policy \(expertPolicy\): unknown eviction policy 'mru' \(known: lru, /],
    [{ expertPolicy: "slru:protect=0.5" }, "bad_option", /policy slru has no parameter 'protect'/],
    [{ onProgress: 5 }, "bad_option", /^onProgress must be a function, got 5$/],
    [null, "bad_option", /^load options must be an object, got null$/],
  ];
  for (const [o, code, re] of bad) assert.throws(() => validateLoadOptions(o), usage(code, re), JSON.stringify(o));
});

test("load options: strings are parsed as the flags parse them; numbers and booleans pass through; undefined means the default", () => {
  assert.deepEqual(validateLoadOptions({ memBudget: "8G", expertCache: "512M", threads: "4", prefetch: "off", backend: "scalar" }), {
    memBudget: 8 * GiB, expertCache: 512 * 2 ** 20, threads: 4, prefetch: false, backend: "scalar",
  });
  assert.deepEqual(validateLoadOptions({ memBudget: 3 * GiB, ctxSize: 256, verifyExperts: true, expertPolicy: "lfu-decay:decay=0.9", threads: undefined, onProgress: () => {} }), {
    memBudget: 3 * GiB, ctxSize: 256, verifyExperts: true, expertPolicy: "lfu-decay:decay=0.9",
  });
  assert.deepEqual(validateLoadOptions(undefined), {});
});

test("loadModel checks its options before touching the file; a size string is accepted", async () => {
  const nowhere = join(tmpdir(), "moestream-no-such-model.gguf");
  await assert.rejects(loadModel(nowhere, { backend: "gpu" } as unknown as LoadOptions), usage("bad_option", /--backend \(backend\) must be one of/));
  await assert.rejects(loadModel(nowhere, { threds: 1 } as unknown as LoadOptions), usage("unknown_option", /did you mean threads\?/));
  const model = await loadModel(await testModel({ type: "Q8_0", seed: 3 }), { memBudget: "8G", backend: "scalar" });
  try {
    assert.equal(model.config.memBudget, 8 * GiB);
    // No ctxSize: the tiny model's training context (4096), well inside 1/8 of 8 GiB.
    assert.equal(model.config.ctxSize, 4096);
    assert.equal(model.contextReason, "context 4096 tokens (--ctx-size 0: the model's training context)");
    assert.equal(model.createSession().nCtx, 4096);
  } finally {
    await model.close();
  }
});

test("generation options: unknown names suggested, maxTokens and counts in range, types checked", () => {
  const bad: [unknown, string, RegExp][] = [
    [{ maxTokns: 5 }, "unknown_option", /^unknown generation option 'maxTokns' \(did you mean maxTokens\?\); known: maxTokens, /],
    [{ max_tokens: 5 }, "unknown_option", /did you mean maxTokens\?/],
    [{ maxTokens: -1 }, "bad_option", /^maxTokens must be an integer >= 0, got -1$/],
    [{ maxTokens: 1.5 }, "bad_option", /^maxTokens must be an integer >= 0, got 1.5$/],
    [{ maxTokens: "64" }, "bad_option", /^maxTokens must be an integer >= 0, got "64"$/],
    [{ logprobs: -2 }, "bad_option", /^logprobs must be an integer >= 0/],
    [{ stopAtEog: "no" }, "bad_option", /^stopAtEog must be true or false, got "no"$/],
    [{ signal: {} }, "bad_option", /^signal must be an AbortSignal/],
    [{ onPrefill: true }, "bad_option", /^onPrefill must be a function/],
    [{ sampling: { top_k: 5 } }, "SAMPLER_BAD_OPTION", /^unknown sampling option "top_k" \(did you mean topK\?\)/],
    [{ sampling: { temperature: -1 } }, "SAMPLER_BAD_OPTION", /^temperature must be >= 0, got -1$/],
    [{ template: { enable_thinking: false } }, "unknown_option", /^unknown template option 'enable_thinking' \(did you mean enableThinking\?\)/],
    [{ template: { enableThinking: "no" } }, "bad_option", /^template\.enableThinking must be true or false/],
    [7, "bad_option", /^generation options must be an object, got number$/],
  ];
  for (const [o, code, re] of bad) assert.throws(() => validateGenerateOptions(o), usage(code, re), JSON.stringify(o));
  validateGenerateOptions({ maxTokens: 0, sampling: { temperature: 0, topK: 5 }, stopAtEog: false, signal: new AbortController().signal, topLogits: 3, logprobs: 2, onPrefill: () => {}, template: { enableThinking: false, tools: [] } });
});

test("a closed model refuses generate, chat, createSession and loadSession with model_closed; close twice is fine", async () => {
  const model = await loadModel(await testModel({ type: "Q8_0", seed: 3 }), { ctxSize: 64 });
  // Bad generation options are refused when the call is made, before it queues.
  assert.throws(() => model.generate("Hi", { maxTokns: 5 } as unknown as ModelGenerateOptions), usage("unknown_option", /did you mean maxTokens\?/));
  let n = 0;
  for await (const _ of model.generate("Hi", { maxTokens: 2, stopAtEog: false })) n++;
  assert.equal(n, 2);
  await model.close();
  const closed = usage("model_closed", /^the model is closed/);
  assert.throws(() => model.generate("Hi"), closed);
  assert.throws(() => model.chat([{ role: "user", content: "Hi" }]), closed);
  assert.throws(() => model.createSession(), closed);
  await assert.rejects(model.loadSession(join(tmpdir(), "x.session")), closed);
  await model.close();
});

test("suggestions: near names only", () => {
  assert.equal(closest("threds", ["threads", "ctxSize"]), "threads");
  assert.equal(closest("THREADS", ["threads"]), "threads");
  assert.equal(closest("memory", ["memBudget", "threads"]), undefined);
});
