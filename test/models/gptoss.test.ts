// gpt-oss's pieces against hand-computed values: the clamped SwiGLU, top-k-then-softmax routing, the sliding-window
// layer pattern and state sizes, the YaRN cos/sin gain of ARCHITECTURES.md §1.3; the metadata round trip of its presets.
// The tiny model decoding token by token (sliding states dropping positions) against its own batch forward, with
// streamed experts, prefetch and lookahead through the biased routers against the resident model, and on wasm; on the
// native and wasm kernels, decode token by token against their own batch forward, bit for bit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { ropeAngles } from "../../src/backends/backend.js";
import { cacheBytes, metadata, readHParams } from "../../src/models/gptoss.js";
import { ropeScalingParams } from "../../src/models/hparams.js";
import { topKSoftmaxRoute } from "../../src/models/routing.js";
import { PRESETS } from "../../src/gen/presets.js";
import { meta } from "../../src/format/gguf/write.js";
import { smallVocabModel } from "../helpers/models.js";
import { relRmse } from "../helpers/golden.js";
import { backendLogits, checkStreamedDecode, residentSteps, stepLogits } from "../helpers/decode.js";
import { sameBits } from "../helpers/numeric.js";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

test("swigluOai: min(g, 7) · σ(1.702 · min(g, 7)) · (clamp(u, ±7) + 1), in place over gate", async () => {
  const be = new ScalarBackend();
  const pairs: [number, number][] = [[1, 2], [10, -9], [-3, 8], [7.5, 7.5], [0, -1], [-20, 3]];
  const g = be.alloc(pairs.length), u = be.alloc(pairs.length);
  be.write(g, Float32Array.from(pairs, (p) => p[0]));
  be.write(u, Float32Array.from(pairs, (p) => p[1]));
  be.swigluOai(g, g, u, pairs.length, 1.702, 7);
  const want = [1 * sigmoid(1.702) * 3, 7 * sigmoid(7 * 1.702) * -6, -3 * sigmoid(-3 * 1.702) * 8, 7 * sigmoid(7 * 1.702) * 8, 0, -20 * sigmoid(-20 * 1.702) * 4];
  (await be.read(g)).forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-5 * Math.max(1, Math.abs(want[i])), `pair ${pairs[i]}: ${x} vs ${want[i]}`));
});

test("top-k of the raw logits, weighted by a softmax over those k only", () => {
  const r = topKSoftmaxRoute(5, 2)(Float32Array.of(0.5, 2, -1, 1.5, 3, /* token 2 */ 0, 0, 4, 0, 4), 2);
  assert.deepEqual([...r.ids], [4, 1, 2, 4], "descending, ties to the lower id");
  const e = Math.E;
  [e / (e + 1), 1 / (e + 1), 0.5, 0.5].forEach((w, i) => assert.ok(Math.abs(r.weights[i] - w) < 1e-6, `weight ${i}`));
});

test("presets round-trip through metadata; even layers slide by default; the state is the full layers' KV plus small windows", () => {
  for (const name of ["gpt-oss-tiny", "gpt-oss-20b", "gpt-oss-120b"] as const) {
    const hp = PRESETS[name].hp;
    assert.deepEqual(readHParams(metadata(hp), hp.nVocab), hp, name);
  }
  const hp = PRESETS["gpt-oss-20b"].hp;
  const md = metadata(hp);
  assert.equal(md.has("gpt-oss.attention.sliding_window_pattern"), false, "the default pattern is not written");
  md.set("gpt-oss.attention.sliding_window_pattern", meta.u32(3));
  assert.deepEqual(readHParams(md, hp.nVocab).swa.slice(0, 6), [true, true, false, true, true, false], "period 3: every third layer full");
  // 12 full layers of 8 kv heads x 64 (f32 K and V; ARCHITECTURES.md §5: 24 KiB a token at f16) + 12 windows of
  // 2 x 255 rows and a 127-row checkpoint.
  const n = 4096, kv = 8 * 64;
  assert.equal(cacheBytes(hp, n), 12 * 2 * 4 * n * kv + 12 * 2 * 4 * (2 * 255 + 127) * kv);
});

test("YaRN x32 (gpt-oss): attn_factor 1, cos/sin gain 1 + 0.1 ln 32 = 1.3466", () => {
  const p = ropeScalingParams(PRESETS["gpt-oss-20b"].hp);
  assert.equal(p.freqScale, 1 / 32);
  assert.ok(Math.abs(p.attnFactor - 1) < 1e-12);
  const { cos, sin } = ropeAngles(64, 150000, p.yarn)(0, 0);
  assert.ok(Math.abs(cos - (1 + 0.1 * Math.log(32))) < 1e-9 && Math.abs(cos - 1.3466) < 1e-4 && sin === 0);
});

// 20 tokens: the window of 8 slides many times.
const TOKENS = [3555, 11, 1879, 374, 13, 2701, 40, 1001, 17, 600, 2048, 5, 88, 3000, 12, 9, 264, 1273, 315, 279];

test("gpt-oss decode token by token equals the batch forward; streamed with prefetch and 2-layer lookahead equals resident", async () => {
  const path = await smallVocabModel({ preset: "gpt-oss-tiny", type: "Q8_0", seed: 3, nVocab: 4096 }); // the load tests'
  const ref = await residentSteps(path, TOKENS, async (lm, steps) => {
    const batch = await lm.model.forward(Int32Array.from(TOKENS), lm.model.makeCache(64), { logits: "all" });
    const V = lm.model.info.nVocab;
    steps.forEach((l, i) => assert.deepEqual(l, batch.subarray(i * V, (i + 1) * V), `position ${i}`));
  });
  // 6 expert records (3 x 69632 B of Q8_0 + 3 KiB of biases, a page-rounded 212992 B): fewer than one token's 16.
  await checkStreamedDecode(path, TOKENS, 6 * 212_992, ref);
});

test("gpt-oss on the wasm backend (attention with sinks and windows, the clamped SwiGLU, biases and matmuls in wasm) matches the scalar reference", async () => {
  const path = await smallVocabModel({ preset: "gpt-oss-tiny", type: "F16", seed: 11, nVocab: 8192 }); // the golden test's
  const err = relRmse(await backendLogits(path, "wasm", TOKENS), await backendLogits(path, "scalar", TOKENS));
  assert.ok(err < 1e-4, `relative RMSE ${err.toExponential(3)}`);
});

test("gpt-oss on the native and wasm kernels: decode token by token equals the batch forward bit for bit (MXFP4 experts)", async () => {
  // Decode runs 2 (token, kv head) attention items (native: three passes), the batch 40 (one pass): the same bits.
  const path = await smallVocabModel({ preset: "gpt-oss-tiny", type: "Q8_0", expertType: "MXFP4", seed: 3, nVocab: 4096 });
  for (const backend of ["native", "wasm"] as const) {
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend, expertIo: "resident" }));
    try {
      const steps = await stepLogits(lm, TOKENS);
      const batch = await lm.model.forward(Int32Array.from(TOKENS), lm.model.makeCache(64), { logits: "all" });
      const V = lm.model.info.nVocab;
      steps.forEach((l, i) => assert.ok(sameBits(l, batch.subarray(i * V, (i + 1) * V)), `${backend}: position ${i}`));
    } finally {
      await lm.close();
    }
  }
});
