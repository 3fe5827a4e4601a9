// The loader and a deepseek2 file: the trailing MTP block is allowed and never read, exp_probs_b is optional (V2
// has none), and a broken file is refused at load naming the tensor or key (missing or wrong-shaped tensor, missing
// key, inconsistent head count or MLA widths, a legacy attn_kv_b file).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { meta } from "../../src/format/gguf/write.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import { smallVocabModel } from "../helpers/models.js";
import { loadCases, refused } from "../helpers/load-cases.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-load-ds2-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const cfg = defaultEngineConfig({ ctxSize: 64 });
const source = () => smallVocabModel({ preset: "deepseek2-tiny", type: "Q8_0", seed: 3, nVocab: 4096 });
const MTP = /^blk\.3\./; // the tiny preset: 3 layers, then one nextn block

const { logitsOf, rewritten } = loadCases(source, dir, cfg);

test("the MTP block is never read: the file without it gives identical logits; its tensors are still shape-checked", async () => {
  const src = await source();
  const without = await rewritten((t, md) => (md.set("deepseek2.block_count", meta.u32(3)), md.set("deepseek2.nextn_predict_layers", meta.u32(0)), t.filter((x) => !MTP.test(x.name))));
  const want = await logitsOf(src);
  assert.deepEqual(await logitsOf(without), want);
  const bad = await rewritten((t) => t.map((x) => (x.name === "blk.3.attn_k_b.weight" ? { ...x, shape: [256, 64, 4] } : x)));
  await assert.rejects(loadModel(bad, cfg), refused("bad_shape", /'blk\.3\.attn_k_b\.weight' has shape \[256, 64, 4\], expected \[64, 256, 4\]/));
  const stray = await rewritten((t) => [...t, { ...t.find((x) => x.name === "blk.3.attn_norm.weight")!, name: "blk.4.attn_norm.weight" }]);
  await assert.rejects(loadModel(stray, cfg), refused("unexpected_tensor", /'blk\.4\.attn_norm\.weight'/));
});

test("exp_probs_b is optional (the selection bias changes the routing, so the logits); required tensors are refused by name", async () => {
  const noBias = await rewritten((t) => t.filter((x) => !/exp_probs_b/.test(x.name)));
  assert.notDeepEqual(await logitsOf(noBias), await logitsOf(await source()));
  for (const name of ["blk.1.attn_k_b.weight", "blk.0.attn_q_a_norm.weight", "blk.2.attn_kv_a_mqa.weight", "blk.0.ffn_gate.weight", "blk.2.ffn_down_shexp.weight", "blk.1.ffn_norm.weight"]) {
    const path = await rewritten((t) => t.filter((x) => x.name !== name));
    await assert.rejects(loadModel(path, cfg), refused("missing_tensor", new RegExp(name.replace(/\./g, "\\."))));
  }
  // q_lora_rank 0 means a plain attn_q (V2-Lite): this file's q-lora tensors are then no tensors of the model.
  const lite = await rewritten((t, md) => (md.set("deepseek2.attention.q_lora_rank", meta.u32(0)), t));
  await assert.rejects(loadModel(lite, cfg), refused("missing_tensor", /'blk\.0\.attn_q\.weight'/));
});

test("a wrong-shaped tensor is refused, naming it and both shapes", async () => {
  const path = await rewritten((t) => t.map((x) => (x.name === "blk.1.attn_v_b.weight" ? { ...x, shape: [256, 32, 8] } : x)));
  await assert.rejects(loadModel(path, cfg), refused("bad_shape", /'blk\.1\.attn_v_b\.weight' has shape \[256, 32, 8\], expected \[256, 64, 4\]/));
});

test("missing keys, inconsistent head counts and MLA widths, and legacy files are refused, naming the key", async () => {
  const cases: [string, (md: GGUFMetadata) => void, RegExp][] = [
    ["missing kv_lora_rank", (md) => md.delete("deepseek2.attention.kv_lora_rank"), /deepseek2\.attention\.kv_lora_rank/],
    ["missing expert_shared_count", (md) => md.delete("deepseek2.expert_shared_count"), /deepseek2\.expert_shared_count/],
    ["missing key_length_mla (a legacy file)", (md) => md.delete("deepseek2.attention.key_length_mla"), /attention\.key_length_mla' is missing: a legacy file/],
    ["more than one kv head", (md) => md.set("deepseek2.attention.head_count_kv", meta.u32(4)), /head_count_kv 4 is not 1/],
    ["key_length not the latent row", (md) => md.set("deepseek2.attention.key_length", meta.u32(96)), /key_length 96 != kv_lora_rank 256 \+ rope\.dimension_count 32/],
    ["value_length not kv_lora_rank", (md) => md.set("deepseek2.attention.value_length", meta.u32(64)), /value_length 64 != kv_lora_rank 256/],
    ["rope wider than the key head", (md) => md.set("deepseek2.rope.dimension_count", meta.u32(96)), /rope\.dimension_count 96/],
    ["unknown rope scaling", (md) => md.set("deepseek2.rope.scaling.type", meta.str("longrope")), /rope\.scaling\.type 'longrope'/],
    ["groups that do not split the experts", (md) => (md.set("deepseek2.expert_group_count", meta.u32(3)), md.set("deepseek2.expert_group_used_count", meta.u32(2))), /expert_group_count 3/],
  ];
  for (const [what, edit, message] of cases) {
    const path = await rewritten((t, md) => (edit(md), t));
    await assert.rejects(loadModel(path, cfg), refused(undefined, message), what);
  }
  // A head count that disagrees with the tensors is refused at the first tensor it sizes.
  const heads = await rewritten((t, md) => (md.set("deepseek2.attention.head_count", meta.u32(8)), t));
  await assert.rejects(loadModel(heads, cfg), refused("bad_shape", /'blk\.0\.attn_q_b\.weight' has shape \[256, 384\], expected \[256, 768\]/));
  // A legacy attn_kv_b next to the split tensors is no tensor of this model.
  const legacy = await rewritten((t) => [...t, { ...t.find((x) => x.name === "blk.0.attn_output.weight")!, name: "blk.0.attn_kv_b.weight" }]);
  await assert.rejects(loadModel(legacy, cfg), refused("unexpected_tensor", /'blk\.0\.attn_kv_b\.weight'/));
});
