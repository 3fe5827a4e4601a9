// Fused expert layouts stream as the split ones do: a file whose experts are one ffn_gate_up_exps per layer (per
// expert its gate rows, then its up rows) gives logits identical to resident at every budget, packed and plain; the
// fused part is one read per expert from the GGUF and one part of each packed record, handed out as gate and up.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { smallVocabModel } from "../helpers/models.js";
import { checkStreamedEqualsResident } from "../helpers/streaming.js";
import { ExpertStore, GGUFExpertReader } from "../../src/experts/store.js";
import { expertLayout } from "../helpers/experts.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-stream-fused-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("qwen35moe-tiny with fused ffn_gate_up_exps and attn_qkv: streamed logits equal resident, packed and plain, at every budget", async () => {
  const src = await smallVocabModel({ preset: "qwen35moe-tiny", type: "Q8_0", seed: 3, nVocab: 4096, fuse: ["qkv", "gate_up"] });
  await checkStreamedEqualsResident(src, join(dir, "q35"), [3555, 11, 1879, 374, 13, 2701]);

  // The pack's records: gate_up (split into gate and up rows) and down, nothing else.
  const store = await ExpertStore.open(join(dir, "q35", "packed"));
  try {
    for (const l of store.layers) {
      const parts = store.parts(l);
      assert.deepEqual(parts.map((p) => p.name), ["gate_up", "down"], `layer ${l}`);
      assert.equal(parts[0].tensor, `blk.${l}.ffn_gate_up_exps.weight`);
      assert.deepEqual(parts[0].split, [{ name: "gate", rows: parts[0].shape[1] / 2 }, { name: "up", rows: parts[0].shape[1] / 2 }]);
    }
  } finally {
    await store.close();
  }
  // From the GGUF: one positioned read per part, so two per expert (the fused slice and down).
  const reader = await GGUFExpertReader.open(src, expertLayout);
  try {
    const l = reader.layers[0];
    await reader.readExpert(l, 5, new Uint8Array(reader.recordBytes(l)));
    assert.deepEqual(reader.stats, { reads: 2, bytes: reader.parts(l).reduce((a, p) => a + p.byteLength, 0) });
  } finally {
    await reader.close();
  }
});
