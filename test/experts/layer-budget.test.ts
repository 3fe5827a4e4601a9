// Per-layer slot quotas: the allocation worked by hand, the eviction rule on a hand-worked sequence, and
// equal quotas held to the independent reference they stand for (a separate pool per layer, replayed
// through layerTrace), for every policy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LayerQuotas, PerLayerPolicy } from "../../src/experts/layer-budget.js";
import { parsePolicySpec, policyByName, POLICY_NAMES } from "../../src/experts/policies.js";
import { layerTrace, policyContext, replay } from "../../src/experts/replay.js";
import type { EvictionPolicy } from "../../src/experts/eviction.js";
import type { Trace, TraceCall } from "../../src/experts/trace.js";
import { UsageError } from "../../src/util/errors.js";

function trace(nLayer: number, nExpert: number, k: number, tokens: number[][][]): Trace {
  const calls: TraceCall[] = tokens.map((layers) => ({ phase: "decode", nTokens: 1, routes: layers.map((ids) => Int32Array.from(ids)) }));
  return { header: { model: { architecture: "test", name: "t", nLayer, nExpert, k, recordBytes: new Array(nLayer).fill(100) }, routing: null }, calls };
}

test("quotas: a floor of the equal share each, the rest to the most used experts; decay favours recent use", () => {
  // Two layers of 4 experts; keys are layer x 4 + expert. No decay: counts. Layer 0: expert 0 three
  // times, expert 1 once; layer 1: expert 0 once.
  const q = new LayerQuotas([4, 4], { floor: 0.5, decay: 1, touchesPerToken: 2 });
  for (const key of [0, 0, 0, 1, 4]) q.touch(key);
  // 4 slots: floors 1 + 1 (half of 2 each); worths beyond them: layer 0 [1, 0, 0], layer 1 [0, 0, 0].
  // Two left: the 1 goes to layer 0, then the tie at 0 goes round from layer 0: [3, 1].
  assert.deepEqual([...q.of(4)], [3, 1]);
  // 6 slots: floors 1 + 1, four left: 1 to layer 0, ties at 0 round the layers: 0, 1, 0 -> [4, 2].
  assert.deepEqual([...q.of(6)], [4, 2]);
  // Floor 1: equal shares, whatever the counts.
  const eq = new LayerQuotas([4, 4], { floor: 1, decay: 1, touchesPerToken: 2 });
  for (const key of [0, 0, 0, 1]) eq.touch(key);
  assert.deepEqual([...eq.of(4)], [2, 2]);
  // A layer without experts gets nothing; a quota never exceeds a layer's experts: equal shares of 10
  // are 5, layer 0 has 3 experts, and the 2 it cannot use go to layer 2.
  const gap = new LayerQuotas([3, 0, 8], { floor: 1, decay: 1, touchesPerToken: 2 });
  assert.deepEqual([...gap.of(10)], [3, 0, 7]);

  // Decay 0.5 a token (one touch a token here): layer 0's expert 0 at tokens 1 and 2 weighs 2 + 4 = 6,
  // layer 1's experts 0 and 1 at tokens 3 and 4 weigh 8 and 16, so 2 slots (floor 0) both go to layer 1;
  // counted without decay (2 against 1 and 1) layer 0 gets one.
  const touches = [0, 0, 4, 5];
  const fast = new LayerQuotas([4, 4], { floor: 0, decay: 0.5, touchesPerToken: 1 });
  const flat = new LayerQuotas([4, 4], { floor: 0, decay: 1, touchesPerToken: 1 });
  for (const key of touches) fast.touch(key), flat.touch(key);
  assert.deepEqual([...fast.of(2)], [0, 2]);
  assert.deepEqual([...flat.of(2)], [1, 1]);
});

test("a layer at its quota evicts its own; one under it takes from the layer furthest over (global LRU evicts across layers)", () => {
  // 2 layers x 8 experts, top-1; keys l0: e, l1: 8 + e. [] = the layer routes nothing that token.
  // Tokens (layer 0, layer 1): ([0],[0]) ([1],[]) ([2],[]) ([],[1]) ([0],[]) ([],[0]).
  // 4 slots, equal quotas 2 + 2, LRU in each layer:
  //   0 8 1 2 fill the cache (layer 0 holds 3, over its quota by 1; layer 1 holds 1).
  //   9: layer 1 is under its quota, so layer 0 gives its least recent, 0.  -> {8 1 2 9}
  //   0: layer 0 is at its quota, so it evicts its own least recent, 1.      -> {8 2 9 0}
  //   8: a hit. One hit in all.
  // Global LRU: 9 evicts 0 as well, but then 0 evicts 8 (the oldest of all), and 8 misses: no hit.
  const t = trace(2, 8, 1, [[[0], [0]], [[1], []], [[2], []], [[], [1]], [[0], []], [[], [0]]]);
  const ctx = policyContext(t);
  const evicted: number[] = [];
  const spy = (p: EvictionPolicy): EvictionPolicy => ({ touch: (k) => p.touch(k), remove: (k) => (evicted.push(k), p.remove(k)), victim: (e, i) => p.victim(e, i) });
  const part = replay(t, { slots: 4, policy: spy(policyByName("lru", { perLayer: 1, floor: 1 }, ctx)) });
  assert.deepEqual(evicted, [0, 1]);
  assert.equal(part.total.hits, 1);
  assert.equal(replay(t, { slots: 4, policy: policyByName("lru") }).total.hits, 0);
});

test("equal quotas are a pool per layer: same hits as each layer replayed alone, for every policy", () => {
  // 3 layers x 16 experts, top-2, 4 slots a layer. The first two tokens give each layer 4 distinct
  // experts, so the cache fills with every layer exactly at its quota (no borrowing); after that every
  // miss is a layer at its quota evicting its own, as its own pool would. Later tokens: seeded random.
  const L = 3, E = 16, k = 2, per = 4;
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31);
  const tokens: number[][][] = [
    [[0, 1], [2, 3], [4, 5]],
    [[2, 3], [4, 5], [6, 7]],
  ];
  for (let i = 0; i < 300; i++) {
    tokens.push(Array.from({ length: L }, (_, l) => {
      // Skewed and layer-dependent: layer l draws mostly from its first 4 + 2l experts.
      const pick = () => Math.floor(rnd() < 0.7 ? rnd() * (4 + 2 * l) : rnd() * E);
      const a = pick();
      let b = pick();
      while (b === a) b = pick();
      return [a, b];
    }));
  }
  const t = trace(L, E, k, tokens);
  const ctx = policyContext(t);
  for (const name of POLICY_NAMES) {
    const quota = replay(t, { slots: L * per, policy: policyByName(name, { perLayer: 1, floor: 1 }, ctx) });
    let alone = 0;
    for (let l = 0; l < L; l++) {
      const lt = layerTrace(t, l);
      alone += replay(lt, { slots: per, policy: policyByName(name, {}, policyContext(lt)) }).total.hits;
    }
    assert.equal(quota.total.hits, alone, name);
  }
  // Adaptive quotas on the same trace: a different allocation, the same accesses.
  const adaptive = replay(t, { slots: L * per, policy: policyByName("lfu-decay", { perLayer: 1 }, ctx) });
  assert.equal(adaptive.total.accesses, tokens.length * L * k);
});

test("perLayer and floor parse as parameters of every policy, and are checked", () => {
  assert.deepEqual(parsePolicySpec("lfu-decay:decay=0.9,perLayer=1,floor=0.5"), { name: "lfu-decay", params: { decay: 0.9, perLayer: 1, floor: 0.5 } });
  const layerExperts = [8, 0, 8];
  assert.ok(policyByName("arc", { perLayer: 1 }, { layerExperts }) instanceof PerLayerPolicy);
  assert.ok(!(policyByName("arc", { perLayer: 0 }, { layerExperts }) instanceof PerLayerPolicy));
  assert.throws(() => parsePolicySpec("lru:perLayer=2"), (e: unknown) => e instanceof UsageError && /perLayer must be 0/.test(e.message));
  assert.throws(() => parsePolicySpec("lru:floor=0.5"), (e: unknown) => e instanceof UsageError && /needs perLayer=1/.test(e.message));
  assert.throws(() => parsePolicySpec("lru:perLayer=1,floor=2"), (e: unknown) => e instanceof UsageError && /floor must be in \[0, 1\]/.test(e.message));
  assert.throws(() => policyByName("lru", { perLayer: 1 }), (e: unknown) => e instanceof UsageError && /needs the model's experts per layer/.test(e.message));
  // A key of a layer without experts is a caller's bug, named.
  assert.throws(() => policyByName("lru", { perLayer: 1 }, { layerExperts }).touch(8 + 3), /layer 1, which has no experts/);
});
