// The standing invariant for qwen3moe: logits with streamed experts are identical to the resident path, for a
// packed dir and a plain GGUF, at every cache budget from one layer's active experts up to all experts.
import { test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { smallVocabModel } from "../helpers/models.js";
import { checkStreamedEqualsResident } from "../helpers/streaming.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-stream-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("streamed logits equal resident logits for packed dir and plain GGUF, at every budget", async () => {
  // The vocabulary cut to 8192 tokens: the scalar reference's 151k-row output head cost most of the time.
  await checkStreamedEqualsResident(await smallVocabModel({ type: "Q8_0", seed: 3, nVocab: 8192 }), dir, [1515, 11, 1879, 3555, 374, 13]);
});
