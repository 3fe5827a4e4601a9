// Deeper prefetch and the read queue: router lookahead several layers ahead gives the same logits as no
// prefetch at every depth and cache size; reads run by priority (demand first, nearer layers next),
// queued speculative reads are dropped unread when their layer is served, cancel leaks no staging slot,
// and O_DIRECT reads of a pack give the same bytes as buffered ones, aligned buffer or not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packModel } from "../../src/experts/pack.js";
import { ExpertError } from "../../src/experts/pack-format.js";
import { ExpertStore, type ExpertReader } from "../../src/experts/store.js";
import { StreamingExperts } from "../../src/experts/streaming-source.js";
import { DEMAND, FILL, IoQueue, ReadCancelled } from "../../src/experts/io-queue.js";
import { Staging } from "../../src/experts/prefetch.js";
import { smallVocabModel, testModel } from "../helpers/models.js";
import { buildModel, expertLayout, runLogits } from "../helpers/experts.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-deep-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const TOKENS = [1515, 11, 1879, 3555, 374, 13, 42, 7];

/** A reader of 8-byte records whose reads finish when told to, in any order; logs start order. */
function manualReader() {
  const started: string[] = [];
  const waiting = new Map<string, () => void>();
  const reader: ExpertReader = {
    layers: [0, 1, 2, 3],
    expertCount: () => 8,
    recordBytes: () => 8,
    parts: () => [],
    readExpert: (l, e, dst) =>
      new Promise<void>((resolve) => {
        started.push(`${l}:${e}`);
        waiting.set(`${l}:${e}`, () => (dst.fill(l * 16 + e), resolve()));
      }),
    close: async () => undefined,
  };
  const finish = async (key?: string) => {
    for (const [k, f] of [...waiting]) {
      if (key !== undefined && k !== key) continue;
      waiting.delete(k);
      f();
    }
    await new Promise((r) => setImmediate(r));
  };
  return { reader, started, finish };
}

test("io queue: demand before speculative, nearer depth first, reserve kept for demand, cancel and promote", async () => {
  const { reader, started, finish } = manualReader();
  const io = new IoQueue(reader, { depth: 3, demandReserve: 1 });
  const buf = () => new Uint8Array(8);
  const far = io.read(3, 0, buf(), 2);
  const near = io.read(1, 0, buf(), 1);
  const fill = io.read(0, 7, buf(), FILL);
  const near2 = io.read(1, 1, buf(), 1);
  // Two speculative reads may run (3 - 1 reserved): the two nearest, in issue order.
  assert.deepEqual(started, ["3:0", "1:0"]);
  const demand = io.read(2, 5, buf(), DEMAND);
  assert.equal(started.length, 3, "a demand read starts at once in the reserved slot");
  assert.equal(started[2], "2:5");
  assert.equal(near2.cancel(), true, "queued: cancelled");
  await assert.rejects(near2.done, ReadCancelled);
  fill.promote(DEMAND); // the forward now waits on the fill read
  await finish("2:5");
  await demand.done;
  assert.equal(started[3], "0:7", "the promoted fill read takes the freed slot");
  await finish();
  await finish();
  await Promise.all([far.done, near.done, fill.done]);
  assert.equal(io.pending, 0);
  assert.equal(io.stats.cancelled, 1);
  assert.equal(io.stats.demandReads, 2); // the demand and the promoted fill
  assert.equal(io.stats.speculativeReads, 2);
});

test("io queue: nearer depth is started before farther when a slot frees", async () => {
  const { reader, started, finish } = manualReader();
  const io = new IoQueue(reader, { depth: 1, demandReserve: 0 });
  const a = io.read(0, 0, new Uint8Array(8), 3);
  const b = io.read(0, 1, new Uint8Array(8), 3);
  const c = io.read(0, 2, new Uint8Array(8), 1);
  await finish();
  await finish();
  await finish();
  await Promise.all([a.done, b.done, c.done]);
  assert.deepEqual(started, ["0:0", "0:2", "0:1"]);
});

test("io queue: wait accounting counts bytes that land while a caller waits", async () => {
  const { reader, finish } = manualReader();
  const io = new IoQueue(reader, { depth: 4 });
  // The wait begins before the read is issued, so all of its run (and all 8 bytes) falls inside the wait however
  // long the thread pauses between the two calls (a pause there once left 4.6 bytes counted under load).
  const t0 = performance.now();
  io.beginWait();
  const t = io.read(0, 0, new Uint8Array(8), DEMAND);
  await new Promise((r) => setTimeout(r, 5));
  await finish();
  await t.done;
  io.endWait();
  const outside = performance.now() - t0;
  // Bounded by the wait as this test saw it (no threshold on how long a timer really slept).
  assert.ok(io.stats.waitMs > 0 && io.stats.waitMs <= outside, `waitMs ${io.stats.waitMs} within ${outside}`);
  assert.ok(io.stats.bytesDuringWait > 7 && io.stats.bytesDuringWait <= 8, `got ${io.stats.bytesDuringWait}`);
  assert.ok(io.stats.waitDepthMs[1] > 0, "one read in flight during the wait");
});

test("staging: a prediction still queued when its layer is served is dropped unread; cancel returns every slot", async () => {
  const { reader, started, finish } = manualReader();
  const io = new IoQueue(reader, { depth: 1, demandReserve: 0 });
  const st = new Staging(io, { slots: 4, slotBytes: 8 });
  st.issue(1, 1, "lookahead", 1);
  st.issue(2, 2, "lookahead", 2);
  st.issue(2, 3, "prev", 2);
  assert.deepEqual(started, ["1:1"]);
  st.settleLayer(2); // layer 2 served before its reads started
  assert.equal(st.byDepth.lookahead[2].cancelled, 1);
  assert.equal(st.byDepth.prev[2].cancelled, 1);
  assert.equal(st.idle, 3, "the two dropped slots are free at once");
  st.issue(3, 4, "lookahead", 2);
  const c = st.cancel();
  await finish();
  await c;
  assert.equal(st.outstanding, 0);
  assert.equal(st.idle, 4, "no staging slot leaked");
  assert.equal(io.pending, 0);
});

test("logits are identical at prefetch depth 0..3, cache sizes min to full; cancel leaves nothing behind", async () => {
  // The vocabulary cut to 8192 tokens: ten scalar-backend builds of the 151k-row output head cost most of the time.
  const src = await smallVocabModel({ type: "Q8_0", seed: 5, routing: { kind: "realistic", skew: 1, locality: 0.5 }, nVocab: 8192 });
  const packed = join(dir, "packed");
  await packModel(src, packed, { experts: expertLayout });
  const store = await ExpertStore.open(packed);
  try {
    const slot = Math.max(...store.layers.map((l) => store.recordBytes(l)));
    const dense = join(packed, "dense.gguf");
    let ref: Float32Array[] | undefined;
    let nExpertUsed = 0, all = 0;
    {
      const m = await buildModel(dense, (be, hp) => ((nExpertUsed = hp.nExpertUsed), (all = hp.nExpert * hp.nLayer), new StreamingExperts(store, be, { budgetBytes: hp.nExpert * hp.nLayer * slot })));
      ref = await runLogits(m, TOKENS, "steps");
    }
    for (const slots of [nExpertUsed, 3 * nExpertUsed, all]) {
      for (const depth of [1, 2, 3]) {
        let source!: StreamingExperts;
        const m = await buildModel(dense, (be) => (source = new StreamingExperts(store, be, { budgetBytes: slots * slot, minExperts: nExpertUsed, prefetchSlots: 2 * nExpertUsed, prefetchDepth: depth, ioDepth: 6 })));
        assert.deepEqual(await runLogits(m, TOKENS, "steps"), ref, `${slots} slots, depth ${depth}`);
        const st = source.staging!;
        if (slots === all) {
          await source.whenFilled();
          assert.equal(source.prefetchDepth, 0, "every expert cached: no lookahead to pay for");
        } else assert.equal(source.prefetchDepth, depth);
        if (slots < all) {
          assert.ok(st.byDepth.lookahead[depth]?.issued > 0, `${slots} slots: lookahead issued at depth ${depth}`);
          assert.equal(source.stats.hits + source.stats.misses, TOKENS.length * m.hp.nLayer * nExpertUsed);
        }
        await source.cancelPrefetch();
        assert.equal(st.outstanding, 0);
        assert.equal(st.idle, st.slots, "every staging slot is back");
        assert.equal(st.slots, 2 * nExpertUsed * depth);
        assert.equal(source.pinned(), 0);
        assert.equal(source.io.pending, 0);
      }
    }
  } finally {
    await store.close();
  }
});

test("O_DIRECT reads of a pack equal buffered reads, aligned or not", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const packed = join(dir, "packed-direct");
  await packModel(src, packed, { experts: expertLayout });
  const direct = await ExpertStore.open(packed, { direct: true });
  const buffered = await ExpertStore.open(packed, { direct: false });
  try {
    const l = direct.layers[1], n = direct.recordBytes(l);
    const want = new Uint8Array(n);
    await buffered.readExpert(l, 3, want);
    const raw = new Uint8Array(n + 4096);
    const at = await direct.alignOffset(raw);
    const aligned = raw.subarray(at, at + n);
    await direct.readExpert(l, 3, aligned);
    assert.deepEqual(aligned, want);
    const odd = new Uint8Array(n + 8).subarray(8, 8 + n);
    await direct.readExpert(l, 3, odd);
    assert.deepEqual(odd, want);
    if (direct.direct) assert.ok(direct.stats.direct >= 1, "the aligned buffer was read with O_DIRECT");
  } finally {
    await direct.close();
    await buffered.close();
  }
});

test("O_DIRECT: a record cut off by truncation is refused as a short read of the whole record, as buffered", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const packed = join(dir, "packed-trunc");
  await packModel(src, packed, { experts: expertLayout });
  const store = await ExpertStore.open(packed, { direct: true });
  try {
    const l = store.layers[2], R = store.recordBytes(l);
    truncateSync(join(packed, store.manifest.layers.find((x) => x.layer === l)!.file), store.recordOffset(l, 4) + 1000);
    const raw = new Uint8Array(R + 4096);
    const at = await store.alignOffset(raw);
    await assert.rejects(store.readExpert(l, 4, raw.subarray(at, at + R)), (e: unknown) =>
      e instanceof ExpertError && e.code === "short_read" && e.offset === store.recordOffset(l, 4) && (e as Error).message.includes(`expected ${R} bytes, got 1000`));
  } finally {
    await store.close();
  }
});
