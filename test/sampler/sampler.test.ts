import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng, createSampler, type SamplingOptions } from "../../src/sampler/index.js";
import { UsageError } from "../../src/util/errors.js";

/** Every filter off: plain softmax(logits / T). */
const plain = (temperature: number, seed: number): SamplingOptions => ({ temperature, topK: 0, topP: 1, minP: 0, seed });

function softmax(logits: number[], T: number): number[] {
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp((l - m) / T));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function randomLogits(n: number, seed: number, scale = 3): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Roughly normal (sum of uniforms), with a few strong tokens like a real LM head.
    out[i] = (r.next() + r.next() + r.next() + r.next() - 2) * scale + (r.next() < 0.001 ? 8 : 0);
  }
  return out;
}

/** Reference best-first order by full sort: logit descending, id ascending. */
function refOrder(l: Float32Array): number[] {
  return Array.from(l.keys()).sort((a, b) => l[b] - l[a] || a - b);
}

function assertDist(got: { ids: number[]; probs: number[] }, expected: Map<number, number>, tol = 1e-6): void {
  assert.deepEqual([...got.ids].sort((a, b) => a - b), [...expected.keys()].sort((a, b) => a - b));
  got.ids.forEach((id, i) => assert.ok(Math.abs(got.probs[i] - expected.get(id)!) < tol, `token ${id}: ${got.probs[i]} vs ${expected.get(id)}`));
}

test("greedy (temperature 0) picks the argmax, lowest id on ties, and ignores the RNG", () => {
  const s = createSampler({ temperature: 0, seed: 3 });
  assert.equal(s.sample(new Float32Array([0.1, 2, -1, 1.9])), 1);
  assert.equal(s.sample(new Float32Array([1, 3, 3, 2])), 1);
  assert.equal(s.sample(new Float32Array([-5, -2, -2, -7])), 1);
  assert.equal(s.sample(new Float32Array([Number.NaN, -Infinity, -1e30])), 2);
  const before = s.getState();
  const big = randomLogits(151_936, 11);
  assert.equal(s.sample(big), refOrder(big)[0]);
  assert.deepEqual(s.getState(), before);
  assert.deepEqual(s.distribution(big), { ids: [refOrder(big)[0]], probs: [1] });
});

test("top-k = 1 equals greedy, whatever the temperature and seed", () => {
  for (let seed = 0; seed < 5; seed++) {
    const l = randomLogits(5000, 100 + seed, 1);
    l[17] = l[4000] = 50; // a tie at the top: lowest id wins
    const g = createSampler({ temperature: 0, seed }).sample(l);
    assert.equal(g, 17);
    const s = createSampler({ temperature: 1.5, topK: 1, topP: 1, minP: 0, seed });
    for (let i = 0; i < 20; i++) assert.equal(s.sample(l), g);
  }
});

test("same seed gives the same token sequence, different seeds differ", () => {
  const l = new Float32Array([1, 1.2, 0.8, 1.1, 0.9, 1.05]);
  const run = (seed: number) => {
    const s = createSampler(plain(1, seed));
    return Array.from({ length: 200 }, () => s.sample(l));
  };
  assert.deepEqual(run(42), run(42));
  assert.notDeepEqual(run(42), run(43));
});

test("sampler state save/restore continues identically", () => {
  const l = randomLogits(1000, 5, 1);
  const a = createSampler({ temperature: 1, topK: 50, topP: 0.9, minP: 0.01, seed: 7 });
  for (let i = 0; i < 37; i++) a.sample(l);
  const saved = a.getState();
  const rest = Array.from({ length: 100 }, () => a.sample(l));
  const b = createSampler({ temperature: 1, topK: 50, topP: 0.9, minP: 0.01, seed: 12345 });
  b.setState(saved);
  assert.deepEqual(Array.from({ length: 100 }, () => b.sample(l)), rest);
});

test("empirical frequencies over 20k draws match softmax(logits / T) (chi-square, p = 0.001)", () => {
  const logits = [1, 2, 0.5, 3, -1, 2.2];
  // df = 5: the 0.999 quantile of chi-square is 20.52.
  for (const [T, seed] of [[1, 1], [0.7, 2], [2.5, 3]] as const) {
    const expected = softmax(logits, T);
    const s = createSampler(plain(T, seed));
    const N = 20_000;
    const counts = new Array(logits.length).fill(0);
    const l = new Float32Array(logits);
    for (let i = 0; i < N; i++) counts[s.sample(l)]++;
    let chi2 = 0;
    for (let i = 0; i < logits.length; i++) chi2 += (counts[i] - N * expected[i]) ** 2 / (N * expected[i]);
    assert.ok(chi2 < 20.52, `T=${T}: chi2 ${chi2.toFixed(2)}, counts ${counts}, expected ${expected.map((p) => (p * N).toFixed(0))}`);
    // distribution() reports the same probabilities.
    assertDist(s.distribution(l), new Map(expected.map((p, i) => [i, p])));
  }
});

test("empirical frequencies through top-k + top-p + min-p match the filtered distribution", () => {
  // Probabilities (T = 1): token 3: .4, 0: .25, 5: .15, 1: .1, 2: .06, 4: .04
  const p = [0.25, 0.1, 0.06, 0.4, 0.04, 0.15];
  const l = new Float32Array(p.map(Math.log));
  // top-k 5 drops token 4 (renormalised .4/.96, .25/.96, .15/.96, ...: cum .417, .677, .833, .938);
  // top-p .8 keeps tokens 3, 0, 5; min-p .5 drops those below .5 * .4 = .2 of the same mass: token 5 (.15) goes.
  const s = createSampler({ temperature: 1, topK: 5, topP: 0.8, minP: 0.5, seed: 99 });
  assertDist(s.distribution(l), new Map([[3, 0.4 / 0.65], [0, 0.25 / 0.65]]));
  const N = 20_000;
  let n3 = 0;
  for (let i = 0; i < N; i++) {
    const t = s.sample(l);
    assert.ok(t === 3 || t === 0, `drew filtered token ${t}`);
    if (t === 3) n3++;
  }
  const e = N * (0.4 / 0.65);
  const chi2 = (n3 - e) ** 2 / e + (N - n3 - (N - e)) ** 2 / (N - e);
  assert.ok(chi2 < 10.83, `chi2 ${chi2} (df 1)`); // 0.999 quantile, df 1
});

test("top-p keeps exactly the smallest prefix with cumulative probability >= p", () => {
  // Sorted probabilities .5 (id 2), .2 (id 0), .15 (id 4), .1 (id 1), .05 (id 3): cumulative .5, .7, .85, .95, 1.
  const p = [0.2, 0.1, 0.5, 0.05, 0.15];
  const l = new Float32Array(p.map(Math.log));
  const kept = (topP: number, temperature = 1) =>
    createSampler({ temperature, topK: 0, topP, minP: 0, seed: 1 }).distribution(l);
  assertDist(kept(0.3), new Map([[2, 1]]));
  assertDist(kept(0.6), new Map([[2, 0.5 / 0.7], [0, 0.2 / 0.7]]));
  assertDist(kept(0.8), new Map([[2, 0.5 / 0.85], [0, 0.2 / 0.85], [4, 0.15 / 0.85]]));
  assertDist(kept(0.9), new Map([[2, 0.5 / 0.95], [0, 0.2 / 0.95], [4, 0.15 / 0.95], [1, 0.1 / 0.95]]));
  assertDist(kept(0.99), new Map(p.map((x, i) => [i, x])));
  assertDist(kept(0), new Map([[2, 1]])); // at least one token
  // Same with top-k on (sorted path): top-k 4 renormalises to .5/.95 ...: cumulative .526, .737, .895
  const k4 = createSampler({ temperature: 1, topK: 4, topP: 0.8, minP: 0, seed: 1 }).distribution(l);
  assertDist(k4, new Map([[2, 0.5 / 0.85], [0, 0.2 / 0.85], [4, 0.15 / 0.85]]));
  // Temperature comes after top-p: the nucleus is chosen on the untempered probabilities, then sharpened.
  const w = [0.5, 0.2, 0.15].map((x) => x ** (1 / 0.5));
  const ws = w.reduce((a, b) => a + b, 0);
  assertDist(kept(0.8, 0.5), new Map([[2, w[0] / ws], [0, w[1] / ws], [4, w[2] / ws]]));
});

test("min-p drops tokens with p < minP * pmax", () => {
  const p = [0.3, 0.4, 0.04, 0.2, 0.06];
  const l = new Float32Array(p.map(Math.log));
  const kept = (minP: number) => createSampler({ temperature: 1, topK: 0, topP: 1, minP, seed: 1 }).distribution(l);
  // minP .125: threshold .05 -> drop token 2 (.04), keep token 4 (.06)
  assertDist(kept(0.125), new Map([[0, 0.3 / 0.96], [1, 0.4 / 0.96], [3, 0.2 / 0.96], [4, 0.06 / 0.96]]));
  // minP .6: threshold .24 -> keep .4 and .3
  assertDist(kept(0.6), new Map([[1, 0.4 / 0.7], [0, 0.3 / 0.7]]));
  // minP 1: only the top token
  assertDist(kept(1), new Map([[1, 1]]));
});

test("top-k on a 151,936 vocabulary selects the same set as a full sort (ties broken by lowest id)", () => {
  const n = 151_936;
  const l = randomLogits(n, 77);
  // Plant ties across the k boundary: many equal logits.
  const r = new Rng(1);
  for (let i = 0; i < 3000; i++) l[Math.floor(r.next() * n)] = 6.5;
  const ref = refOrder(l);
  for (const k of [1, 40, 200, 5000]) {
    const d = createSampler({ temperature: 1, topK: k, topP: 1, minP: 0, seed: 1 }).distribution(l);
    assert.deepEqual([...d.ids].sort((a, b) => a - b), ref.slice(0, k).sort((a, b) => a - b), `k=${k}`);
  }
});

test("top-p without top-k on a 151,936 vocabulary matches a full-sort reference", () => {
  const n = 151_936;
  for (const [scale, seed] of [[3, 1], [1, 2], [0.05, 3]] as const) {
    const l = randomLogits(n, seed, scale);
    const ref = refOrder(l);
    const m = l[ref[0]];
    const e = ref.map((i) => Math.exp(l[i] - m));
    const sum = e.reduce((a, b) => a + b, 0);
    for (const topP of [0.1, 0.5, 0.9, 0.95]) {
      let cum = 0, keep = 0;
      while (keep < n) {
        cum += e[keep++];
        if (cum >= topP * sum) break;
      }
      const d = createSampler({ temperature: 1, topK: 0, topP, minP: 0, seed: 1 }).distribution(l);
      assert.equal(d.ids.length, keep, `scale ${scale} topP ${topP}`);
      assert.deepEqual([...d.ids].sort((a, b) => a - b), ref.slice(0, keep).sort((a, b) => a - b));
    }
  }
});

test("bad logits are refused; NaN and -Infinity are never drawn; +Infinity wins", () => {
  const s = createSampler(plain(1, 1));
  assert.throws(() => s.sample(new Float32Array(0)), UsageError);
  assert.throws(() => s.sample([1, 2] as unknown as Float32Array), /Float32Array/);
  assert.throws(() => s.sample(new Float32Array([Number.NaN, -Infinity])), /every logit/);
  assert.throws(() => createSampler({ temperature: 0 }).sample(new Float32Array([-Infinity])), /every logit/);
  const l = new Float32Array([Number.NaN, 0, -Infinity, 0]);
  for (let i = 0; i < 200; i++) assert.ok([1, 3].includes(s.sample(l)));
  const inf = new Float32Array([0, Infinity, 100, Infinity]);
  for (let i = 0; i < 100; i++) assert.ok([1, 3].includes(s.sample(inf)));
});

/** Straightforward llama.cpp chain on a full sort: the reference the fast paths must agree with. */
function referenceChain(
  logits: Float32Array,
  o: { temperature: number; topK: number; topP: number; minP: number },
): { dist: Map<number, number>; boundary: boolean } {
  let boundary = false;
  let c = refOrder(logits).filter((i) => logits[i] > -Infinity);
  if (o.topK > 0) c = c.slice(0, o.topK);
  const lmax = logits[c[0]];
  if (o.topP < 1) {
    const e = c.map((i) => Math.exp(logits[i] - lmax));
    const sum = e.reduce((a, b) => a + b, 0);
    let cum = 0;
    for (let i = 0; i < c.length; i++) {
      cum += e[i] / sum;
      if (Math.abs(cum - o.topP) < 1e-9) boundary = true;
      if (cum >= o.topP) {
        c = c.slice(0, i + 1);
        break;
      }
    }
  }
  if (o.minP > 0) c = c.filter((i) => logits[i] >= lmax + Math.log(o.minP));
  const e = c.map((i) => Math.exp((logits[i] - lmax) / o.temperature));
  const sum = e.reduce((a, b) => a + b, 0);
  return { dist: new Map(c.map((id, i) => [id, e[i] / sum])), boundary };
}

test("the chain matches a full-sort reference on 2,000 random small cases (ties, -Infinity, every filter)", (t) => {
  const r = new Rng(2024);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r.next() * xs.length)];
  let boundaries = 0;
  for (let c = 0; c < 2000; c++) {
    const n = 1 + Math.floor(r.next() * 300);
    const levels = pick([3, 10, 1000]); // few levels = many ties
    const l = new Float32Array(n);
    for (let i = 0; i < n; i++) l[i] = r.next() < 0.05 ? -Infinity : Math.floor(r.next() * levels) * (6 / levels);
    if (l.every((v) => v === -Infinity)) l[0] = 0;
    const o = {
      temperature: pick([0.3, 1, 2]),
      topK: pick([0, 0, 1, 2, 5, 50, 400]),
      topP: pick([1, 1, 0, 0.23, 0.55, 0.91, 0.97]),
      minP: pick([0, 0, 0.05, 0.3, 0.9]),
    };
    const got = createSampler({ ...o, seed: c }).distribution(l);
    const want = referenceChain(l, o);
    // Where a cumulative sum lands within rounding of topP, the kept set may legitimately differ by one token.
    if (want.boundary) {
      boundaries++;
      continue;
    }
    assertDist(got, want.dist, 1e-9);
  }
  t.diagnostic(`${boundaries} cases within rounding of a top-p boundary skipped`);
  assert.ok(boundaries < 40, `${boundaries} boundary cases skipped`);
});
