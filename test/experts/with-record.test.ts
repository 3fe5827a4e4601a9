// StreamingExperts.withRecord, the split tier's background admission's way to a record: it hands over the record as
// read (weights a host backend made over it, perhaps rewriting it in place, undone first) in the same tick, and
// nothing while another acquire holds it. The "backend" here reverses a record's bytes in place and back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { GGUFExpertReader } from "../../src/experts/store.js";
import { StreamingExperts } from "../../src/experts/streaming-source.js";
import { testModel } from "../helpers/models.js";
import { expertLayout } from "../helpers/experts.js";

test("withRecord: the record as read (made weights undone first), not while another acquire holds it; made again after", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const reader = await GGUFExpertReader.open(src, expertLayout), clean = await GGUFExpertReader.open(src, expertLayout);
  const slot = reader.recordBytes(0);
  const s = new StreamingExperts(reader, new ScalarBackend(), { budgetBytes: 8 * slot, minExperts: 4 });
  const want = new Uint8Array(slot);
  await clean.readExpert(0, 2, want);
  let made = 0, undone = 0;
  const make = (_e: number, rec: Uint8Array) => {
    made++;
    rec.reverse(); // rewritten in place, as the native backend's repack
    return { weights: {}, undo: () => (undone++, rec.reverse()) };
  };
  await s.acquireMade(0, [2], make);
  assert.equal(await s.withRecord(0, 2, () => assert.fail("use called while a host run holds the record")), undefined);
  assert.equal(undone, 0, "held: not undone");
  s.release(0, [2]);
  const got = await s.withRecord(0, 2, (rec) => rec.slice());
  assert.deepEqual(got, want, "the record as read");
  assert.equal(undone, 1);
  assert.equal(s.pinned(), 0);
  await s.acquireMade(0, [2], make);
  assert.equal(made, 2, "made again over the restored record");
  s.release(0, [2]);
});
