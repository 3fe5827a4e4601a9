import { test } from "node:test";
import assert from "node:assert/strict";
import { applyPenalties, createSampler, type PenaltyOptions } from "../../src/sampler/index.js";

const off: PenaltyOptions = { repeatPenalty: 1, presencePenalty: 0, frequencyPenalty: 0, penaltyLastN: -1 };

function approx(actual: Float32Array, expected: number[]): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) < 1e-6, `logit ${i}: got ${actual[i]}, expected ${expected[i]}`);
  }
}

test("repeat penalty divides positive logits and multiplies non-positive ones, once per distinct token", () => {
  const l = new Float32Array([2, -1, 0.5, 3, 0]);
  applyPenalties(l, [0, 1, 1, 3, 3, 3, 4], { ...off, repeatPenalty: 2 });
  approx(l, [1, -2, 0.5, 1.5, 0]);
});

test("presence subtracts once, frequency subtracts count times", () => {
  const l = new Float32Array([2, -1, 0.5, 3, 0]);
  applyPenalties(l, [0, 1, 1, 3, 3, 3], { ...off, presencePenalty: 0.5, frequencyPenalty: 0.25 });
  // token 0: 2 - (0.5 + 1*0.25); token 1: -1 - (0.5 + 2*0.25); token 3: 3 - (0.5 + 3*0.25)
  approx(l, [1.25, -2, 0.5, 1.75, 0]);
});

test("all three together, in llama.cpp's order (repeat first, then subtract)", () => {
  const l = new Float32Array([2, -1, 0.5, 3, 0]);
  applyPenalties(l, [0, 1, 1, 3, 3, 3], { repeatPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25, penaltyLastN: -1 });
  // token 0: 2/2 - 0.75 = 0.25; token 1: -1*2 - 1 = -3; token 3: 3/2 - 1.25 = 0.25
  approx(l, [0.25, -3, 0.5, 0.25, 0]);
});

test("penaltyLastN limits the window; 0 turns penalties off; out-of-range ids are ignored", () => {
  const h = [0, 1, 1, 3, 3, 3];
  const opts = { repeatPenalty: 2, presencePenalty: 0.5, frequencyPenalty: 0.25 };
  const a = new Float32Array([2, -1, 0.5, 3, 0]);
  applyPenalties(a, h, { ...opts, penaltyLastN: 3 }); // window [3, 3, 3]
  approx(a, [2, -1, 0.5, 0.25, 0]);
  const b = new Float32Array([2, -1, 0.5, 3, 0]);
  applyPenalties(b, h, { ...opts, penaltyLastN: 4 }); // window [1, 3, 3, 3]
  approx(b, [2, -1 * 2 - 0.75, 0.5, 0.25, 0]);
  const c = new Float32Array([2, -1, 0.5, 3, 0]);
  applyPenalties(c, h, { ...opts, penaltyLastN: 0 });
  approx(c, [2, -1, 0.5, 3, 0]);
  const d = new Float32Array([2, -1, 0.5, 3, 0]);
  applyPenalties(d, [5, -1, 99, 2], { ...opts, penaltyLastN: 100 });
  approx(d, [2, -1, 0.5 / 2 - 0.75, 3, 0]);
  const e = new Float32Array([2, -1, 0.5, 3, 0]);
  applyPenalties(e, h, { ...off }); // neutral settings change nothing
  approx(e, [2, -1, 0.5, 3, 0]);
});

test("the sampler applies penalties before choosing and leaves the caller's logits alone", () => {
  const logits = new Float32Array([1, 3, 2.5]);
  const s = createSampler({ temperature: 0, repeatPenalty: 1.5, seed: 1 });
  assert.equal(s.sample(logits, []), 1);
  assert.equal(s.sample(logits, [1]), 2); // 3 / 1.5 = 2 < 2.5
  assert.deepEqual(Array.from(logits), [1, 3, 2.5]);
  const f = createSampler({ temperature: 0, frequencyPenalty: 0.3, penaltyLastN: 2, seed: 1 });
  assert.equal(f.sample(logits, [1, 1]), 2); // 3 - 0.6 = 2.4 < 2.5
  assert.equal(f.sample(logits, [1, 1, 0, 0]), 1); // token 1 is outside the last 2
});
