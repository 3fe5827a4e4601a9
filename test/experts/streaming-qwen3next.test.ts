// The standing invariant for the hybrid linear-attention architectures (DeltaNet and full-attention layers, sigmoid-
// gated shared experts resident, an MTP block in the file): logits with streamed experts are identical to the
// resident path, packed and plain, at every cache budget.
import { test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { smallVocabModel } from "../helpers/models.js";
import { checkStreamedEqualsResident } from "../helpers/streaming.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-stream-qnext-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

for (const preset of ["qwen3next-tiny", "qwen35moe-tiny"] as const) {
  test(`${preset}: streamed logits equal resident logits for packed dir and plain GGUF, at every budget`, async () => {
    const src = await smallVocabModel({ preset, type: "Q8_0", seed: 3, nVocab: 4096 });
    await checkStreamedEqualsResident(src, join(dir, preset), [3555, 11, 1879, 374, 13, 2701]);
  });
}
