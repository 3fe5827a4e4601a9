// The candidate policies on hand-worked access sequences: one layer, top-1, one call per access, so the
// cache sees exactly the keys listed (a token is one touch unless a context says otherwise).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ArcPolicy, LfuDecayPolicy, LfudaPolicy, parsePolicySpec, policyByName, S3FifoPolicy } from "../../src/experts/policies.js";
import { replay } from "../../src/experts/replay.js";
import type { EvictionPolicy } from "../../src/experts/eviction.js";
import type { Trace } from "../../src/experts/trace.js";

const single = (keys: number[]): Trace => ({
  header: { model: { architecture: "test", name: "t", nLayer: 1, nExpert: 8, k: 1, recordBytes: [100] }, routing: null },
  calls: keys.map((e) => ({ phase: "decode", nTokens: 1, routes: [Int32Array.of(e)] })),
});
const hits = (keys: number[], slots: number, p: EvictionPolicy) => replay(single(keys), { slots, policy: p }).total.hits;

test("LFU with per-token decay: a fast decay lets a recent key outrank an old frequent one", () => {
  // 2 slots, [0 0 0 0 1 1 2 0]. Decay 0.5 per touch: at 2's miss 0 scores 2+4+8+16 = 30 (x a constant),
  // 1 scores 32+64 = 96, so 0 goes; then 0's miss evicts 1 (96 < 128). Hits: three 0s and one 1 = 4.
  // Decay 0.99: 0 ~ 4.1, 1 ~ 2.1, so 1 goes and 0 hits at the end too = 5, as LFU.
  const keys = [0, 0, 0, 0, 1, 1, 2, 0];
  assert.equal(hits(keys, 2, new LfuDecayPolicy(0.5)), 4);
  assert.equal(hits(keys, 2, new LfuDecayPolicy(0.99)), 5);
  // The decay is per token: 0.5 per 8 touches is 2^(1/8) per touch, 0 ~ 4.99 vs 1 ~ 3.22: 5 again.
  assert.equal(hits(keys, 2, policyByName("lfu-decay", { decay: 0.5 }, { touchesPerToken: 8 })), 5);
  assert.equal(hits(keys, 2, policyByName("lfu-decay", { decay: 0.5, perToken: 1 }, { touchesPerToken: 8 })), 4, "perToken overrides the context");
});

test("LFUDA: dynamic aging lets a once-popular key go", () => {
  // 2 slots, [0 0 0 1 2 1 2 1 2]. Priorities count + age L: 0 reaches 3; 2 evicts 1 (1, L = 1) and
  // enters at 2; 1 evicts 2 (2, L = 2), enters at 3; 2 evicts 0 (3, tie with 1, 0 less recent; L = 3)
  // and enters at 4; then 1 and 2 hit. Hits: two 0s, one 1, one 2 = 4 (LFU without aging keeps 0: 2).
  const keys = [0, 0, 0, 1, 2, 1, 2, 1, 2];
  assert.equal(hits(keys, 2, new LfudaPolicy()), 4);
  assert.equal(hits(keys, 2, policyByName("lfu", { history: 0, halveEvery: 1000 })), 2);
});

test("S3-FIFO: one-off keys leave through the small FIFO; a ghost hit re-enters main", () => {
  // 3 slots, small share 0.1, promote after 1 hit, ghosts round(0.9 x 3) = 3.
  // 0 1 2 fill small; 0 hits. 3: small's oldest 0 was hit -> main; 1 was not -> ghost. small [2 3].
  // 1: 2 -> ghost; 1 is a ghost -> main [0 1]. 4: 3 -> ghost. 5: 4 -> ghost. 1 and 0 hit. Hits 3.
  const keys = [0, 1, 2, 0, 3, 1, 4, 5, 1, 0];
  assert.equal(hits(keys, 3, new S3FifoPolicy()), 3);
  assert.equal(hits(keys, 3, policyByName("lru")), 2);
  // promote=2: 0 (hit once) leaves to the ghosts at 3; 1 hits once, leaves at 4, re-enters main from the
  // ghosts at its miss; 0 has fallen out of the ghosts (3 kept) by its miss. Hits: 0 and 1 once each = 2.
  assert.equal(hits(keys, 3, policyByName("s3fifo", { promote: 2 })), 2);
});

test("ARC: a key seen twice outlives one-offs; a ghost hit in B1 grows T1's target", () => {
  // 2 slots, [0 0 1 2 0]: 0's hit moves it to T2; 2 evicts 1 from T1 (|T1| 1 > p 0); 0 hits. 2 hits (LRU 1).
  assert.equal(hits([0, 0, 1, 2, 0], 2, new ArcPolicy()), 2);
  assert.equal(hits([0, 0, 1, 2, 0], 2, policyByName("lru")), 1);
  // [0 0 0 1 2 1 2 1 2]: 0 reaches T2; 2 evicts 1 (T1 -> B1), 1 evicts 2 (B1 [1 2]) and, a B1 ghost,
  // sets p = 1 and joins T2 [0 1]; 2 (|T1| 0, not > p) evicts 0 from T2, is a B1 ghost too (p = 2),
  // joins T2; then 1 and 2 hit. Hits: two 0s, one 1, one 2 = 4.
  assert.equal(hits([0, 0, 0, 1, 2, 1, 2, 1, 2], 2, new ArcPolicy()), 4);
});

test("new policies parse, and refuse bad parameters", () => {
  assert.deepEqual(parsePolicySpec("lfu-decay:decay=0.8"), { name: "lfu-decay", params: { decay: 0.8 } });
  assert.deepEqual(parsePolicySpec("s3fifo:small=0.2,promote=2"), { name: "s3fifo", params: { small: 0.2, promote: 2 } });
  assert.throws(() => parsePolicySpec("lfu-decay:decay=1"), /decay must be in \(0, 1\)/);
  assert.throws(() => parsePolicySpec("s3fifo:small=0"), /s3fifo small/);
  assert.throws(() => parsePolicySpec("lfuda:x=1"), /policy lfuda has no parameter 'x'/);
});
