// glm4moe decoding one token at a time with streamed experts, prefetch and router lookahead on (the lookahead
// routers are the MoE layers' only: the dense lead layer has none), under a cache too small for all experts:
// logits identical to the resident model's at every step. And the wasm backend against the scalar reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { smallVocabModel } from "../helpers/models.js";
import { relRmse } from "../helpers/golden.js";
import { backendLogits, checkStreamedDecode, residentSteps } from "../helpers/decode.js";

const TOKENS = [3555, 11, 1879, 374, 13, 2701, 40, 1001, 17, 600, 2048, 5, 88, 3000, 12, 9];

test("glm4moe decode with streamed experts, prefetch and 2-layer router lookahead equals the resident model step by step", async () => {
  const path = await smallVocabModel({ preset: "glm4moe-tiny", type: "Q8_0", seed: 3, nVocab: 4096 });
  // 6 expert records of ~204 KiB: fewer than one token's 8 (4 per MoE layer, 2 layers) plus what lookahead asks for.
  await checkStreamedDecode(path, TOKENS, 6 * 208_896, await residentSteps(path, TOKENS));
});

test("glm4moe on the wasm backend (partial rope through its kernel, biases, shared expert) matches the scalar reference", async () => {
  // F16: the wasm Q8_0 matmul quantises activations (as llama.cpp does) and the reference does not, which a
  // random tiny model's routing amplifies; F16 compares the kernels themselves.
  const path = await smallVocabModel({ preset: "glm4moe-tiny", type: "F16", seed: 11, nVocab: 8192 });
  // wasm sums in f32 where the reference uses f64: a relative RMSE of a few 1e-6 (bound with margin).
  const err = relRmse(await backendLogits(path, "wasm", TOKENS), await backendLogits(path, "scalar", TOKENS));
  assert.ok(err < 1e-4, `relative RMSE ${err.toExponential(3)}`);
});
