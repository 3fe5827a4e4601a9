// The loader and a glm4moe file: the trailing MTP block is allowed and never read, and a broken file is refused
// at load naming the tensor or key (missing or wrong-shaped tensor, missing key, inconsistent head count).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { meta } from "../../src/format/gguf/write.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import { smallVocabModel } from "../helpers/models.js";
import type { RewriteTensor } from "../helpers/rewrite.js";
import { logitsOf as logitsAt, refused, Rewrites } from "../helpers/bad-input.js";

const files = new Rewrites();
test.after(() => files.remove());
const cfg = defaultEngineConfig({ ctxSize: 64 });
const source = () => smallVocabModel({ preset: "glm4moe-tiny", type: "Q8_0", seed: 3, nVocab: 4096 });
const MTP = /^blk\.3\./; // the tiny preset: 3 layers, then one nextn block

const logitsOf = (path: string) => logitsAt(path, cfg);
const rewritten = async (edit: (t: RewriteTensor[], md: GGUFMetadata) => RewriteTensor[]) => files.of(await source(), edit);

test("the MTP block is never read: the file without it gives identical logits; its tensors are still shape-checked", async () => {
  const src = await source();
  const without = await rewritten((t) => t.filter((x) => !MTP.test(x.name)));
  assert.deepEqual(await logitsOf(without), await logitsOf(src));
  const bad = await rewritten((t) => t.map((x) => (x.name === "blk.3.nextn.eh_proj.weight" ? { ...x, shape: [x.shape[1], x.shape[0]] } : x)));
  await assert.rejects(loadModel(bad, cfg), refused("bad_shape", /'blk\.3\.nextn\.eh_proj\.weight' has shape \[256, 512\], expected \[512, 256\]/));
  // A block past the MTP one is no layer of this model.
  const stray = await rewritten((t) => [...t, { ...t.find((x) => x.name === "blk.3.attn_norm.weight")!, name: "blk.4.attn_norm.weight" }]);
  await assert.rejects(loadModel(stray, cfg), refused("unexpected_tensor", /'blk\.4\.attn_norm\.weight'/));
});

test("optional tensors (q/k norms, q/k/v biases) may be absent; required ones are refused by name", async () => {
  const optional = /^blk\.[0-2]\.(attn_[qk]_norm\.weight|attn_[qkv]\.bias)$/;
  const lm = await loadModel(await rewritten((t) => t.filter((x) => !optional.test(x.name))), cfg);
  await lm.close();
  for (const name of ["blk.1.exp_probs_b.bias", "blk.0.ffn_gate.weight", "blk.2.ffn_down_shexp.weight", "blk.1.post_attention_norm.weight"]) {
    const path = await rewritten((t) => t.filter((x) => x.name !== name));
    await assert.rejects(loadModel(path, cfg), refused("missing_tensor", new RegExp(name.replace(/\./g, "\\."))));
  }
});

test("a wrong-shaped tensor is refused, naming it and both shapes", async () => {
  const path = await rewritten((t) => t.map((x) => (x.name === "blk.2.exp_probs_b.bias" ? { ...x, shape: [8], data: x.data.subarray(0, 32) } : x)));
  await assert.rejects(loadModel(path, cfg), refused("bad_shape", /'blk\.2\.exp_probs_b\.bias' has shape \[8\], expected \[16\]/));
});

test("a missing key, an inconsistent head count and unsupported settings are refused, naming the key", async () => {
  const cases: [string, (md: GGUFMetadata) => void, RegExp][] = [
    ["missing expert_shared_count", (md) => md.delete("glm4moe.expert_shared_count"), /glm4moe\.expert_shared_count/],
    ["missing expert_feed_forward_length", (md) => md.delete("glm4moe.expert_feed_forward_length"), /glm4moe\.expert_feed_forward_length/],
    ["heads not a multiple of kv heads", (md) => md.set("glm4moe.attention.head_count", meta.u32(3)), /head_count 3 not a multiple of head_count_kv 2/],
    ["odd rope dimension", (md) => md.set("glm4moe.rope.dimension_count", meta.u32(33)), /rope\.dimension_count 33/],
    ["unknown gating", (md) => md.set("glm4moe.expert_gating_func", meta.u32(4)), /expert_gating_func 4/],
    ["groups that do not split the experts", (md) => (md.set("glm4moe.expert_group_count", meta.u32(3)), md.set("glm4moe.expert_group_used_count", meta.u32(2))), /expert_group_count 3/],
    ["no layer left besides the MTP block", (md) => md.set("glm4moe.nextn_predict_layers", meta.u32(4)), /nextn_predict_layers/],
  ];
  for (const [what, edit, message] of cases) {
    const path = await rewritten((t, md) => (edit(md), t));
    await assert.rejects(loadModel(path, cfg), refused(undefined, message), what);
  }
});
