// The loader and a gpt-oss file: optional q/k/v biases may be absent (llama.cpp's too); sinks, the output bias, the
// router bias, the expert biases and the untied output head are required; wrong shapes and types, missing keys and
// inconsistent hyperparameters are refused at load naming the tensor or key.
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

const dir = mkdtempSync(join(tmpdir(), "moestream-load-gptoss-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const cfg = defaultEngineConfig({ ctxSize: 64 });
const source = () => smallVocabModel({ preset: "gpt-oss-tiny", type: "Q8_0", seed: 3, nVocab: 4096 });
const A = "gpt-oss";
const esc = (s: string) => new RegExp(s.replace(/[.[\]]/g, "\\$&"));

const { logitsOf, rewritten } = loadCases(source, dir, cfg);

test("q/k/v biases are optional and read when present; the sliding-window pattern written as the default period reads the same", async () => {
  const src = await source();
  const without = await rewritten((t) => t.filter((x) => !/^blk\.\d+\.attn_[qkv]\.bias$/.test(x.name)));
  assert.notDeepEqual(await logitsOf(without), await logitsOf(src), "the biases change the logits");
  const explicit = await rewritten((t, md) => (md.set(`${A}.attention.sliding_window_pattern`, meta.boolArray([true, false, true, false])), t));
  assert.deepEqual(await logitsOf(explicit), await logitsOf(src));
});

test("required tensors are refused by name when missing", async () => {
  for (const name of ["blk.0.attn_sinks.weight", "blk.1.attn_output.bias", "blk.2.ffn_gate_inp.bias", "output.weight", "blk.3.ffn_down_exps.bias", "blk.0.ffn_gate_exps.bias"]) {
    const path = await rewritten((t) => t.filter((x) => x.name !== name));
    await assert.rejects(loadModel(path, cfg), refused("missing_tensor", esc(name)), name);
  }
});

test("a wrong-shaped tensor is refused, naming it and both shapes", async () => {
  const sinks = await rewritten((t) => t.map((x) => (x.name === "blk.1.attn_sinks.weight" ? { ...x, shape: [2], data: x.data.subarray(0, 8) } : x)));
  await assert.rejects(loadModel(sinks, cfg), refused("bad_shape", /'blk\.1\.attn_sinks\.weight' has shape \[2\], expected \[4\]/));
  const bias = await rewritten((t) => t.map((x) => (x.name === "blk.2.ffn_up_exps.bias" ? { ...x, shape: [128, 16], data: x.data.subarray(0, 128 * 16 * 4) } : x)));
  await assert.rejects(loadModel(bias, cfg), refused("bad_shape", /'blk\.2\.ffn_up_exps\.bias' has shape \[128, 16\], expected \[256, 16\]/));
});

test("a wrongly-typed tensor (an F32 sink or expert bias whose type field says I32) is refused, naming it", async () => {
  for (const [name, op] of [["blk.0.attn_sinks.weight", "attention"], ["blk.1.ffn_gate_exps.bias", "add_rows"]]) {
    const path = await rewritten((t) => t.map((x) => (x.name === name ? { ...x, type: 26 } : x))); // I32: 4 bytes a value, as F32
    await assert.rejects(loadModel(path, cfg), refused("unsupported_type", new RegExp(`'${esc(name).source}' is I32: no moestream backend runs ${op} on it`)), name);
  }
});

test("a missing key, inconsistent head sizes and unsupported settings are refused, naming the key", async () => {
  const cases: [string, (md: GGUFMetadata) => void, RegExp][] = [
    ["missing sliding_window", (md) => md.delete(`${A}.attention.sliding_window`), esc(`${A}.attention.sliding_window`)],
    ["missing expert_feed_forward_length", (md) => md.delete(`${A}.expert_feed_forward_length`), esc(`${A}.expert_feed_forward_length`)],
    ["missing rms epsilon", (md) => md.delete(`${A}.attention.layer_norm_rms_epsilon`), esc(`${A}.attention.layer_norm_rms_epsilon`)],
    ["rope dims other than the head", (md) => md.set(`${A}.rope.dimension_count`, meta.u32(32)), /rope\.dimension_count 32 != key_length 64/],
    ["heads not a multiple of kv heads", (md) => md.set(`${A}.attention.head_count_kv`, meta.u32(3)), /head_count 4 not a multiple of head_count_kv 3/],
    ["a pattern of the wrong length", (md) => md.set(`${A}.attention.sliding_window_pattern`, meta.boolArray([true, false])), /sliding_window_pattern has 2 entries for 4 layers/],
    ["an unsupported rope scaling", (md) => md.set(`${A}.rope.scaling.type`, meta.str("longrope")), /rope\.scaling\.type 'longrope'/],
    ["a zero window", (md) => md.set(`${A}.attention.sliding_window`, meta.u32(0)), esc(`${A}.attention.sliding_window`)],
  ];
  for (const [what, edit, message] of cases) {
    const path = await rewritten((t, md) => (edit(md), t));
    await assert.rejects(loadModel(path, cfg), refused(undefined, message), what);
  }
});
