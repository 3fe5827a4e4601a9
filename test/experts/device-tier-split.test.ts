// The split tier's admission (DeviceTier's HostSide, --gpu-misses cpu): free slots fill first; once full, a miss
// is admitted only when looked up more than admitRatio times as often as the policy's victim, at most one a split:
// it runs on the host that once and goes up at the next admitQueued() (the next read's wait), on the device from its
// next lookup; --gpu-admit inf never; the victim is asked once a split. Expectations worked by hand on an LRU tier of 2 slots;
// the records and device slots are stand-ins (no weights, no GPU). A batch fills at most an equal share a layer.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Backend, WeightDesc } from "../../src/backends/backend.js";
import { DeviceTier, type DeviceSlots } from "../../src/experts/device-tier.js";
import { LruPolicy } from "../../src/experts/policies.js";
import type { StreamingExperts } from "../../src/experts/streaming-source.js";

function tier(slots: number, admitRatio: number): DeviceTier {
  const reader = { layers: [0, 1], expertCount: () => 8, parts: () => [], recordBytes: () => 64 };
  const none = new Uint8Array(0);
  const host = { reader, capacity: 16, prefetchDepth: 0, acquireRecords: async (_l: number, ids: readonly number[]) => ids.map(() => none), withRecord: async (_l: number, _e: number, use: (r: Uint8Array) => unknown) => use(none), release: () => undefined, prefetch: () => undefined };
  const dev: DeviceSlots = { nSlots: slots, slotBytes: 64, write: () => undefined, view: (_s: number, d: WeightDesc) => d, uploadStats: { uploads: 0, bytes: 0, ms: 0 }, free: () => undefined };
  return new DeviceTier(host as unknown as StreamingExperts, dev, new LruPolicy(), { minExperts: 1, hostBackend: {} as Backend, admitRatio });
}

/** split() then acquire() of what went to the device, as the model does: the device side of each call; then the admissions, as the next read does. */
async function route(t: DeviceTier, layer: number, ids: number[]): Promise<{ device: number[]; host: number[]; uploads: number }> {
  const s = t.host!.split(layer, ids);
  if (s.device.length) {
    await t.acquire(layer, s.device);
    t.release(layer, s.device);
  }
  await t.host!.admitQueued!();
  return s;
}

test("split tier admission: free slots fill first; then a miss goes up only over a victim looked up less than 1/ratio as often, one a split", async () => {
  const t = tier(2, 2);
  assert.deepEqual(await route(t, 0, [1, 2]), { device: [1, 2], host: [], uploads: 2 }, "free slots fill");
  assert.deepEqual(await route(t, 0, [3]), { device: [], host: [3], uploads: 0 }, "expert 3 (1 lookup) is not over 2x the LRU victim 1 (1 lookup)");
  await route(t, 0, [3]);
  assert.deepEqual(await route(t, 0, [3]), { device: [], host: [3], uploads: 0 }, "3 lookups > 2 x 1: expert 3 is admitted, running on the host this once");
  assert.ok(t.onDevice(t.keyOf(0, 3)) && !t.onDevice(t.keyOf(0, 1)), "then it went up over expert 1");
  assert.deepEqual(await route(t, 0, [3]), { device: [3], host: [], uploads: 0 }, "its next lookup is a device hit");
  assert.deepEqual([t.stats.misses, t.stats.admits, t.stats.evictions, t.stats.hits], [2, 1, 1, 1]);
  // Experts 4 and 5, each looked up 3 times while 2 (1 lookup) is the victim: only one is admitted in a split.
  for (let i = 0; i < 2; i++) await route(t, 1, [4, 5]);
  const s = await route(t, 1, [4, 5]);
  assert.deepEqual(s, { device: [], host: [4, 5], uploads: 0 });
  assert.equal(t.stats.admits, 2, "one admission a split");
  assert.equal([4, 5].filter((e) => t.onDevice(t.keyOf(1, e))).length, 1);
  assert.equal(t.stats.hostRuns, 3 + 6);
  // An admission whose upload fails leaves the expert on the host and the tier as it was; admitQueued settles.
  const f = tier(1, 1);
  await route(f, 0, [1]);
  await route(f, 0, [2]);
  (f.slots as { write: DeviceSlots["write"] }).write = () => {
    throw new Error("refused");
  };
  await route(f, 0, [2]); // 2 lookups > 1 x 1: admitted, its write refused
  assert.deepEqual([f.onDevice(f.keyOf(0, 2)), f.stats.admits, f.freeSlots()], [false, 0, 1], "the victim's slot is free again");
});

test("split tier admission: --gpu-admit inf uploads nothing once the slots are full; the policy's victim is asked once a split, not per miss", async () => {
  const t = tier(2, Infinity);
  await route(t, 0, [1, 2]);
  for (let i = 0; i < 5; i++) assert.deepEqual(await route(t, 0, [3, 4, 5]), { device: [], host: [3, 4, 5], uploads: 0 });
  assert.equal(t.stats.misses, 2, "only the free slots' uploads");
  const r = tier(2, 8);
  await route(r, 0, [1, 2]);
  let asked = 0;
  const peek = r.peekVictim.bind(r);
  r.peekVictim = (protect, incoming) => (asked++, peek(protect, incoming));
  await route(r, 0, [3, 4, 5, 6]);
  assert.equal(asked, 1, "one victim query for four misses");
  await route(r, 1, [7]);
  assert.equal(asked, 2);
});

test("split tier fill: a batch (a prompt) takes at most an equal share of the free slots in a layer, its most used experts first; a decode token's fill free slots as they come", async () => {
  const t = tier(4, Infinity); // 2 layers: a share of 2 slots
  assert.deepEqual(await route(t, 0, [1, 1, 1, 2, 3, 3]), { device: [1, 3], host: [2], uploads: 2 }, "1 (3 uses) and 3 (2 uses) go up, 2 (1 use) runs on the host");
  assert.deepEqual(await route(t, 1, [5, 5, 6, 7, 7, 7]), { device: [7, 5], host: [6], uploads: 2 }, "layer 1 gets its share too");
  assert.deepEqual(await route(t, 0, [2]), { device: [], host: [2], uploads: 0 }, "no slot left");
  const d = tier(4, Infinity);
  assert.deepEqual(await route(d, 0, [1, 2, 3]), { device: [1, 2, 3], host: [], uploads: 3 }, "a token's experts, each used once: not capped");
});
