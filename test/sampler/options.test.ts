import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_SAMPLING_OPTIONS, createSampler, resolveSamplingOptions, type SamplingOptions } from "../../src/sampler/index.js";
import { UsageError } from "../../src/util/errors.js";

test("defaults are filled in (llama.cpp's) and a random seed is chosen when none is given", () => {
  const o = resolveSamplingOptions();
  assert.deepEqual({ ...o, seed: 0 }, { ...DEFAULT_SAMPLING_OPTIONS, seed: 0 });
  assert.equal(o.temperature, 0.8);
  assert.equal(o.topK, 40);
  assert.equal(o.topP, 0.95);
  assert.equal(o.minP, 0.05);
  assert.equal(o.repeatPenalty, 1);
  assert.equal(o.penaltyLastN, 64);
  assert.ok(Number.isSafeInteger(o.seed));
  assert.equal(resolveSamplingOptions({ seed: 5, temperature: 0 }).seed, 5);
  assert.equal(createSampler({ seed: 9 }).options.seed, 9);
});

test("edge values are accepted", () => {
  const o = resolveSamplingOptions({
    temperature: 0, topK: 0, topP: 0, minP: 1, repeatPenalty: 0.5, presencePenalty: -2, frequencyPenalty: 2, penaltyLastN: -1, seed: 0,
  });
  assert.equal(o.penaltyLastN, -1);
  resolveSamplingOptions({ topP: 1, minP: 0, seed: Number.MAX_SAFE_INTEGER });
});

const cases: [SamplingOptions, RegExp][] = [
  [{ temperature: -1 }, /^temperature must be >= 0, got -1$/],
  [{ temperature: Number.NaN }, /^temperature must be a finite number, got NaN$/],
  [{ temperature: "hot" as unknown as number }, /^temperature must be a finite number, got "hot"$/],
  [{ topK: -1 }, /^topK must be >= 0/],
  [{ topK: 2.5 }, /^topK must be an integer, got 2.5$/],
  [{ topP: 1.5 }, /^topP must be in \[0, 1\]/],
  [{ topP: -0.1 }, /^topP must be in \[0, 1\]/],
  [{ minP: 2 }, /^minP must be in \[0, 1\]/],
  [{ repeatPenalty: 0 }, /^repeatPenalty must be > 0/],
  [{ presencePenalty: Infinity }, /^presencePenalty must be a finite number/],
  [{ frequencyPenalty: Number.NaN }, /^frequencyPenalty must be a finite number/],
  [{ penaltyLastN: -2 }, /^penaltyLastN must be >= -1/],
  [{ seed: -3 }, /^seed must be a non-negative safe integer, got -3$/],
  [{ seed: 2 ** 60 }, /^seed must be a non-negative safe integer/],
  [{ top_k: 5 } as unknown as SamplingOptions, /unknown sampling option "top_k"/],
];

for (const [opts, re] of cases) {
  test(`validation: ${JSON.stringify(opts) ?? String(opts)} -> ${re.source}`, () => {
    assert.throws(() => resolveSamplingOptions(opts), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.code, "SAMPLER_BAD_OPTION");
      assert.match(e.message, re);
      return true;
    });
    assert.throws(() => createSampler(opts), UsageError);
  });
}
