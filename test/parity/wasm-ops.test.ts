// WebAssembly rmsNorm, add and swiglu held to the scalar reference (odd shapes, in place), the ops the wasm
// backend leaves to its fallback unchanged, and end to end: the tiny model on the wasm backend gives logits
// close to the scalar backend's and the same greedy tokens.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WasmBackend, wasmAvailable, wasmKernelsError } from "../../src/backends/wasm/wasm.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend, Buf } from "../../src/backends/backend.js";
import { F32 } from "../../src/quant/index.js";
import { Stream } from "../../src/gen/random.js";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import { KVCache } from "../../src/kv/kv-cache.js";
import { nmse, sameBits } from "../helpers/numeric.js";
import { testModel } from "../helpers/models.js";

function wasm(): WasmBackend {
  assert.ok(wasmAvailable(), `WebAssembly SIMD is required: ${wasmKernelsError()}`);
  return new WasmBackend({ fallback: new ScalarBackend() });
}

function rand(len: number, seed: string, scale = 1): Float32Array {
  const x = new Float32Array(len);
  new Stream(13, seed).fillUniform(x, scale);
  return x;
}

function buf(be: Backend, x: Float32Array): Buf {
  const b = be.alloc(x.length);
  be.write(b, x);
  return b;
}

const TOL_EXACTISH = 1e-6; // as the native ops: f32 SIMD sums vs the reference's f64

test("wasm rmsNorm matches the scalar backend (also in place)", async (t) => {
  const scalar = new ScalarBackend(), be = wasm();
  let worst = 0;
  for (const [len, rows] of [[2048, 1], [2048, 17], [128, 36], [45, 3], [7, 1]]) {
    const x = rand(len * rows, `rms-x-${len}-${rows}`, 3);
    const hw = { name: "norm", type: F32.type, shape: [len], bytes: new Uint8Array(rand(len, `rms-w-${len}`).buffer) };
    const ref = buf(scalar, x);
    scalar.rmsNorm(ref, ref, scalar.upload(hw), 1e-6, len, rows);
    const w = be.upload(hw), xb = buf(be, x), out = be.alloc(len * rows);
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
    const a = rand(n, `a-${n}`, 4), b = rand(n, `b-${n}`, 2);
    for (const op of ["add", "swiglu"] as const) {
      const ra = buf(scalar, a);
      scalar[op](ra, ra, buf(scalar, b), n);
      const wa = buf(be, a), wb = buf(be, b), out = be.alloc(n);
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

test("ops left to the fallback (embed, rope, attention, rows) give the scalar backend's bits; buffers mix with it", async () => {
  const scalar = new ScalarBackend(), be = wasm();
  const q = rand(3 * 4 * 16, "q"), k = rand(5 * 2 * 16, "k"), v = rand(5 * 2 * 16, "v");
  const run = async (b: Backend) => {
    const qb = buf(b, q);
    b.rope(qb, Int32Array.of(2, 3, 4), 4, 16, 1e4);
    const o = b.alloc(3 * 4 * 16);
    b.attention(o, qb, buf(b, k), buf(b, v), { nTokens: 3, startPos: 2, nHead: 4, nHeadKv: 2, headDim: 16, scale: 0.25 });
    const g = b.alloc(2 * 64);
    b.gatherRows(g, o, Int32Array.of(2, 0), 64);
    b.scatterAddRows(o, g, Int32Array.of(1, 1), Float32Array.of(0.5, 2), 64);
    return b.read(o);
  };
  assert.ok(sameBits(await run(be), await run(scalar)));
  const table = { name: "embd", type: F32.type, shape: [16, 4], bytes: new Uint8Array(rand(64, "embd").buffer) };
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
        const hp = lm.model.hp;
        const kv = new KVCache(lm.backend, hp.nLayer, 64, hp.nHeadKv * hp.headDim);
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
