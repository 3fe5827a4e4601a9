// Replay and Belady on hand-computed sequences, and Belady as the bound on random traces (checked
// against an exhaustive search of every eviction choice on small ones).
import { test } from "node:test";
import assert from "node:assert/strict";
import { policyByName, parsePolicySpec, POLICY_NAMES, LfuPolicy, LrfuPolicy, SlruPolicy } from "../../src/experts/policies.js";
import { accessSequence, belady, layerTrace, policyContext, replay, slotsForMultiple, type AccessSequence, type Pinning } from "../../src/experts/replay.js";
import type { EvictionPolicy } from "../../src/experts/eviction.js";
import type { Phase, Trace, TraceCall } from "../../src/experts/trace.js";
import { UsageError } from "../../src/util/errors.js";

function trace(nLayer: number, nExpert: number, k: number, calls: TraceCall[]): Trace {
  return { header: { model: { architecture: "test", name: "t", nLayer, nExpert, k, recordBytes: new Array(nLayer).fill(100) }, routing: null }, calls };
}
/** One layer, top-1, one decode call per access: the cache sees exactly `keys`. */
const single = (keys: number[]) => trace(1, 8, 1, keys.map((e) => ({ phase: "decode" as Phase, nTokens: 1, routes: [Int32Array.of(e)] })));
const hits = (t: Trace, slots: number, p: EvictionPolicy, pinning?: Pinning) => replay(t, { slots, policy: p, pinning }).total.hits;

// Each sequence's hits at 2 slots, worked by hand (see the comments for the evictions that decide them).
const HAND: { name: string; keys: number[]; lru: number; slru: number; lfu: number; belady: number }[] = [
  // 0 gets popular, then 1 2 alternate: recency keeps both; frequency and SLRU keep 0 and thrash.
  { name: "recency wins", keys: [0, 0, 0, 1, 2, 1, 2, 1, 2], lru: 6, slru: 2, lfu: 2, belady: 6 },
  // A one-off 1 between uses of 0: LRU evicts 0 for 2; SLRU (1 on probation) and LFU (count 1) evict 1.
  { name: "scan resistance", keys: [0, 0, 1, 2, 0], lru: 1, slru: 2, lfu: 2, belady: 2 },
  // 1 used twice is as protected as 0 used four times under SLRU (which demotes 0); LFU keeps 0.
  { name: "frequency beats a second use", keys: [0, 0, 0, 0, 1, 1, 2, 0], lru: 4, slru: 4, lfu: 5, belady: 5 },
  // LRU evicts 0 at 2 and 1 at 0; SLRU and LFU keep 0; Belady also keeps 1 for its last use.
  { name: "future knowledge", keys: [0, 0, 0, 1, 1, 2, 0, 1, 2, 0, 1], lru: 3, slru: 5, lfu: 5, belady: 6 },
];

test("hand-computed sequences: LRU, SLRU, LFU and Belady", () => {
  for (const h of HAND) {
    const t = single(h.keys);
    assert.equal(hits(t, 2, policyByName("lru")), h.lru, `${h.name}: lru`);
    assert.equal(hits(t, 2, new SlruPolicy(0.5)), h.slru, `${h.name}: slru`);
    assert.equal(hits(t, 2, new LfuPolicy()), h.lfu, `${h.name}: lfu`);
    assert.equal(belady(t, 2).total.hits, h.belady, `${h.name}: belady`);
    assert.equal(replay(t, { slots: 2, policy: policyByName("lru") }).total.accesses, h.keys.length);
  }
});

test("LFU aging: halving every 2 touches lets a recent 1 outrank an old 0 (0 is evicted at 2)", () => {
  // Counts after touch 6 (key 1 again): 0 -> 1.5 -> 0.75 by halving, 1 -> 1; so 2 evicts 0, then 0 evicts 1 (tie, older).
  assert.equal(hits(single([0, 0, 0, 0, 1, 1, 2, 0]), 2, new LfuPolicy({ halveEvery: 2 })), 4);
  assert.equal(hits(single([0, 0, 0, 0, 1, 1, 2, 0]), 2, new LfuPolicy({ halveEvery: 1000 })), 5);
});

test("LRFU spans LRU (short half-life) to LFU (long)", () => {
  for (const h of HAND) {
    const t = single(h.keys);
    assert.equal(hits(t, 2, new LrfuPolicy({ halfLife: 0.5 })), h.lru, `${h.name}: lrfu as lru`);
    assert.equal(hits(t, 2, new LrfuPolicy({ halfLife: 1e9 })), h.lfu, `${h.name}: lrfu as lfu`);
  }
});

test("sequential pinning can evict an expert its own acquire needs next; group pinning cannot", () => {
  // k = 2, 2 slots: [2, 5] fills the cache (2 least recent), then acquire [1, 2]: 1 misses and LRU picks 2,
  // not yet pinned, which then misses too. Pinning the whole acquire evicts 5 instead.
  const t = trace(1, 8, 2, [[2, 5], [1, 2]].map((ids) => ({ phase: "decode" as Phase, nTokens: 1, routes: [Int32Array.from(ids)] })));
  assert.equal(hits(t, 2, policyByName("lru"), "sequential"), 0);
  assert.equal(hits(t, 2, policyByName("lru"), "group"), 1);
  assert.equal(belady(t, 2).total.hits, 1);
});

test("prefill acquires a batch's distinct experts in groups of at most the slots; phases counted apart", () => {
  const t = trace(2, 8, 2, [
    { phase: "prefill", nTokens: 3, routes: [Int32Array.of(4, 1, 1, 6, 7, 3), Int32Array.of(0, 1, 0, 1, 0, 1)] },
    { phase: "decode", nTokens: 1, routes: [Int32Array.of(7, 1), Int32Array.of(1, 0)] },
  ]);
  const seq = accessSequence(t, 3);
  assert.deepEqual([...seq.keys], [1, 3, 4, 6, 7, 8, 9, 1, 7, 8, 9]);
  assert.deepEqual([...seq.groups], [0, 3, 5, 7, 9, 11]);
  // Prefill leaves {7, 8, 9}, 7 least recent. Sequential pins: decode's 1 evicts 7, its own next expert,
  // and layer 1 then repeats that; group pins evict 8, hit 7, then evict 1 and hit 9.
  const seqLru = replay(t, { slots: 3, policy: policyByName("lru"), pinning: "sequential" }, seq);
  assert.deepEqual([seqLru.prefill.accesses, seqLru.prefill.hits, seqLru.decode.accesses, seqLru.decode.hits], [7, 0, 4, 0]);
  assert.equal(replay(t, { slots: 3, policy: policyByName("lru"), pinning: "group" }, seq).decode.hits, 2);
  assert.equal(replay(t, { slots: 3, policy: policyByName("lru") }, seq).decode.hits, 2, "group is the default, as in StreamingExperts");
  assert.equal(seqLru.total.bytesRead, seqLru.total.misses * 100);
  assert.equal(seqLru.total.evictions, seqLru.total.misses - 3);
  assert.throws(() => accessSequence(t, 1), UsageError); // fewer slots than k: the engine refuses too
  assert.equal(slotsForMultiple(t, 2), 8);
  assert.equal(slotsForMultiple(t, 100), 16);
});

test("policyByName and parsePolicySpec", () => {
  for (const n of POLICY_NAMES) assert.equal(typeof policyByName(n, {}, { layerExperts: [8] }).victim, "function");
  assert.throws(() => policyByName("markov"), /markov needs the model's experts per layer/);
  assert.deepEqual(parsePolicySpec("slru:protected=0.8"), { name: "slru", params: { protected: 0.8 } });
  assert.deepEqual(parsePolicySpec("lfu:agingFactor=4,history=0"), { name: "lfu", params: { agingFactor: 4, history: 0 } });
  assert.throws(() => policyByName("mru"), /unknown eviction policy 'mru'/);
  assert.throws(() => parsePolicySpec("lru:x=1"), /policy lru has no parameter 'x'/);
  assert.throws(() => parsePolicySpec("slru:protected=2"), /protected share/);
  assert.throws(() => parsePolicySpec("slru:protected"), /expected name:key=number/);
});

/** The most hits (in `phase`, or all) any sequence of eviction choices can get, by exhaustive search. */
function bruteForce(seq: AccessSequence, slots: number, phase?: number): number {
  const groupOf = new Int32Array(seq.keys.length);
  for (let g = 0; g + 1 < seq.groups.length; g++) for (let i = seq.groups[g]; i < seq.groups[g + 1]; i++) groupOf[i] = seq.groups[g];
  const memo = new Map<string, number>();
  const f = (pos: number, cache: number[]): number => {
    if (pos === seq.keys.length) return 0;
    const id = `${pos}:${cache.join(",")}`;
    const m = memo.get(id);
    if (m !== undefined) return m;
    const key = seq.keys[pos];
    const counted = phase === undefined || seq.phase[pos] === phase ? 1 : 0;
    let best: number;
    if (cache.includes(key)) best = counted + f(pos + 1, cache);
    else if (cache.length < slots) best = f(pos + 1, [...cache, key].sort((a, b) => a - b));
    else {
      // Pinned: what this acquire already took (StreamingExperts' sequential pins).
      const pinned = new Set(seq.keys.subarray(groupOf[pos], pos));
      best = -Infinity;
      for (const v of cache) if (!pinned.has(v)) best = Math.max(best, f(pos + 1, [...cache.filter((c) => c !== v), key].sort((a, b) => a - b)));
    }
    memo.set(id, best);
    return best;
  };
  return f(0, []);
}

function rng(seed: number): () => number {
  return () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed / 2 ** 32);
}

function randomTrace(r: () => number, nLayer: number, nExpert: number, k: number, nCalls: number): Trace {
  const calls: TraceCall[] = [];
  for (let c = 0; c < nCalls; c++) {
    const nTokens = c === 0 ? 1 + Math.floor(r() * 4) : 1;
    const routes = Array.from({ length: nLayer }, () => {
      const ids: number[] = [];
      for (let t = 0; t < nTokens; t++) {
        const tok = new Set<number>();
        while (tok.size < k) tok.add(Math.floor(nExpert * r() ** 2)); // skewed toward low ids
        ids.push(...tok);
      }
      return Int32Array.from(ids);
    });
    calls.push({ phase: c === 0 ? "prefill" : "decode", nTokens, routes });
  }
  return trace(nLayer, nExpert, k, calls);
}

test("Belady is the optimum: equals exhaustive search on small random traces, and bounds each phase", () => {
  const r = rng(7);
  for (let i = 0; i < 60; i++) {
    const k = 1 + Math.floor(r() * 2);
    const t = randomTrace(r, 1 + Math.floor(r() * 2), 4 + Math.floor(r() * 3), k, 4 + Math.floor(r() * 5));
    const slots = k + Math.floor(r() * 3);
    const seq = accessSequence(t, slots);
    const b = belady(t, slots, seq);
    assert.equal(b.total.hits, bruteForce(seq, slots), `trace ${i}, ${slots} slots`);
    assert.ok(b.bound.prefill.hits >= bruteForce(seq, slots, 0), `trace ${i}: prefill bound`);
    assert.ok(b.bound.decode.hits >= bruteForce(seq, slots, 1), `trace ${i}: decode bound`);
  }
});

test("Belady >= every policy on random traces, in total and per phase, with either pinning", () => {
  const r = rng(11);
  for (let i = 0; i < 40; i++) {
    const k = 1 + Math.floor(r() * 4);
    const nLayer = 1 + Math.floor(r() * 4), nExpert = k + 2 + Math.floor(r() * 14);
    const t = randomTrace(r, nLayer, nExpert, k, 10 + Math.floor(r() * 60));
    for (const m of [1, 1.5, 2, 3]) {
      const slots = slotsForMultiple(t, m);
      const b = belady(t, slots);
      for (const name of POLICY_NAMES) {
        for (const pinning of ["sequential", "group"] as const) {
          const p = replay(t, { slots, policy: policyByName(name, {}, policyContext(t)), pinning });
          const where = `trace ${i}, ${slots} slots, ${name}, ${pinning}`;
          assert.equal(p.total.accesses, b.total.accesses, where);
          assert.ok(b.total.hits >= p.total.hits, `${where}: total ${b.total.hits} < ${p.total.hits}`);
          assert.ok(b.bound.prefill.hits >= p.prefill.hits, `${where}: prefill`);
          assert.ok(b.bound.decode.hits >= p.decode.hits, `${where}: decode`);
        }
      }
    }
  }
});

test("layerTrace is one layer's own pool; policyContext counts a token's touches and each layer's experts", () => {
  const t = trace(2, 8, 2, [
    { phase: "decode", nTokens: 1, routes: [Int32Array.of(0, 1), Int32Array.of(2, 3)] },
    { phase: "decode", nTokens: 1, routes: [Int32Array.of(1, 4), Int32Array.of(3, 5)] },
  ]);
  const l1 = layerTrace(t, 1);
  assert.deepEqual(l1.header.model.recordBytes, [0, 100]);
  assert.deepEqual([...accessSequence(l1, 2).keys], [10, 11, 11, 13]);
  assert.equal(slotsForMultiple(l1, 2), 4);
  assert.deepEqual(policyContext(t), { touchesPerToken: 4, layerExperts: [8, 8] });
  assert.deepEqual(policyContext(l1), { touchesPerToken: 2, layerExperts: [0, 8] });
});

test("a trace made in memory with an expert id past the model's is refused, naming the call, layer, id and limit", () => {
  // Key = layer x nExpert + id: id 9 of layer 0 would alias expert 1 of layer 1 and replay accesses that never happened.
  const bad = trace(2, 8, 2, [
    { phase: "decode", nTokens: 1, routes: [Int32Array.of(0, 1), Int32Array.of(2, 3)] },
    { phase: "decode", nTokens: 1, routes: [Int32Array.of(1, 9), Int32Array.of(3, 5)] },
  ]);
  assert.throws(() => accessSequence(bad, 4), (e: unknown) => e instanceof UsageError && /^trace call 1, layer 0: expert id 9 not in \[0, 8\)/.test(e.message));
  assert.throws(() => replay(bad, { slots: 4, policy: policyByName("lru") }), UsageError);
  assert.throws(() => belady(bad, 4), UsageError);
  // A call read from a file names its line.
  const read = { ...bad, calls: bad.calls.map((c, i) => ({ ...c, line: i + 2 })) };
  assert.throws(() => accessSequence(read, 4), /trace line 3 \(call 1\), layer 0: expert id 9 not in \[0, 8\)/);
  const neg = trace(1, 8, 1, [{ phase: "decode", nTokens: 1, routes: [Int32Array.of(-1)] }]);
  assert.throws(() => accessSequence(neg, 1), /expert id -1 not in \[0, 8\)/);
});
