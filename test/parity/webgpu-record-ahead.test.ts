// Decode tokens recorded ahead on the WebGPU backend (engine/record-ahead.ts, Backend.embedLater) on lavapipe:
// reference: the same model and sessions with --record-ahead off (each token recorded after the one before is
// sampled). Same tokens, same top logits bit for bit, same session state after every kind of end (length, a
// consumer that stops early, a continuation), greedy and seeded sampling. Backend level: ids that never come or
// are out of range fail it loudly, and host data past the staging buffer's size stays with its dispatch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { Session, type GenerateOptions, type GenerateStep } from "../../src/engine/session.js";
import { WebGpuBackend } from "../../src/backends/webgpu/webgpu.js";
import { F32 } from "../../src/quant/index.js";
import { smallVocabModel } from "../helpers/models.js";
import { gpuBackend, gpuDevice } from "../helpers/webgpu.js";
import { bufOf, randomValues } from "../helpers/parity.js";
import { sameBits } from "../helpers/numeric.js";

async function sessions(path: string) {
  const on = await loadModel(path, defaultEngineConfig({ backend: "webgpu", ctxSize: 64, prefetch: false, expertIo: "resident" }));
  const off = await loadModel(path, defaultEngineConfig({ backend: "webgpu", ctxSize: 64, prefetch: false, expertIo: "resident", recordAhead: false }));
  return { on, off, a: new Session(on, 64), b: new Session(off, 64) };
}

async function steps(s: Session, prompt: number[], opts: GenerateOptions, stopAfter = Infinity): Promise<GenerateStep[]> {
  const out: GenerateStep[] = [];
  for await (const st of s.generate(prompt, opts)) {
    out.push(st);
    if (out.length >= stopAfter) break; // the consumer stops early: the generator's finally runs
  }
  return out;
}

const state = (s: Session) => ({ tokens: [...s.tokens], pending: [...s.pending], cache: s.cache.length });

test("record ahead: the same tokens and top logits as recording after each sample, and the same session state after every kind of end", async () => {
  await gpuDevice();
  const path = await smallVocabModel({ type: "Q8_0", seed: 5, peaked: 2, nVocab: 2048 });
  const { on, off, a, b } = await sessions(path);
  try {
    const be = on.backend as WebGpuBackend;
    const prompt = on.tokenizer.encode("The quick brown fox");
    const greedy: GenerateOptions = { maxTokens: 8, sampling: { temperature: 0 }, topLogits: 4, stopAtEog: false };
    const same = (x: GenerateStep[], y: GenerateStep[], what: string) => {
      assert.deepEqual(x.map((s) => s.token), y.map((s) => s.token), `${what}: tokens`);
      assert.deepEqual(x.map((s) => s.topLogits), y.map((s) => s.topLogits), `${what}: top logits`);
    };
    let later = 0;
    const embedLater = be.embedLater.bind(be);
    be.embedLater = (...args) => (later++, embedLater(...args));
    same(await steps(a, prompt, greedy), await steps(b, prompt, greedy), "greedy");
    assert.equal(later, greedy.maxTokens - 1, "each token fed was recorded ahead, and none past the last (it stays pending)");
    assert.deepEqual(state(a), state(b), "after a generation that ran to max tokens");
    // A continuation feeds the pending token first.
    same(await steps(a, [], greedy), await steps(b, [], greedy), "continued");
    assert.deepEqual(state(a), state(b));
    // A consumer that stops after 3 tokens: the token recorded ahead runs and is taken back out.
    later = 0;
    same(await steps(a, [], greedy, 3), await steps(b, [], greedy, 3), "stopped early");
    assert.equal(later, 3, "the forward recorded for the third token ran too");
    assert.deepEqual(state(a), state(b), "after the consumer stopped");
    // Seeded sampling from a fresh context.
    a.reset();
    b.reset();
    const sampled: GenerateOptions = { maxTokens: 10, sampling: { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 7 }, topLogits: 4, stopAtEog: false };
    same(await steps(a, prompt, sampled), await steps(b, prompt, sampled), "sampled");
    assert.deepEqual(state(a), state(b));
    // One token: nothing is recorded ahead.
    const one = await steps(a, [], { ...greedy, maxTokens: 1 });
    assert.equal(one.length, 1);
    // A generator left suspended holds a token recorded ahead: the session refuses other work, by name, until it is returned.
    const gen = a.generate([], greedy);
    await gen.next();
    await assert.rejects(a.eval([1]), /a generation is still running .* call its return\(\) first/);
    assert.throws(() => a.truncate(0), /a generation is still running/);
    await gen.return(undefined as never);
    assert.ok((await a.eval([1])).length > 0, "usable again once returned");
    // Two sessions on one model generating at once: one records ahead while the other's tokens go the usual way
    // (the backend waits for one token's id at a time); each gives what it gives alone.
    const c = new Session(on, 64);
    for (const s of [a, c]) s.reset();
    later = 0;
    const both = await Promise.all([steps(a, prompt, greedy), steps(c, prompt, greedy)]);
    assert.ok(later > 0 && later < 2 * (greedy.maxTokens - 1), `${later} tokens recorded ahead of ${2 * (greedy.maxTokens - 1)} fed: some went the usual way`);
    b.reset();
    const alone = await steps(b, prompt, greedy);
    same(both[0], alone, "two at once (first)");
    same(both[1], alone, "two at once (second)");
    assert.deepEqual(state(a), state(b));
    assert.deepEqual(state(c), state(b));
  } finally {
    await on.close();
    await off.close();
  }
});

test("record ahead on a split GPU tier (--gpu-misses cpu): the same tokens and top logits as recording after each sample", async () => {
  await gpuDevice();
  const path = await smallVocabModel({ type: "Q8_0", seed: 7, peaked: 4, nVocab: 2048 });
  const cfg = { backend: "webgpu", ctxSize: 64, prefetch: false, expertIo: "resident", gpuMisses: "cpu", gpuAdmit: 1 } as const;
  const probe = await loadModel(path, defaultEngineConfig(cfg));
  const slotBytes = probe.experts.slotBytes, k = probe.model.info.nExpertUsed;
  await probe.close();
  const on = await loadModel(path, defaultEngineConfig({ ...cfg, gpuExpertCache: 2 * k * slotBytes }));
  const off = await loadModel(path, defaultEngineConfig({ ...cfg, gpuExpertCache: 2 * k * slotBytes, recordAhead: false }));
  try {
    assert.ok(on.gpuExperts?.host, on.expertIO.reason);
    let later = 0;
    const be = on.backend as WebGpuBackend, embedLater = be.embedLater.bind(be);
    be.embedLater = (...args) => (later++, embedLater(...args));
    const prompt = on.tokenizer.encode("The quick brown fox");
    const opts: GenerateOptions = { maxTokens: 8, sampling: { temperature: 0 }, topLogits: 4, stopAtEog: false };
    const [x, y] = [await steps(new Session(on, 64), prompt, opts), await steps(new Session(off, 64), prompt, opts)];
    assert.deepEqual(x.map((s) => s.token), y.map((s) => s.token));
    assert.deepEqual(x.map((s) => s.topLogits), y.map((s) => s.topLogits));
    assert.equal(later, opts.maxTokens! - 1, "each token fed was recorded ahead");
    assert.ok(on.gpuExperts!.stats.hostRuns > 0, "experts ran on the host");
  } finally {
    await on.close();
    await off.close();
  }
});

test("embedLater: ids that never come, or out of range, fail the backend with an error naming them; its work never runs", async () => {
  const cases: [() => Promise<Int32Array>, RegExp][] = [
    [() => Promise.reject(new Error("cancelled")), /embedLater: the token ids never came \(cancelled\)/],
    [() => Promise.resolve(Int32Array.of(99)), /embedLater: ids \[99\] are not 1 ids in \[0, 64\)/],
  ];
  for (const [ids, why] of cases) {
    const be = await gpuBackend();
    const table = be.upload({ name: "token_embd.weight", type: F32.type, shape: [32, 64], bytes: new Uint8Array(randomValues(32 * 64, "emb").buffer) });
    const out = be.alloc(32);
    be.embedLater(out, table, 1, ids());
    be.add(out, out, bufOf(be, randomValues(32, "y")), 32);
    await assert.rejects(be.read(out), why);
  }
});

test("webgpu addLater: values that come later land in order with the ops around the call (two pending, settling out of order); work recorded meanwhile waits for them", async () => {
  const be = await gpuBackend();
  const n = 48, a = randomValues(n, "wl-a"), b = randomValues(n, "wl-b"), c = randomValues(n, "wl-c"), d = randomValues(n, "wl-d");
  const x = bufOf(be, a), y = be.alloc(n);
  let give1!: (v: Float32Array) => void, give2!: (v: Float32Array) => void;
  void be.addLater(x, n, new Promise((r) => (give1 = r))); // a + b
  void be.addLater(x, n, new Promise((r) => (give2 = r))); // (a + b) + c
  be.write(y, d); // a staged write recorded after them
  be.add(x, x, y, n); // ((a + b) + c) + d
  const read = be.read(x);
  let done = false;
  void read.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false, "a read waits for the values");
  give2(c);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false, "still one value set to come");
  give1(b);
  const want = a.map((v, i) => Math.fround(Math.fround(Math.fround(v + b[i]) + c[i]) + d[i]));
  assert.ok(sameBits(await read, want), "x = ((a + b) + c) + d");
});

test("webgpu addLater then embedLater (record-ahead on a split tier): a read of work before the ids waits only for the values it reads, not for ids that only its result can give", async () => {
  const be = await gpuBackend();
  const n = 32, a = randomValues(n, "rw-a"), b = randomValues(n, "rw-b"), emb = randomValues(n * 64, "rw-emb");
  const table = be.upload({ name: "token_embd.weight", type: F32.type, shape: [n, 64], bytes: new Uint8Array(emb.buffer) });
  const x = bufOf(be, a), out = be.alloc(n);
  let give!: (v: Float32Array) => void, ids!: (v: Int32Array) => void;
  void be.addLater(x, n, new Promise((r) => (give = r))); // the host's expert sum of the last layer
  const logits = be.read(x); // this token's logits
  be.embedLater(out, table, 1, new Promise((r) => (ids = r))); // the next token, its id drawn from those logits
  be.add(out, out, x, n);
  give(b);
  const xv = await logits; // before the next token's id is in: waiting for it here would never end
  assert.ok(sameBits(xv, a.map((v, i) => Math.fround(v + b[i]))));
  assert.equal(be.waitingForIds, true);
  ids(Int32Array.of(5));
  const ov = await be.read(out);
  assert.ok(sameBits(ov, emb.subarray(5 * n, 6 * n).map((v, i) => Math.fround(v + xv[i]))), "the next token's work ran after its id came");
});

test("webgpu addLater: dropLateError forgets the error of values that never came (a failed forward's), so the next read does not throw it", async () => {
  const be = await gpuBackend();
  const x = bufOf(be, randomValues(16, "wl-d"));
  const settled = be.addLater(x, 16, Promise.reject(new Error("never")));
  await settled; // settles, not rejects, once the values are known never to come
  be.dropLateError();
  const got = await be.read(x);
  assert.ok(sameBits(got, randomValues(16, "wl-d")), "nothing added; no error thrown");
});

test("webgpu addLater: values that come later are added as a write then add would; values that never come (rejected, or too few) add nothing, the next read throws their error, and the backend goes on", async () => {
  const be = await gpuBackend();
  const n = 40, a = randomValues(n, "al-a"), b = randomValues(n, "al-b"), c = randomValues(n, "al-c");
  const x = bufOf(be, a);
  let give!: (v: Float32Array) => void;
  const settled = be.addLater(x, n, new Promise((r) => (give = r)));
  be.add(x, x, bufOf(be, c), n); // after: (a + b) + c
  const read = be.read(x);
  await new Promise((r) => setTimeout(r, 20));
  give(b);
  await settled;
  assert.ok(sameBits(await read, a.map((v, i) => Math.fround(Math.fround(v + b[i]) + c[i]))));
  // Rejected, or too few: nothing added, the error thrown by the next read, the backend goes on.
  for (const [values, why] of [[Promise.reject(new Error("expert 5 of layer 1: short read")), /expert 5 of layer 1: short read/], [Promise.resolve(new Float32Array(3)), /webgpu addLater: 3 values came for 40/]] as const) {
    const y = bufOf(be, a);
    void be.addLater(y, n, values);
    await assert.rejects(be.read(y), why);
    assert.ok(sameBits(await be.read(y), a), "unchanged");
  }
});

test("webgpu staging: host data past the staging buffer's size grows it within the submission; every dispatch reads its own", async () => {
  const be = await gpuBackend();
  const D = 4, rows = 300_000; // 1.2 MB of row ids: more than the 1 MiB staging buffer, placed after a dispatch's parameters
  const x = bufOf(be, randomValues(16 * D, "grow-x"));
  const first = be.alloc(2 * D), big = be.alloc(rows * D);
  be.gatherRows(first, x, Int32Array.of(3, 5), D); // recorded against the first staging buffer
  const ids = Int32Array.from({ length: rows }, (_, i) => (i * 7) % 16);
  be.gatherRows(big, x, ids, D);
  const [xv, f, g] = await be.readMany([x, first, big]);
  assert.deepEqual([...f], [...xv.subarray(3 * D, 4 * D), ...xv.subarray(5 * D, 6 * D)]);
  for (const i of [0, 1, 12345, rows - 1]) assert.deepEqual([...g.subarray(i * D, (i + 1) * D)], [...xv.subarray(ids[i] * D, (ids[i] + 1) * D)], `row ${i}`);
});
