// Staging: speculative reads land in staging slots, are taken as a set, count as used or wasted, back off
// at low precision, and leave nothing in flight after cancel().
import { test } from "node:test";
import assert from "node:assert/strict";
import { Staging } from "../../src/experts/prefetch.js";
import type { ExpertReader } from "../../src/experts/store.js";

/** A reader of 8-byte records whose bytes say (layer, expert); reads finish when told to. */
function fakeReader(opts: { failOn?: (l: number, e: number) => boolean } = {}) {
  const waiting: (() => void)[] = [];
  const reader: ExpertReader = {
    layers: [0, 1],
    expertCount: () => 8,
    recordBytes: () => 8,
    parts: () => [],
    readExpert: (l, e, dst) =>
      new Promise<void>((resolve, reject) =>
        waiting.push(() => {
          if (opts.failOn?.(l, e)) return reject(new Error(`read failed ${l}/${e}`));
          dst.fill(l * 16 + e);
          resolve();
        }),
      ),
    close: async () => undefined,
  };
  const finishAll = async () => {
    while (waiting.length) waiting.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { reader, finishAll };
}

test("predictions are taken as a set; the rest of the layer is wasted", async () => {
  const { reader, finishAll } = fakeReader();
  const st = new Staging(reader, { slots: 4, slotBytes: 8 });
  st.issue(1, 3, "lookahead");
  st.issue(1, 5, "lookahead");
  st.issue(1, 6, "prev");
  st.issue(1, 7, "prev");
  st.issue(1, 2, "prev"); // no free slot: ignored
  assert.equal(st.stats.lookahead.issued + st.stats.prev.issued, 4);
  // The real routing asks for 5, 6 (any order): taken; 3 and 7 are wasted when the layer settles.
  const a = st.take(1, 6)!, b = st.take(1, 5)!;
  assert.equal(st.take(1, 2), undefined);
  await finishAll();
  await a.ready;
  await b.ready;
  assert.equal(a.buf[0], 16 + 6);
  assert.equal(b.buf[0], 16 + 5);
  st.settleLayer(1);
  assert.deepEqual([st.stats.lookahead.used, st.stats.lookahead.wasted, st.stats.prev.used, st.stats.prev.wasted], [1, 1, 1, 1]);
  // The taker hands back two buffers; with the two wasted ones all 4 slots are free again.
  st.give(new Uint8Array(8));
  st.give(new Uint8Array(8));
  for (const e of [0, 1, 2, 3]) st.issue(0, e, "lookahead");
  assert.equal(st.stats.lookahead.issued, 2 + 4);
  await finishAll();
  await st.cancel();
  assert.equal(st.outstanding, 0);
});

test("cancel() drops predictions and waits for reads in flight; a failed speculative read stays silent", async () => {
  const { reader, finishAll } = fakeReader({ failOn: (l, e) => e === 1 });
  const st = new Staging(reader, { slots: 2, slotBytes: 8 });
  st.issue(0, 1, "prev");
  st.issue(0, 2, "prev");
  const c = st.cancel();
  assert.ok(st.outstanding > 0, "reads still in flight");
  await finishAll();
  await c;
  assert.equal(st.outstanding, 0);
  // Both buffers came back: two new reads fit.
  st.issue(1, 4, "prev");
  st.issue(1, 5, "prev");
  assert.equal(st.stats.prev.issued, 4);
  await finishAll();
  await st.cancel();
});

test("a source whose precision stays below the floor pauses, then is tried again", async () => {
  const { reader, finishAll } = fakeReader();
  const st = new Staging(reader, { slots: 1, slotBytes: 8, minPrecision: 0.5, window: 4, pause: 3 });
  for (let i = 0; i < 4; i++) {
    st.issue(0, i, "prev");
    await finishAll();
    st.settleLayer(0); // never used
  }
  const issued = st.stats.prev.issued;
  st.issue(0, 7, "prev");
  assert.equal(st.stats.prev.issued, issued, "paused");
  st.settleLayer(1);
  st.settleLayer(1);
  st.issue(0, 7, "prev");
  assert.equal(st.stats.prev.issued, issued + 1, "tried again after the pause");
  await finishAll();
  await st.cancel();
});
