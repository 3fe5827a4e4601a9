// The Markov eviction policy: its worth (P(used by the layer's next token)) against a from-scratch
// restatement of the definition, and a hand-worked sequence where the transition it learned keeps the
// expert that follows, where LFU with decay keeps the frequent one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MarkovPolicy } from "../../src/experts/markov-policy.js";
import { LfuDecayPolicy, parsePolicySpec, policyByName } from "../../src/experts/policies.js";
import { policyContext, replay } from "../../src/experts/replay.js";
import type { EvictionPolicy } from "../../src/experts/eviction.js";
import type { Trace } from "../../src/experts/trace.js";
import { UsageError } from "../../src/util/errors.js";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

/** The definition, recomputed from every group so far: no running state. */
function worthByDefinition(groups: number[][], e: number, o: { decay: number; prior: number; k: number }): number {
  const T = groups.length - 1;
  let freq = 0, tokens = 0;
  groups.forEach((g, s) => {
    tokens += o.decay ** (T - s);
    if (g.includes(e)) freq += o.decay ** (T - s);
  });
  const f = freq / tokens;
  const cur = groups[T];
  let sum = 0;
  for (const i of cur) {
    let follows = 0, seen = 0;
    for (let s = 1; s <= T; s++) {
      const a = groups[s - 1], b = groups[s];
      if (a.length > o.k || b.length > o.k || !a.includes(i)) continue;
      seen++;
      if (b.includes(e)) follows++;
    }
    sum += (follows + o.prior * f) / (seen + o.prior);
  }
  return sum / cur.length;
}

test("markov worth equals its definition on random multi-layer groups, prefill batches included", () => {
  const r = rng(5);
  const nLayer = 3, nExpert = 10, k = 2;
  const o = { decay: 0.8, prior: 1.5, k };
  const p = new MarkovPolicy({ stride: nExpert, decay: o.decay, prior: o.prior, perToken: k });
  const groups: number[][][] = Array.from({ length: nLayer }, () => []);
  for (let t = 0; t < 40; t++) {
    for (let l = 0; l < nLayer; l++) {
      // Mostly tokens of k distinct experts; now and then a prefill batch of 5, which teaches no transition.
      const size = r() < 0.15 ? 5 : k;
      const ids: number[] = [];
      while (ids.length < size) {
        const e = Math.floor(r() * (r() < 0.6 ? 4 : nExpert));
        if (!ids.includes(e)) ids.push(e);
      }
      groups[l].push(ids);
      p.begin(ids.map((e) => l * nExpert + e));
      if (t % 7 === 6) {
        for (let ll = 0; ll < nLayer; ll++) {
          for (let e = 0; e < nExpert; e++) {
            const want = groups[ll].length ? worthByDefinition(groups[ll], e, o) : 0;
            assert.ok(Math.abs(p.worth(ll * nExpert + e) - want) < 1e-12, `t ${t} layer ${ll} expert ${e}: ${p.worth(ll * nExpert + e)} vs ${want}`);
          }
        }
      }
    }
  }
});

test("markov worth by hand: the expert that follows outranks the frequent one", () => {
  // Tokens [0] [1] [0] [1] [0], decay 0.5, prior 1. Frequencies: 0 at ages 4, 2, 0 = 1.3125, 1 at ages 3, 1
  // = 0.625, over 1.9375 tokens: f(0) = 0.6774, f(1) = 0.3226. Row 0 saw 1 follow twice (seen 2):
  // worth(1) = (2 + f(1)) / 3 = 0.7742; worth(0) = (0 + f(0)) / 3 = 0.2258; an expert never used: 0.
  const p = new MarkovPolicy({ stride: 8, decay: 0.5, prior: 1, perToken: 1 });
  for (const e of [0, 1, 0, 1, 0]) p.begin([e]);
  assert.ok(Math.abs(p.worth(1) - (2 + 0.625 / 1.9375) / 3) < 1e-12);
  assert.ok(Math.abs(p.worth(0) - 1.3125 / 1.9375 / 3) < 1e-12);
  assert.equal(p.worth(5), 0);
});

test("markov keeps the expert the current one predicts; LFU with decay keeps the frequent one", () => {
  // One layer, top-1, 2 slots, [5 6 0 0 0 5 6], decay 0.9. At 0's miss both evict 5 (used before 6). At
  // the second 5's miss: 6 was used once (age 4), 0 three times (ages 3, 2, 1); LFU-decay evicts 6.
  // Markov has seen 6 follow 5 once: worth(6) = (1 + 2 f(6)) / 3 = 0.427 over worth(0) = 2 f(0) / 3 =
  // 0.347 (f over 4.69 decayed tokens), so it evicts 0 and the last 6 hits: 3 hits to LFU-decay's 2.
  const keys = [5, 6, 0, 0, 0, 5, 6];
  const t: Trace = {
    header: { model: { architecture: "test", name: "t", nLayer: 1, nExpert: 8, k: 1, recordBytes: [100] }, routing: null },
    calls: keys.map((e) => ({ phase: "decode", nTokens: 1, routes: [Int32Array.of(e)] })),
  };
  assert.equal(replay(t, { slots: 2, policy: new LfuDecayPolicy(0.9, 1) }).total.hits, 2);
  assert.equal(replay(t, { slots: 2, policy: policyByName("markov", {}, policyContext(t)) }).total.hits, 3);
  assert.equal(replay(t, { slots: 2, policy: policyByName("markov", { perLayer: 1 }, policyContext(t)) }).total.hits, 3, "in a per-layer quota");
  // Without begin() (a cache that does not say what it acquires) it has learned nothing: recency decides.
  const blind = new MarkovPolicy({ stride: 8, perToken: 1 });
  const noBegin: EvictionPolicy = { touch: (k) => blind.touch(k), remove: (k) => blind.remove(k), victim: (f) => blind.victim(f) };
  assert.equal(replay(t, { slots: 2, policy: noBegin }).total.hits, replay(t, { slots: 2, policy: policyByName("lru") }).total.hits);
});

test("markov halves a row's counts when it reaches ROW_CAP, so a long run keeps adapting", () => {
  // Tokens 0 1 0 1 ... 0: 1100 transitions 0 -> 1. Row 0 reaches 1024 and is halved to 512, then counts 76
  // more: seen(0) = 588. 0 never follows 0, so worth(0) = prior f(0) / (seen(0) + prior), f by definition.
  const p = new MarkovPolicy({ stride: 4, decay: 0.9, prior: 2, perToken: 1 });
  const tokens = Array.from({ length: 2201 }, (_, t) => t % 2);
  for (const e of tokens) p.begin([e]);
  let freq = 0, n = 0;
  tokens.forEach((e, t) => ((n += 0.9 ** (tokens.length - 1 - t)), (freq += e === 0 ? 0.9 ** (tokens.length - 1 - t) : 0)));
  const seen = (2 * freq) / n / p.worth(0) - 2;
  assert.ok(Math.abs(seen - 588) < 1e-6, `seen(0) = ${seen}`);
  assert.ok(Math.abs(p.worth(1) - (588 + (2 * (n - freq)) / n) / 590) < 1e-9, "row 0 -> 1 halved with it");
});

test("markov's parameters are checked", () => {
  assert.deepEqual(parsePolicySpec("markov:decay=0.8,prior=4,perLayer=1"), { name: "markov", params: { decay: 0.8, prior: 4, perLayer: 1 } });
  for (const spec of ["markov:decay=1", "markov:prior=0", "markov:perToken=0"]) assert.throws(() => parsePolicySpec(spec), (e: unknown) => e instanceof UsageError, spec);
  assert.throws(() => policyByName("markov", {}, { touchesPerToken: 8 }), /markov needs the model's experts per layer/);
});
