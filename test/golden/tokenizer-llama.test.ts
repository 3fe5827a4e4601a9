// Tokenization against llama.cpp itself on the varied parity corpus (and fuzzed strings), with special
// tokens parsed and not. Inputs are NFC-normalised first: llama.cpp does not normalise, our default
// (like the model's own tokenizer.json) does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { testModel } from "../helpers/models.js";
import { llamaTokenize } from "../helpers/llama.js";
import { CORPUS, fuzzStrings, latin1Random } from "../tokenizer/corpus.js";

test("encode() equals llama.cpp's tokenizer on the corpus, special tokens parsed and not", async () => {
  const model = await testModel({ type: "Q8_0", seed: 3 });
  const texts = [...Object.values(CORPUS), latin1Random(7, 2000), ...fuzzStrings(5, 150)].map((t) => t.normalize("NFC"));
  const lm = await loadModel(model, defaultEngineConfig());
  try {
    for (const special of [true, false]) {
      const ref = await llamaTokenize(model, texts, special);
      texts.forEach((t, i) => assert.deepEqual(lm.tokenizer.encode(t, { parseSpecial: special }), ref[i], `text ${i} (special ${special}): ${JSON.stringify(t.slice(0, 60))}`));
    }
  } finally {
    await lm.close();
  }
});
