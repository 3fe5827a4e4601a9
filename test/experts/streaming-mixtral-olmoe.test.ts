// The standing invariant for llama (Mixtral: 8 experts, top-2) and olmoe (16 experts, top-8): logits with streamed
// experts are identical to the resident path, packed and plain, at every cache budget from one token's experts to all.
import { test } from "node:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { smallVocabModel } from "../helpers/models.js";
import { checkStreamedEqualsResident } from "../helpers/streaming.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-stream-mixolmoe-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

for (const preset of ["mixtral-tiny", "olmoe-tiny"] as const) {
  test(`${preset}: streamed logits equal resident logits for packed dir and plain GGUF, at every budget`, async () => {
    const src = await smallVocabModel({ preset, type: "Q8_0", seed: 11, nVocab: 8192 }); // the golden test's source model: generated once
    mkdirSync(join(dir, preset));
    await checkStreamedEqualsResident(src, join(dir, preset), [3555, 11, 1879, 374, 13, 2701]);
  });
}
