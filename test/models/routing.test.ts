import { test } from "node:test";
import assert from "node:assert/strict";
import { bucketByExpert, groupTopKRoute, softmaxTopK } from "../../src/models/routing.js";

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

const sig = (x: number) => 1 / (1 + Math.exp(-x));
const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) < tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

test("groupTopKRoute sigmoid: top k by sigmoid score, weights renormalised then scaled", () => {
  const logits = Float32Array.of(0, Math.log(3), -Math.log(3), 2);
  const r = groupTopKRoute({ nExpert: 4, k: 2, gating: "sigmoid", normalize: true, scale: 2.5 })(logits, 1);
  assert.deepEqual([...r.ids], [3, 1]);
  const s3 = sig(2), s1 = 0.75;
  close(r.weights, [(2.5 * s3) / (s3 + s1), (2.5 * s1) / (s3 + s1)]);
  // No normalisation, scale 1 (or 0, llama.cpp's "none"): the raw sigmoid scores.
  for (const scale of [1, 0, undefined]) close(groupTopKRoute({ nExpert: 4, k: 2, gating: "sigmoid", normalize: false, scale })(logits, 1).weights, [s3, s1]);
});

test("groupTopKRoute: the selection bias steers the choice only, the weights stay unbiased", () => {
  const logits = Float32Array.of(0, Math.log(3), -Math.log(3), 2, /* token 1 */ 0, 0, 0, 0);
  const selectionBias = Float32Array.of(0, 0, 1, 0);
  const r = groupTopKRoute({ nExpert: 4, k: 2, gating: "sigmoid", selectionBias, normalize: false })(logits, 2);
  // Biased scores 0.5, 0.75, 1.25, 0.88: experts 2 and 3, weighted by their plain sigmoids 0.25 and 0.88.
  assert.deepEqual([...r.ids], [2, 3, 2, 0]); // token 1: all 0.5, expert 2 biased up, then the lowest id
  close(r.weights, [0.25, sig(2), 0.5, 0.5]);
});

test("groupTopKRoute groups: a group's score is the sum of its two best biased scores; only the best groups compete", () => {
  // 8 experts in 4 groups of 2; all logits 0 (scores 0.5), the bias sets the selection scores.
  const want = [0.99, 0.01, 0.6, 0.6, 0.55, 0.55, 0.1, 0.1];
  const selectionBias = Float32Array.from(want, (v) => v - 0.5);
  const route = (nGroupUsed: number) => groupTopKRoute({ nExpert: 8, k: 2, gating: "sigmoid", selectionBias, nGroup: 4, nGroupUsed, normalize: true });
  // Group sums 1.0, 1.2, 1.1, 0.2: groups 1 and 2 win, so the single best expert (0) is not eligible.
  const r = route(2)(new Float32Array(8), 1);
  assert.deepEqual([...r.ids], [2, 3]);
  close(r.weights, [0.5, 0.5]);
  // Three groups used: group 0 is in, and its expert 0 is the best overall.
  assert.deepEqual([...route(3)(new Float32Array(8), 1).ids], [0, 2]);
  assert.throws(() => groupTopKRoute({ nExpert: 8, k: 5, gating: "sigmoid", nGroup: 4, nGroupUsed: 2, normalize: true }), /exceeds the 4 experts/);
  assert.throws(() => groupTopKRoute({ nExpert: 8, k: 2, gating: "sigmoid", nGroup: 3, nGroupUsed: 2, normalize: true }), /do not split/);
});

test("groupTopKRoute without bias or groups under softmax gating is softmaxTopK", () => {
  const E = 16, T = 20, k = 4;
  const logits = Float32Array.from({ length: E * T }, (_, i) => Math.sin(i * 12.9898) * 3);
  for (const normalize of [true, false]) {
    const a = groupTopKRoute({ nExpert: E, k, gating: "softmax", normalize })(logits, T);
    const b = softmaxTopK(logits, T, E, k, normalize);
    assert.deepEqual(a.ids, b.ids);
    assert.deepEqual(a.weights, b.weights);
  }
});

test("groupTopKRoute matches a sort-based reference on random scores, groups and bias", () => {
  const E = 32, nGroup = 8, nGroupUsed = 3, k = 6, T = 50, per = E / nGroup;
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const logits = Float32Array.from({ length: E * T }, () => 3 * rnd());
  const selectionBias = Float32Array.from({ length: E }, () => 0.3 * rnd());
  const r = groupTopKRoute({ nExpert: E, k, gating: "sigmoid", selectionBias, nGroup, nGroupUsed, normalize: true, scale: 2.5 })(logits, T);
  const byDesc = (v: number[]) => v.map((x, i) => [x, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map((p) => p[1]);
  for (let t = 0; t < T; t++) {
    const score = Array.from(logits.subarray(t * E, (t + 1) * E), sig);
    const sel = score.map((s, e) => s + selectionBias[e]);
    const gSum = Array.from({ length: nGroup }, (_, g) => byDesc(sel.slice(g * per, (g + 1) * per)).slice(0, 2).reduce((a, i) => a + sel[g * per + i], 0));
    const groups = new Set(byDesc(gSum).slice(0, nGroupUsed));
    const ids = byDesc(sel.map((s, e) => (groups.has(Math.floor(e / per)) ? s : -Infinity))).slice(0, k);
    const sum = ids.reduce((a, e) => a + score[e], 0);
    assert.deepEqual([...r.ids.subarray(t * k, (t + 1) * k)], ids, `token ${t}`);
    close(r.weights.subarray(t * k, (t + 1) * k), ids.map((e) => (2.5 * score[e]) / sum), 1e-5);
  }
});
