import { test } from "node:test";
import assert from "node:assert/strict";
import { bucketByExpert, softmaxTopK } from "../../src/models/routing.js";

test("softmaxTopK: softmax over all experts, top k in descending order, renormalised", () => {
  const logits = Float32Array.of(0, Math.log(3), Math.log(2), -10, /* token 1 */ 1, 1, 0, 0);
  const r = softmaxTopK(logits, 2, 4, 2, true);
  assert.deepEqual([...r.ids], [1, 2, 0, 1]);
  // token 0: probabilities 3 and 2 (of 6 + e^-10) -> renormalised 0.6, 0.4; token 1: tie keeps lower id first.
  assert.ok(Math.abs(r.weights[0] - 0.6) < 1e-6 && Math.abs(r.weights[1] - 0.4) < 1e-6);
  assert.ok(Math.abs(r.weights[2] - 0.5) < 1e-6 && Math.abs(r.weights[3] - 0.5) < 1e-6);
  const raw = softmaxTopK(logits, 2, 4, 2, false);
  const z = 1 + 3 + 2 + Math.exp(-10);
  assert.ok(Math.abs(raw.weights[0] - 3 / z) < 1e-6);
  assert.throws(() => softmaxTopK(logits, 2, 4, 5, true), /top-k 5 out of range/);
});

test("bucketByExpert: one bucket per expert with its token rows and weights, ids ascending", () => {
  const r = { nTokens: 3, k: 2, ids: Int32Array.of(5, 1, 1, 2, 5, 2), weights: Float32Array.of(0.7, 0.3, 0.6, 0.4, 0.9, 0.1) };
  const b = bucketByExpert(r);
  assert.deepEqual(b.map((x) => x.expert), [1, 2, 5]);
  assert.deepEqual([...b[0].rows], [0, 1]);
  assert.deepEqual([...b[0].scales].map((v) => +v.toFixed(6)), [0.3, 0.6]);
  assert.deepEqual([...b[1].rows], [1, 2]);
  assert.deepEqual([...b[2].rows], [0, 2]);
  assert.deepEqual([...b[2].scales].map((v) => +v.toFixed(6)), [0.7, 0.9]);
});
