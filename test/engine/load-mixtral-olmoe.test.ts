// The loader and llama (Mixtral) / olmoe files: a broken file is refused at load naming the tensor or key (missing,
// wrong-shaped or wrongly-typed tensor, missing key, inconsistent head count), a dense Llama is refused saying why, and what llama.cpp
// treats as optional (Mixtral's output.weight) may be absent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { meta } from "../../src/format/gguf/write.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import { smallVocabModel } from "../helpers/models.js";
import { loadCases, refused } from "../helpers/load-cases.js";
import type { RewriteTensor } from "../helpers/rewrite.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-load-mixolmoe-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const cfg = defaultEngineConfig({ ctxSize: 64 });
const sub = (name: string) => (mkdirSync(join(dir, name)), join(dir, name));
const mixtral = loadCases(() => smallVocabModel({ preset: "mixtral-tiny", type: "Q8_0", seed: 11, nVocab: 8192 }), sub("mixtral"), cfg);
const olmoe = loadCases(() => smallVocabModel({ preset: "olmoe-tiny", type: "Q8_0", seed: 11, nVocab: 8192 }), sub("olmoe"), cfg);

const without = (name: string) => (t: RewriteTensor[]) => t.filter((x) => x.name !== name);
const transposed = (name: string) => (t: RewriteTensor[]) => t.map((x) => (x.name === name ? { ...x, shape: [x.shape[1], x.shape[0], ...x.shape.slice(2)] } : x));
const escape = (s: string) => new RegExp(s.replace(/[.[\]]/g, "\\$&"));

async function refusesKeys(cases: ReturnType<typeof loadCases>, keys: [string, (md: GGUFMetadata) => void, RegExp][]): Promise<void> {
  for (const [what, edit, message] of keys) {
    await assert.rejects(loadModel(await cases.rewritten((t, md) => (edit(md), t)), cfg), refused(undefined, message), what);
  }
}

test("mixtral: output.weight may be absent (tied to token_embd, as llama.cpp does); required tensors are refused by name", async () => {
  const tied = await mixtral.rewritten(without("output.weight"));
  assert.notDeepEqual(await mixtral.logitsOf(tied), await mixtral.logitsOf(await mixtral.rewritten((t) => t)), "the tied head is token_embd");
  for (const name of ["blk.1.ffn_gate_inp.weight", "blk.0.attn_k.weight", "output_norm.weight", "blk.2.ffn_down_exps.weight", "blk.0.ffn_norm.weight"]) {
    await assert.rejects(loadModel(await mixtral.rewritten(without(name)), cfg), refused("missing_tensor", escape(`'${name}'`)), name);
  }
  await assert.rejects(loadModel(await mixtral.rewritten(transposed("blk.1.attn_v.weight")), cfg), refused("bad_shape", /'blk\.1\.attn_v\.weight' has shape \[128, 256\], expected \[256, 128\]/));
  const halfExperts = await mixtral.rewritten((t) => t.map((x) => (x.name === "blk.0.ffn_up_exps.weight" ? { ...x, shape: [256, 256, 4], data: x.data.subarray(0, x.data.length / 2) } : x)));
  await assert.rejects(loadModel(halfExperts, cfg), refused("bad_shape", /'blk\.0\.ffn_up_exps\.weight' has shape \[256, 256, 4\], expected \[256, 256, 8\]/));
});

test("mixtral: legacy per-expert tensors (blk.N.ffn_gate.E.weight, which llama.cpp no longer loads) are refused, naming the stacked tensor", async () => {
  // Split every stacked expert tensor into the old per-expert names.
  const split = await mixtral.rewritten((t) => t.flatMap((x) => {
    const m = /^blk\.(\d+)\.ffn_(gate|up|down)_exps\.weight$/.exec(x.name);
    if (!m) return [x];
    const per = x.data.length / x.shape[2];
    return Array.from({ length: x.shape[2] }, (_, e) => ({ ...x, name: `blk.${m[1]}.ffn_${m[2]}.${e}.weight`, shape: x.shape.slice(0, 2), data: x.data.subarray(e * per, (e + 1) * per) }));
  }));
  await assert.rejects(loadModel(split, cfg), refused("missing_tensor", /'blk\.0\.ffn_gate_exps\.weight' not found/));
});

test("mixtral: a dense Llama, missing keys, an inconsistent head count and unsupported rope settings are refused, naming the key", async () => {
  await refusesKeys(mixtral, [
    ["dense llama (no expert_count)", (md) => (md.delete("llama.expert_count"), md.delete("llama.expert_used_count")), /a dense Llama model, which has no experts to stream/],
    ["expert_count 0", (md) => md.set("llama.expert_count", meta.u32(0)), /llama\.expert_count is absent or 0/],
    ["missing rms epsilon", (md) => md.delete("llama.attention.layer_norm_rms_epsilon"), /llama\.attention\.layer_norm_rms_epsilon/],
    ["missing feed_forward_length", (md) => md.delete("llama.feed_forward_length"), /llama\.feed_forward_length/],
    ["missing expert_used_count", (md) => md.delete("llama.expert_used_count"), /llama\.expert_used_count/],
    ["heads not a multiple of kv heads", (md) => md.set("llama.attention.head_count_kv", meta.u32(3)), /head_count 4 not a multiple of head_count_kv 3/],
    ["head count not dividing the width", (md) => md.set("llama.attention.head_count", meta.u32(3)), /embedding_length 256 is not a multiple of head_count 3/],
    ["partial rope", (md) => md.set("llama.rope.dimension_count", meta.u32(32)), /rope\.dimension_count 32 != key_length 64/],
    ["more experts used than there are", (md) => md.set("llama.expert_used_count", meta.u32(9)), /expert_used_count 9 not in \[1, 8\]/],
    ["rope scaling", (md) => md.set("llama.rope.scaling.factor", meta.f32(4)), /rope\.scaling\.factor 4 is not supported/],
  ]);
  // Llama-3 rope frequency factors would change every angle: refused rather than ignored.
  const freqs = await mixtral.rewritten((t) => [...t, { name: "rope_freqs.weight", shape: [32], type: 0, data: new Uint8Array(128) }]);
  await assert.rejects(loadModel(freqs, cfg), refused("unsupported_tensor", /'rope_freqs\.weight'/));
});

test("olmoe: output.weight is required; q/k norms are over the whole projection; a type no backend runs is refused; bad keys and head counts are refused", async () => {
  for (const name of ["output.weight", "blk.2.attn_k_norm.weight", "blk.0.ffn_gate_exps.weight"]) {
    await assert.rejects(loadModel(await olmoe.rewritten(without(name)), cfg), refused("missing_tensor", escape(`'${name}'`)), name);
  }
  // A per-head norm ([head_dim], Qwen3's) is not OLMoE's.
  const perHead = await olmoe.rewritten((t) => t.map((x) => (x.name === "blk.1.attn_q_norm.weight" ? { ...x, shape: [64], data: x.data.subarray(0, 256) } : x)));
  await assert.rejects(loadModel(perHead, cfg), refused("bad_shape", /'blk\.1\.attn_q_norm\.weight' has shape \[64\], expected \[256\]/));
  // A wrongly-typed tensor: attn_v stored as Q8_1 (ggml's activation type: 8 blocks of 36 bytes a row), which no backend multiplies by.
  const q81 = await olmoe.rewritten((t) => t.map((x) => (x.name === "blk.0.attn_v.weight" ? { ...x, type: 9, data: new Uint8Array(256 * 8 * 36) } : x)));
  await assert.rejects(loadModel(q81, cfg), refused("unsupported_type", /'blk\.0\.attn_v\.weight' is Q8_1: no moestream backend runs matmul on it/));
  await refusesKeys(olmoe, [
    ["missing rms epsilon", (md) => md.delete("olmoe.attention.layer_norm_rms_epsilon"), /olmoe\.attention\.layer_norm_rms_epsilon/],
    ["missing expert_count", (md) => md.delete("olmoe.expert_count"), /olmoe\.expert_count/],
    ["GQA (k narrower than the k norm)", (md) => md.set("olmoe.attention.head_count_kv", meta.u32(2)), /head_count_kv 2 x key_length 64 != embedding_length 256/],
    ["heads not spanning the width", (md) => md.set("olmoe.attention.key_length", meta.u32(32)), /head_count 4 x key_length 32 != embedding_length 256/],
    ["more experts used than there are", (md) => md.set("olmoe.expert_used_count", meta.u32(17)), /expert_used_count 17 not in \[1, 16\]/],
  ]);
});
