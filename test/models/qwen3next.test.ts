// qwen3next / qwen35moe declarations: the real-dimension bench presets declare the real models' layer shapes and
// per-sequence state (ARCHITECTURES.md §4, §7), checked without generating them (metadata.test.ts checks the keys).
import { test } from "node:test";
import assert from "node:assert/strict";
import { PRESETS } from "../../src/gen/presets.js";
import { architecture } from "../../src/models/registry.js";
import { cacheBytes, type HParams } from "../../src/models/qwen3next.js";
import { smallVocabModel } from "../helpers/models.js";
import { backendLogits } from "../helpers/backend-logits.js";
import { relRmse } from "../helpers/golden.js";

/** Declared shapes by tensor name. */
function shapes(hp: HParams): Map<string, number[]> {
  const t = architecture(hp.arch).tensors(hp);
  return new Map([...t.dense, ...t.experts.flatMap((p) => Object.values(p ?? {}))].map((s) => [s.name, s.shape]));
}

test("qwen35-397b-4L declares Qwen3.5-397B-A17B's layer shapes and state", () => {
  const hp = PRESETS["qwen35-397b-4L"].hp;
  const s = shapes(hp);
  assert.deepEqual(hp.recurrent, [true, true, true, false], "three DeltaNet layers, then full attention");
  assert.deepEqual(s.get("blk.0.attn_qkv.weight"), [4096, 12288]); // 2 x 16 key heads + 64 value heads, of 128
  assert.deepEqual(s.get("blk.0.attn_gate.weight"), [4096, 8192]);
  assert.deepEqual(s.get("blk.0.ssm_conv1d.weight"), [4, 12288]);
  assert.deepEqual(s.get("blk.0.ssm_beta.weight"), [4096, 64]);
  assert.deepEqual(s.get("blk.0.ssm_out.weight"), [8192, 4096]);
  assert.equal(s.has("blk.0.ssm_ba.weight"), false, "qwen35moe splits beta and alpha");
  assert.deepEqual(s.get("blk.3.attn_q.weight"), [4096, 16384]); // 32 heads x 256, query and gate
  assert.deepEqual(s.get("blk.3.attn_k.weight"), [4096, 512]);
  assert.deepEqual(s.get("blk.3.ffn_gate_exps.weight"), [4096, 1024, 512]);
  assert.deepEqual(s.get("blk.3.ffn_gate_inp_shexp.weight"), [4096]);
  assert.deepEqual(s.get("blk.3.ffn_down_shexp.weight"), [1024, 4096]);
  // Per DeltaNet layer: conv 3 x 12288 and 64 heads of 128 x 128, f32, times 3 (the next state and the checkpoint);
  // KV 2 x 2 x 256 f32 per token.
  const rec = 3 * 4 * (3 * 12288 + 64 * 128 * 128);
  assert.equal(cacheBytes(hp, 1000), 3 * rec + 1000 * 2 * 4 * 512);
});

test("qwen3next-80b-4L declares Qwen3-Next-80B-A3B's layer shapes", () => {
  const hp = PRESETS["qwen3next-80b-4L"].hp;
  const s = shapes(hp);
  assert.deepEqual(s.get("blk.0.attn_qkv.weight"), [2048, 8192]); // 2 x 16 key heads + 32 value heads, of 128
  assert.deepEqual(s.get("blk.0.ssm_ba.weight"), [2048, 64]);
  assert.deepEqual(s.get("blk.0.ssm_out.weight"), [4096, 2048]);
  assert.deepEqual(s.get("blk.3.attn_q.weight"), [2048, 8192]); // 16 heads x 256, query and gate
  assert.deepEqual(s.get("blk.3.ffn_up_exps.weight"), [2048, 512, 512]);
  assert.equal(hp.nRot, 64);
});

// Qwen3.5's tiled key heads; Qwen3-Next's interleaved ones run the same kernels (both mappings: wasm-mla-ops.test.ts).
test("qwen35moe-tiny on the wasm backend (DeltaNet's conv, delta rule and norms in wasm, nothing warned) matches the scalar reference", async () => {
  // F16: the wasm Q8_0 matmul quantises activations and the reference does not; F16 compares the kernels themselves.
  const path = await smallVocabModel({ preset: "qwen35moe-tiny", type: "F16", seed: 11, nVocab: 8192 });
  const tokens = [3555, 11, 1879, 374, 13, 2701, 40, 1001, 17, 600, 2048, 5];
  const ref = await backendLogits(path, "scalar", tokens);
  const err = relRmse(await backendLogits(path, "wasm", tokens, (lm) => assert.ok(!lm.warnings.some((w) => /no wasm kernel/.test(w)), lm.warnings.join("; "))), ref);
  assert.ok(err < 1e-4, `relative RMSE ${err.toExponential(3)}`);
});
