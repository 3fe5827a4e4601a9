import { Tokenizer } from "/work/wt-tok/src/tokenizer/index.js";
import { vocabGGUF, pairVocabMetadata } from "/work/wt-tok/test/helpers/vocab-gguf.js";
import { llamaTokenize } from "/work/wt-tok/test/helpers/llama.js";
import { CORPUS, fuzzStrings, latin1Random } from "/work/wt-tok/test/tokenizer/corpus.js";
const pres = process.argv.slice(2);
const texts = [...Object.values(CORPUS), latin1Random(7, 2000), ...fuzzStrings(5, 300)];
const qwen = Tokenizer.fromMetadata(pairVocabMetadata("qwen2"), { nfc: false });
for (const pre of pres) {
  const t0 = Date.now();
  const path = await vocabGGUF(`pairs-${pre}`, () => pairVocabMetadata(pre));
  const tok = Tokenizer.fromMetadata(pairVocabMetadata(pre), { nfc: false });
  const t1 = Date.now();
  const ref = await llamaTokenize(path, texts, true, { vocabOnly: true });
  const t2 = Date.now();
  let bad = 0, diffQwen = 0;
  texts.forEach((t, i) => {
    const ours = tok.encode(t);
    if (JSON.stringify(ours) !== JSON.stringify(qwen.encode(t))) diffQwen++;
    if (JSON.stringify(ours) !== JSON.stringify(ref[i])) {
      if (bad++ < 3) console.log(pre, "MISMATCH", JSON.stringify(t.slice(0, 80)), "\n ours", tok.decode(ours.slice(0,40)).length, ours.slice(0, 30).map((x) => JSON.stringify(tok.decode([x]))).join("|"), "\n ref ", ref[i].slice(0, 30).map((x) => JSON.stringify(tok.decode([x]))).join("|"));
    }
  });
  console.log(pre, "mismatches", bad, "/", texts.length, "differ from qwen2:", diffQwen, "build ms", t1 - t0, "llama ms", t2 - t1);
}
