// WebAssembly rmsNorm, add, swiglu, rope and attention held to the scalar reference (odd shapes, in place), the
// ops the wasm backend leaves to its fallback unchanged, and end to end: the tiny model on the wasm backend gives logits
// close to the scalar backend's and the same greedy tokens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WasmBackend, wasmAvailable, wasmKernelsError } from "../../src/backends/wasm/wasm.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend } from "../../src/backends/backend.js";
import { F32 } from "../../src/quant/index.js";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import { randomValues, bufOf } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";
import { testModel } from "../helpers/models.js";

function wasm(): WasmBackend {
  assert.ok(wasmAvailable(), `WebAssembly SIMD is required: ${wasmKernelsError()}`);
  return new WasmBackend({ fallback: new ScalarBackend() });
}

const TOL_EXACTISH = 1e-6; // as the native ops: f32 SIMD sums vs the reference's f64

test("wasm rmsNorm matches the scalar backend (also in place)", async (t) => {
  const scalar = new ScalarBackend(), be = wasm();
  let worst = 0;
  for (const [len, rows] of [[2048, 1], [2048, 17], [128, 36], [45, 3], [7, 1]]) {
    const x = randomValues(len * rows, `rms-x-${len}-${rows}`, 3);
    const hw = { name: "norm", type: F32.type, shape: [len], bytes: new Uint8Array(randomValues(len, `rms-w-${len}`).buffer) };
    const ref = bufOf(scalar, x);
    scalar.rmsNorm(ref, ref, scalar.upload(hw), 1e-6, len, rows);
    const w = be.upload(hw), xb = bufOf(be, x), out = be.alloc(len * rows);
    be.rmsNorm(out, xb, w, 1e-6, len, rows);
    be.rmsNorm(xb, xb, w, 1e-6, len, rows);
    const got = await be.read(out);
    assert.ok(sameBits(got, await be.read(xb)), "in place differs");
    const e = nmse(got, await scalar.read(ref));
    worst = Math.max(worst, e);
    assert.ok(e < TOL_EXACTISH, `len ${len} rows ${rows}: nmse ${e.toExponential(2)}`);
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("wasm add and swiglu match the scalar backend (also in place)", async (t) => {
  const scalar = new ScalarBackend(), be = wasm();
  let worst = 0;
  for (const n of [1, 3, 768, 2051, 8 * 768 + 5]) {
    const a = randomValues(n, `a-${n}`, 4), b = randomValues(n, `b-${n}`, 2);
    if (n > 4) a.set([100, -100, 1000, -1000, 0]); // exp under- and overflow in silu
    for (const op of ["add", "swiglu"] as const) {
      const ra = bufOf(scalar, a);
      scalar[op](ra, ra, bufOf(scalar, b), n);
      const wa = bufOf(be, a), wb = bufOf(be, b), out = be.alloc(n);
      be[op](out, wa, wb, n);
      be[op](wa, wa, wb, n);
      const got = await be.read(out);
      assert.ok(sameBits(got, await be.read(wa)), `${op} in place differs`);
      const e = nmse(got, await scalar.read(ra));
      worst = Math.max(worst, e);
      assert.ok(e < TOL_EXACTISH, `${op} n=${n}: nmse ${e.toExponential(2)}`);
    }
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("wasm partial rope (first nRot of each head, rest passed through) matches the scalar backend", async (t) => {
  const scalar = new ScalarBackend(), be = wasm();
  let worst = 0;
  for (const [nTok, nHead, hd, nRot] of [[1, 8, 128, 64], [5, 4, 128, 64], [3, 2, 64, 16], [2, 3, 12, 2]]) {
    const x = randomValues(nTok * nHead * hd, `prope-${nTok}-${nHead}-${nRot}`, 2);
    const pos = Int32Array.from({ length: nTok }, (_, i) => 700 + 37 * i);
    const a = bufOf(scalar, x), b = bufOf(be, x);
    scalar.rope(a, pos, nHead, hd, 1e6, nRot);
    be.rope(b, pos, nHead, hd, 1e6, nRot);
    const got = await be.read(b);
    const e = nmse(got, await scalar.read(a));
    worst = Math.max(worst, e);
    assert.ok(e < TOL_EXACTISH, `rope T=${nTok} heads ${nHead} nRot ${nRot}: nmse ${e.toExponential(2)}`);
    for (let r = 0; r < nTok * nHead; r++) assert.ok(sameBits(got.subarray(r * hd + nRot, (r + 1) * hd), x.subarray(r * hd + nRot, (r + 1) * hd)), "unroped values changed");
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

const TOL_ATTN = 1e-5; // as the native attention: f32 dot products, a polynomial exp and f32 V sums vs the reference's f64

test("wasm rope matches the scalar backend", async (t) => {
  const scalar = new ScalarBackend(), be = wasm();
  let worst = 0;
  for (const [nTok, nHead, hd] of [[1, 32, 128], [5, 4, 128], [3, 2, 64], [2, 3, 6]]) {
    const x = randomValues(nTok * nHead * hd, `rope-${nTok}-${nHead}-${hd}`, 2);
    const pos = Int32Array.from({ length: nTok }, (_, i) => 700 + 37 * i);
    const a = bufOf(scalar, x), b = bufOf(be, x);
    scalar.rope(a, pos, nHead, hd, 1e6);
    be.rope(b, pos, nHead, hd, 1e6);
    const e = nmse(await be.read(b), await scalar.read(a));
    worst = Math.max(worst, e);
    assert.ok(e < TOL_EXACTISH, `rope T=${nTok} heads ${nHead} hd ${hd}: nmse ${e.toExponential(2)}`);
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("wasm attention matches the scalar backend (GQA, batches, long and short contexts, odd head sizes)", async (t) => {
  const scalar = new ScalarBackend(), be = wasm();
  let worst = 0;
  const cases = [
    { nTokens: 1, startPos: 0, nHead: 4, nHeadKv: 2, headDim: 128 }, // one key
    { nTokens: 1, startPos: 700, nHead: 32, nHeadKv: 4, headDim: 128 }, // decode, a3b heads
    { nTokens: 17, startPos: 5, nHead: 8, nHeadKv: 2, headDim: 64 }, // a prefill batch after a prefix
    { nTokens: 3, startPos: 2, nHead: 3, nHeadKv: 3, headDim: 12 }, // head size not a multiple of 16
  ];
  for (const c of cases) {
    const nKeys = c.startPos + c.nTokens, kvDim = c.nHeadKv * c.headDim;
    const q = randomValues(c.nTokens * c.nHead * c.headDim, `aq-${nKeys}`, 3), k = randomValues(nKeys * kvDim + 5 * kvDim, `ak-${nKeys}`, 3), v = randomValues(nKeys * kvDim + 5 * kvDim, `av-${nKeys}`);
    const p = { ...c, scale: 1 / Math.sqrt(c.headDim) };
    const run = async (b: Backend) => {
      const o = b.alloc(c.nTokens * c.nHead * c.headDim);
      b.attention(o, bufOf(b, q), bufOf(b, k), bufOf(b, v), p);
      return b.read(o);
    };
    const e = nmse(await run(be), await run(scalar));
    worst = Math.max(worst, e);
    assert.ok(e < TOL_ATTN, `${JSON.stringify(c)}: nmse ${e.toExponential(2)}`);
  }
  // Peaked scores (most weights underflow in exp) still normalise.
  const q = new Float32Array(128).fill(0), k = randomValues(9 * 128, "pk", 1), v = randomValues(9 * 128, "pv", 1);
  q[0] = 400;
  const p = { nTokens: 1, startPos: 8, nHead: 1, nHeadKv: 1, headDim: 128, scale: 1 };
  const run = async (b: Backend) => {
    const o = b.alloc(128);
    b.attention(o, bufOf(b, q), bufOf(b, k), bufOf(b, v), p);
    return b.read(o);
  };
  const e = nmse(await run(be), await run(scalar));
  assert.ok(e < TOL_ATTN, `peaked: nmse ${e.toExponential(2)}`);
  t.diagnostic(`worst nmse ${Math.max(worst, e).toExponential(2)}`);
});

test("wasm addRows equals the scalar backend bit for bit (f32 adds, the bias in wasm memory); a 1-D weight matmul within rounding", async () => {
  const scalar = new ScalarBackend(), be = wasm();
  const vec = (b: Backend, name: string, vals: Float32Array) => b.upload({ name, type: F32.type, shape: [vals.length], bytes: new Uint8Array(vals.buffer) });
  const bias = randomValues(96, "bias"), x = randomValues(5 * 96, "bx");
  const addRows = async (b: Backend) => {
    const o = bufOf(b, x);
    b.addRows(o, vec(b, "b", bias), 96, 5);
    return b.read(o);
  };
  assert.ok(sameBits(await addRows(be), await addRows(scalar)), "addRows");
  const mv = async (b: Backend) => {
    const o = b.alloc(5);
    b.matmul(o, vec(b, "g", bias), bufOf(b, x), 5);
    return b.read(o);
  };
  assert.ok(nmse(await mv(be), await mv(scalar)) < TOL_EXACTISH, "1-D weight matmul");
});

test("ops left to the fallback (embed, kvStore, rows) give the scalar backend's bits; buffers mix with it", async () => {
  const scalar = new ScalarBackend(), be = wasm();
  const x = randomValues(3 * 64, "rows"), kv = randomValues(2 * 64, "kv");
  const run = async (b: Backend) => {
    const xb = bufOf(b, x), kc = b.alloc(4 * 64), vc = b.alloc(4 * 64);
    b.kvStore(kc, vc, bufOf(b, kv), bufOf(b, kv), 1, 2, 64);
    const g = b.alloc(2 * 64);
    b.gatherRows(g, xb, Int32Array.of(2, 0), 64);
    b.scatterAddRows(xb, g, Int32Array.of(1, 1), Float32Array.of(0.5, 2), 64);
    return [...(await b.read(xb)), ...(await b.read(kc)), ...(await b.read(vc))];
  };
  assert.deepEqual(await run(be), await run(scalar));
  const table = { name: "embd", type: F32.type, shape: [16, 4], bytes: new Uint8Array(randomValues(64, "embd").buffer) };
  const e1 = be.alloc(32), e2 = scalar.alloc(32);
  be.embed(e1, be.upload(table), Int32Array.of(3, 1));
  scalar.embed(e2, scalar.upload(table), Int32Array.of(3, 1));
  assert.ok(sameBits(await be.read(e1), await scalar.read(e2)), "embed from wasm memory");
});

for (const type of ["Q8_0", "Q4_K"]) {
  test(`tiny ${type} model end to end: wasm logits close to scalar, same greedy tokens`, async (t) => {
    const path = await testModel({ type, seed: 5, peaked: 4 });
    const prompt = "The quick brown fox";
    const runs = await Promise.all((["scalar", "wasm"] as const).map(async (backend) => {
      const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend, expertIo: "resident" }));
      try {
        assert.equal(lm.backend.name, backend);
        const toks = lm.tokenizer.encode(prompt);
        const hp = lm.model.info;
        const kv = lm.model.makeCache(64);
        const logits = await lm.model.forward(Int32Array.from(toks), kv, { logits: "all" });
        const s = new Session(lm);
        const greedy: number[] = [];
        for await (const step of s.generate(toks, { maxTokens: 12, sampling: { temperature: 0 }, stopAtEog: false })) greedy.push(step.token);
        return { logits, greedy };
      } finally {
        await lm.close();
      }
    }));
    const e = nmse(runs[1].logits, runs[0].logits);
    t.diagnostic(`logits nmse wasm vs scalar ${e.toExponential(2)}`);
    assert.ok(e < 5e-4, `logits nmse ${e.toExponential(2)}`);
    assert.deepEqual(runs[1].greedy, runs[0].greedy);
  });
}

test("wasm streams experts through a binding tier of fixed size: logits equal resident bit for bit, memory stops growing", async () => {
  const path = await testModel({ type: "Q8_0", seed: 5, peaked: 4 });
  const prompt = "Streamed experts are copied into wasm memory once per miss";
  // Token by token on both sides, so only where the experts come from differs.
  const steps = async (lm: LoadedModel, after?: (t: number) => void) => {
    const cache = lm.model.makeCache(64);
    const out: Float32Array[] = [];
    for (const [t, id] of lm.tokenizer.encode(prompt).entries()) {
      out.push(await lm.model.forward(Int32Array.of(id), cache, { logits: "last" }));
      after?.(t);
    }
    return out;
  };
  const resident = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend: "wasm", expertIo: "resident" }));
  let want: Float32Array[];
  let slotBytes: number;
  try {
    want = await steps(resident);
    slotBytes = resident.experts.slotBytes;
  } finally {
    await resident.close();
  }
  // 6 slots, far fewer than the model's 64 experts: slots are reused many times over.
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend: "wasm", expertIo: "stream", expertCache: 2 * 6 * slotBytes, prefetch: false }));
  try {
    assert.equal(lm.experts.nSlots, 6, "an --expert-cache pays for the host slot and the wasm copy");
    const be = lm.backend as WasmBackend;
    let used = 0;
    const got = await steps(lm, (t) => {
      const now = be.memories.reduce((a, b) => a + b, 0);
      if (t > 0) assert.equal(now, used, `wasm memory grew at token ${t}`);
      used = now;
    });
    assert.ok(lm.experts.stats.misses > 6 * 4, `slots were reused (${lm.experts.stats.misses} misses)`);
    got.forEach((r, t) => assert.ok(sameBits(r, want[t]), `position ${t}`));
  } finally {
    await lm.close();
  }
});
