// The loader and qwen3next / qwen35moe files: the trailing MTP block is allowed and never read, and a broken file is
// refused at load naming the tensor or key (missing or wrong-shaped tensor, missing key, inconsistent head counts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { meta } from "../../src/format/gguf/write.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import { smallVocabModel } from "../helpers/models.js";
import { logitsOf as logitsAt, refused, Rewrites, type Edit } from "../helpers/bad-input.js";
import { toLegacySsmIn } from "../helpers/qwen3next-legacy.js";

const files = new Rewrites();
test.after(() => files.remove());
const cfg = defaultEngineConfig({ ctxSize: 64 });
const source = (arch: string) => smallVocabModel({ preset: `${arch}-tiny` as never, type: "Q8_0", seed: 3, nVocab: 4096 });
const MTP = /^blk\.4\./; // the tiny presets: 4 layers, then one nextn block

const logitsOf = (path: string) => logitsAt(path, cfg);
const rewritten = async (arch: string, edit: Edit) => files.of(await source(arch), edit);
const esc = (s: string) => new RegExp(s.replace(/\./g, "\\."));

test("qwen3next: the MTP block is never read (the file without it gives identical logits) but shape-checked", async () => {
  const src = await source("qwen3next");
  const without = await rewritten("qwen3next", (t) => t.filter((x) => !MTP.test(x.name)));
  assert.deepEqual(await logitsOf(without), await logitsOf(src));
  const bad = await rewritten("qwen3next", (t) => t.map((x) => (x.name === "blk.4.nextn.eh_proj.weight" ? { ...x, shape: [x.shape[1], x.shape[0]] } : x)));
  await assert.rejects(loadModel(bad, cfg), refused("bad_shape", /'blk\.4\.nextn\.eh_proj\.weight' has shape \[256, 512\], expected \[512, 256\]/));
});

for (const arch of ["qwen3next", "qwen35moe"]) {
  test(`${arch}: a missing tensor of either layer kind is refused by name`, async () => {
    const names = ["blk.0.ssm_a", "blk.1.ssm_dt.bias", "blk.2.attn_qkv.weight", "blk.0.ssm_conv1d.weight", "blk.3.attn_q_norm.weight", "blk.3.ffn_gate_inp_shexp.weight",
      arch === "qwen3next" ? "blk.1.ssm_ba.weight" : "blk.1.ssm_alpha.weight"];
    for (const name of names) {
      const path = await rewritten(arch, (t) => t.filter((x) => x.name !== name));
      await assert.rejects(loadModel(path, cfg), refused("missing_tensor", esc(`'${name}'`)), name);
    }
  });

  test(`${arch}: a wrong-shaped tensor is refused, naming it and both shapes`, async () => {
    // The gated query (q and gate per head) read as a plain one: half the rows.
    const path = await rewritten(arch, (t) => t.map((x) => (x.name === "blk.3.attn_q.weight" ? { ...x, shape: [256, 256], data: x.data.subarray(0, x.data.length / 2) } : x)));
    await assert.rejects(loadModel(path, cfg), refused("bad_shape", /'blk\.3\.attn_q\.weight' has shape \[256, 256\], expected \[256, 512\]/));
  });

  test(`${arch}: a missing key or inconsistent head counts are refused, naming the key`, async () => {
    const k = (s: string) => `${arch}.${s}`;
    const cases: [string, (md: GGUFMetadata) => void, RegExp][] = [
      ["missing ssm.state_size", (md) => md.delete(k("ssm.state_size")), esc(k("ssm.state_size"))],
      ["missing ssm.group_count", (md) => md.delete(k("ssm.group_count")), esc(k("ssm.group_count"))],
      ["value heads not a multiple of key heads", (md) => md.set(k("ssm.group_count"), meta.u32(3)), /ssm\.time_step_rank 8 \(value heads\) not a multiple of ssm\.group_count 3/],
      ["inner size inconsistent", (md) => md.set(k("ssm.inner_size"), meta.u32(128)), /ssm\.inner_size 128 != ssm\.state_size 32 x ssm\.time_step_rank 8/],
      ["heads not a multiple of kv heads", (md) => md.set(k("attention.head_count"), meta.u32(3)), /head_count 3 not a multiple of head_count_kv 2/],
      ["recurrent_layers of the wrong length", (md) => md.set(k("attention.recurrent_layers"), meta.boolArray([true, false])), /attention\.recurrent_layers' must be an array of 5 bools/],
      ["no layer left besides the MTP block", (md) => md.set(k("nextn_predict_layers"), meta.u32(5)), /nextn_predict_layers/],
    ];
    if (arch === "qwen35moe") {
      cases.push(["missing rope.dimension_sections", (md) => md.delete(k("rope.dimension_sections")), esc(k("rope.dimension_sections"))]);
      cases.push(["sections leaving rotated pairs without a position", (md) => md.set(k("rope.dimension_sections"), meta.i32Array([4, 2, 2, 0])), /rope\.dimension_sections \[4, 2, 2, 0\]/]);
    }
    for (const [what, edit, message] of cases) {
      const path = await rewritten(arch, (t, md) => (edit(md), t));
      await assert.rejects(loadModel(path, cfg), refused(undefined, message), what);
    }
  });
}

test("the layer kinds follow attention.recurrent_layers: a file saying layer 3 is recurrent needs its DeltaNet tensors", async () => {
  const path = await rewritten("qwen3next", (t, md) => (md.set("qwen3next.attention.recurrent_layers", meta.boolArray([true, true, true, true, false])), t));
  await assert.rejects(loadModel(path, cfg), refused("missing_tensor", /'blk\.3\.ssm_ba\.weight'/));
});

test("qwen3next: a legacy file with ssm_in in place of attn_qkv + attn_gate gives identical logits; a half-fused one is refused", async () => {
  const src = await source("qwen3next");
  const legacy = await rewritten("qwen3next", toLegacySsmIn);
  assert.deepEqual(await logitsOf(legacy), await logitsOf(src));
  const half = await rewritten("qwen3next", (t, md) => toLegacySsmIn(t, md).concat(t.filter((x) => x.name === "blk.1.attn_gate.weight")));
  await assert.rejects(loadModel(half, cfg), refused("missing_tensor", /'blk\.1\.attn_qkv\.weight'/));
});
