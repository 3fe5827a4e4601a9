// Other layouts of the same model against llama.cpp (node-llama-cpp 3.22.1, flash attention off), which loads them
// all: fused attn_qkv (create_tensor_qkv: qwen3moe, qwen3next, qwen35moe, glm4moe, with glm4moe's fused bias, llama, olmoe), fused
// ffn_gate_up_exps (create_tensor_gate_up_exps: qwen3next, qwen35moe, deepseek2), and the keys llama.cpp reads with
// get_key_or_arr given per layer (head counts, FFN widths, experts used; deepseek2 and glm4moe with
// feed_forward_length 0 on the MoE layers, which only the dense layers read). The variant holds the split file's
// values (rows moved whole, keys repeated), so our logits on it must equal ours on the split file bit for bit,
// llama.cpp's must equal its own on the split file, and so ours match llama.cpp's at every prompt position exactly
// as on the split file (which each architecture's golden test holds to its tolerance).
import { test } from "node:test";
import assert from "node:assert/strict";
import { openGGUF } from "../../src/format/gguf/read.js";
import { metaNumber } from "../../src/format/gguf/accessors.js";
import { meta } from "../../src/format/gguf/write.js";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { perLayerArrays } from "../../src/gen/generate.js";
import { smallVocabModel } from "../helpers/models.js";
import { Rewrites } from "../helpers/bad-input.js";
import { llamaLogitsAll } from "../helpers/llama.js";
import { relRmse } from "../helpers/llama-parity.js";

const files = new Rewrites();
test.after(() => files.remove());
const PROMPT = "The capital of France is Paris. def f(x):\n    return x ** 2";
const CASES: { preset: string; arch: string; fused: string[] }[] = [
  { preset: "qwen35moe-tiny", arch: "qwen35moe", fused: ["blk.3.attn_qkv.weight", "blk.0.ffn_gate_up_exps.weight"] },
  { preset: "qwen3next-tiny", arch: "qwen3next", fused: ["blk.3.attn_qkv.weight", "blk.1.ffn_gate_up_exps.weight"] },
  { preset: "deepseek2-tiny", arch: "deepseek2", fused: ["blk.1.ffn_gate_up_exps.weight"] },
  { preset: "glm4moe-tiny", arch: "glm4moe", fused: ["blk.0.attn_qkv.weight", "blk.0.attn_qkv.bias"] },
  { preset: "tiny", arch: "qwen3moe", fused: ["blk.0.attn_qkv.weight"] },
  { preset: "mixtral-tiny", arch: "llama", fused: ["blk.0.attn_qkv.weight"] },
  { preset: "olmoe-tiny", arch: "olmoe", fused: ["blk.0.attn_qkv.weight"] },
];

async function ours(path: string): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend: "native", expertIo: "resident" }));
  try {
    const tokens = lm.tokenizer.encode(PROMPT, { parseSpecial: true });
    const all = await lm.model.forward(Int32Array.from(tokens), lm.model.makeCache(64), { logits: "all" });
    const V = lm.model.info.nVocab;
    return { tokens, logits: tokens.map((_, p) => all.subarray(p * V, (p + 1) * V)) };
  } finally {
    await lm.close();
  }
}

for (const { preset, arch, fused } of CASES) {
  test(`${arch} Q8_0 with fused ${fused.map((n) => n.replace(/^blk\.\d+\./, "")).join(", ")} and per-layer keys: logits equal the split file's, and llama.cpp's on it`, async () => {
    const opts = { preset: preset as never, type: "Q8_0", seed: 11, nVocab: 8192 };
    const splitPath = await smallVocabModel(opts);
    const path = await files.of(await smallVocabModel({ ...opts, fuse: ["qkv", "gate_up"] }), (t, md) => {
      perLayerArrays(md, arch);
      const lead = metaNumber(md, `${arch}.leading_dense_block_count`, { default: 0 });
      if (lead > 0) md.set(`${arch}.feed_forward_length`, meta.u32Array((md.get(`${arch}.feed_forward_length`)!.value as number[]).map((x, i) => (i < lead ? x : 0))));
      return t;
    });
    const f = await openGGUF(path);
    const names = new Set(f.tensors.map((t) => t.name));
    assert.equal(f.metadata.get(`${arch}.attention.head_count`)?.type, "array");
    await f.source.close();
    for (const n of fused) {
      assert.ok(names.has(n), `the fused file has ${n}`);
      const parts = n.includes("gate_up") ? ["gate", "up"].map((p) => n.replace("gate_up", p)) : ["q", "k", "v"].map((p) => n.replace("qkv", p));
      for (const p of parts) assert.ok(!names.has(p), `${p} is fused into ${n}`);
    }

    const split = await ours(splitPath);
    const mine = await ours(path);
    assert.deepEqual(mine.tokens, split.tokens);
    mine.logits.forEach((l, p) => assert.deepEqual(l, split.logits[p], `position ${p}: our logits differ from the split file's`));

    const [ref, refSplit] = [await llamaLogitsAll(path, mine.tokens, "batch", { flashAttention: false }), await llamaLogitsAll(splitPath, mine.tokens, "batch", { flashAttention: false })];
    const self = Math.max(...ref.map((r, p) => relRmse(r, refSplit[p])));
    assert.ok(self <= 1e-6, `llama.cpp's logits on the variant and the split file differ by ${self.toExponential(3)}`);
    let worst = 0;
    for (let p = 0; p < mine.tokens.length; p++) {
      const err = relRmse(mine.logits[p], ref[p]), errSplit = relRmse(split.logits[p], refSplit[p]);
      assert.ok(err <= errSplit * 1.001 + 1e-6, `position ${p}: relative RMSE to llama.cpp ${err.toExponential(3)} on the variant, ${errSplit.toExponential(3)} on the split file`);
      worst = Math.max(worst, err);
    }
    console.log(`# ${arch} fused + per-layer keys: worst relative RMSE to llama.cpp ${worst.toExponential(3)} over ${mine.tokens.length} positions, as on the split file; llama.cpp variant vs split ${self.toExponential(3)}`);
  });
}
