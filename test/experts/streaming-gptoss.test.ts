// The standing invariant for gpt-oss (MXFP4 experts, each record also carrying its gate/up/down biases; sliding-window
// layers): logits with streamed experts are identical to the resident path, packed and plain, at every cache budget;
// a record is one read holding all six parts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../../src/format/gguf/read.js";
import { planExpertLayers } from "../../src/experts/pack-format.js";
import { smallVocabModel } from "../helpers/models.js";
import { checkStreamedEqualsResident } from "../helpers/streaming.js";
import { expertLayout } from "../helpers/experts.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-stream-gptoss-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const source = () => smallVocabModel({ preset: "gpt-oss-tiny", type: "Q8_0", expertType: "MXFP4", seed: 3, nVocab: 4096 });

test("gpt-oss: an expert record holds each projection and its bias (MXFP4 matrices, F32 biases), parts aligned", async () => {
  const file = await openGGUF(await source());
  try {
    const [l0] = planExpertLayers(file, expertLayout(file));
    assert.deepEqual(l0.parts.map((p) => [p.name, p.shape]), [
      ["gate", [256, 256]], ["gate_b", [256]], ["up", [256, 256]], ["up_b", [256]], ["down", [256, 256]], ["down_b", [256]],
    ]);
    assert.deepEqual(l0.parts.map((p) => p.type), [39, 0, 39, 0, 39, 0]);
    assert.ok(l0.parts.every((p) => p.offset % 64 === 0), "parts start on 64 bytes");
    assert.equal(l0.recordBytes % 4096, 0, "records are whole pages");
  } finally {
    await file.source.close();
  }
});

test("gpt-oss: streamed logits equal resident logits for packed dir and plain GGUF, at every budget", async () => {
  // More tokens than the window of 8: the sliding layers drop positions while streaming.
  await checkStreamedEqualsResident(await source(), dir, [3555, 11, 1879, 374, 13, 2701, 264, 1273, 315, 279]);
});
