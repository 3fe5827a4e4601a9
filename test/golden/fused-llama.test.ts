// Fused layouts against llama.cpp (node-llama-cpp 3.22.1, flash attention off), which loads them all: attn_qkv
// (create_tensor_qkv: qwen3moe, qwen3next, qwen35moe, glm4moe, with glm4moe's fused bias) and ffn_gate_up_exps
// (create_tensor_gate_up_exps: qwen3next, qwen35moe, deepseek2). Each fused file holds the split file's values
// (rows moved whole), so our logits on it must equal our logits on the split file bit for bit, and llama.cpp's on
// it must match ours at every prompt position as well as on the split file (which its own golden test checks).
import { test } from "node:test";
import assert from "node:assert/strict";
import { openGGUF } from "../../src/format/gguf/read.js";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import type { Fusion } from "../../src/gen/fuse.js";
import { smallVocabModel } from "../helpers/models.js";
import { llamaLogitsAll } from "../helpers/llama.js";
import { relRmse } from "../helpers/llama-parity.js";

const PROMPT = "The capital of France is Paris. def f(x):\n    return x ** 2";
const CASES: { preset: string; fused: string[] }[] = [
  { preset: "qwen35moe-tiny", fused: ["blk.3.attn_qkv.weight", "blk.0.ffn_gate_up_exps.weight"] },
  { preset: "qwen3next-tiny", fused: ["blk.3.attn_qkv.weight", "blk.1.ffn_gate_up_exps.weight"] },
  { preset: "deepseek2-tiny", fused: ["blk.1.ffn_gate_up_exps.weight"] },
  { preset: "glm4moe-tiny", fused: ["blk.0.attn_qkv.weight", "blk.0.attn_qkv.bias"] },
  { preset: "tiny", fused: ["blk.0.attn_qkv.weight"] }, // qwen3moe
];
const FUSE: Fusion[] = ["qkv", "gate_up"];

async function ours(path: string, text: string): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend: "native", expertIo: "resident" }));
  try {
    const tokens = lm.tokenizer.encode(text, { parseSpecial: true });
    const all = await lm.model.forward(Int32Array.from(tokens), lm.model.makeCache(64), { logits: "all" });
    const V = lm.model.info.nVocab;
    return { tokens, logits: tokens.map((_, p) => all.subarray(p * V, (p + 1) * V)) };
  } finally {
    await lm.close();
  }
}

for (const { preset, fused } of CASES) {
  test(`${preset} Q8_0 with fused ${fused.map((n) => n.replace(/^blk\.\d+\./, "")).join(", ")}: logits equal the split file's, and llama.cpp's on it`, async () => {
    const opts = { preset: preset as never, type: "Q8_0", seed: 11, nVocab: 8192 };
    const splitPath = await smallVocabModel(opts);
    const path = await smallVocabModel({ ...opts, fuse: FUSE });
    const f = await openGGUF(path);
    const names = new Set(f.tensors.map((t) => t.name));
    await f.source.close();
    for (const n of fused) {
      assert.ok(names.has(n), `the fused file has ${n}`);
      const parts = n.includes("gate_up") ? ["gate", "up"].map((p) => n.replace("gate_up", p)) : ["q", "k", "v"].map((p) => n.replace("qkv", p));
      for (const p of parts) assert.ok(!names.has(p), `${p} is fused into ${n}`);
    }

    const split = await ours(splitPath, PROMPT);
    const mine = await ours(path, PROMPT);
    assert.deepEqual(mine.tokens, split.tokens);
    mine.logits.forEach((l, p) => assert.deepEqual(l, split.logits[p], `position ${p}: fused and split logits differ`));

    const [ref, refSplit] = [await llamaLogitsAll(path, mine.tokens, "batch", { flashAttention: false }), await llamaLogitsAll(splitPath, mine.tokens, "batch", { flashAttention: false })];
    // llama.cpp too computes the fused file as the split one (its fused matmul's rows are the split ones).
    const self = Math.max(...ref.map((r, p) => relRmse(r, refSplit[p])));
    assert.ok(self <= 1e-6, `llama.cpp's logits on the fused and split files differ by ${self.toExponential(3)}`);
    let worst = 0, worstSplit = 0;
    for (let p = 0; p < mine.tokens.length; p++) {
      const err = relRmse(mine.logits[p], ref[p]), errSplit = relRmse(split.logits[p], refSplit[p]);
      assert.ok(err <= errSplit * 1.001 + 1e-6, `position ${p}: relative RMSE to llama.cpp ${err.toExponential(3)} on the fused file, ${errSplit.toExponential(3)} on the split one`);
      worst = Math.max(worst, err);
      worstSplit = Math.max(worstSplit, errSplit);
    }
    console.log(`# ${preset} fused: worst relative RMSE to llama.cpp ${worst.toExponential(3)} (split file ${worstSplit.toExponential(3)}; llama.cpp fused vs split ${self.toExponential(3)}) over ${mine.tokens.length} positions`);
  });
}
