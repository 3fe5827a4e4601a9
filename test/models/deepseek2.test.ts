// deepseek2 without a file: the DeepSeek-V3 preset declares V3's real tensor shapes and latent cache, the YaRN
// constants are llama.cpp's (hand-computed from llama-context.cpp and deepseek2.cpp), and the wasm backend (which
// hands MLA's ops to the scalar reference) matches the scalar reference on the tiny model.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PRESETS } from "../../src/gen/presets.js";
import { architecture } from "../../src/models/registry.js";
import { cacheBytes, metadata, readHParams, ropeConstants, type HParams } from "../../src/models/deepseek2.js";
import { LatentState } from "../../src/kv/latent.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { backendLogits } from "../helpers/backend-logits.js";
import { smallVocabModel } from "../helpers/models.js";
import { relRmse } from "../helpers/golden.js";

test("deepseek-v3-4L declares DeepSeek-V3-671B's layer shapes: MLA tensors, 256 experts of 2048, one dense lead layer, a 576-value latent row", () => {
  const hp = PRESETS["deepseek-v3-4L"].hp as HParams;
  const arch = architecture("deepseek2");
  const { dense, experts, unused } = arch.tensors(hp);
  const shape = (name: string) => dense.find((t) => t.name === name)?.shape;
  assert.deepEqual(shape("blk.1.attn_q_a.weight"), [7168, 1536]);
  assert.deepEqual(shape("blk.1.attn_q_b.weight"), [1536, 128 * 192]);
  assert.deepEqual(shape("blk.1.attn_kv_a_mqa.weight"), [7168, 576]);
  assert.deepEqual(shape("blk.1.attn_k_b.weight"), [128, 512, 128]);
  assert.deepEqual(shape("blk.1.attn_v_b.weight"), [512, 128, 128]);
  assert.deepEqual(shape("blk.1.attn_output.weight"), [16384, 7168]);
  assert.deepEqual(shape("blk.0.ffn_gate.weight"), [7168, 18432]);
  assert.deepEqual(shape("blk.3.ffn_down_shexp.weight"), [2048, 7168]);
  assert.equal(shape("blk.1.attn_q.weight"), undefined, "q-lora, no plain attn_q");
  assert.deepEqual(experts.map((e) => (e ? e.gate.shape : null)), [null, [7168, 2048, 256], [7168, 2048, 256], [7168, 2048, 256]]);
  assert.equal(unused.length, 0, "no MTP block");
  // The latent cache: 576 values a token a layer; on disk (f16) V3's 61 layers take 70,272 B a token, as llama.cpp's.
  assert.equal(cacheBytes(hp, 1), 4 * 4 * 576);
  assert.equal(61 * new LatentState(new ScalarBackend(), 1, 576).savedBytes(1), 70_272);
  assert.equal(arch.info(hp).nExpertUsed, 8);
});

test("YaRN constants as llama.cpp derives them: V3 (x40, mscale_all_dim 1), V2-Lite (mscale = mscale_all_dim 0.707), no scaling", () => {
  const v3 = PRESETS["deepseek-v3-4L"].hp as HParams;
  const ln40 = Math.log(40);
  const c = ropeConstants(v3);
  // get_mscale(40, 1) / get_mscale(40, 1) = 1, then / (1 + 0.1 ln 40): rope's cos/sin gain (x that again) is 1.
  assert.ok(Math.abs(c.yarn!.attnFactor - 1 / (1 + 0.1 * ln40)) < 1e-12);
  assert.equal(c.yarn!.freqScale, 1 / 40);
  assert.equal(c.yarn!.extFactor, 1);
  assert.equal(c.yarn!.nCtxOrig, 4096);
  // kq_scale = mscale^2 / sqrt(192), mscale = 1 + 0.1 ln 40 = 1.36889: 0.13523 (ARCHITECTURES.md §3).
  assert.ok(Math.abs(c.kqScale - 0.13523) < 1e-5, `${c.kqScale}`);
  const lite = ropeConstants({ ...v3, yarnLogMul: 0.707 });
  assert.ok(Math.abs(lite.yarn!.attnFactor - 1 / (1 + 0.1 * ln40)) < 1e-12, "mscale = mscale_all_dim: the ratio is 1");
  assert.ok(Math.abs(lite.kqScale - (1 + 0.0707 * ln40) ** 2 / Math.sqrt(192)) < 1e-12);
  const plain = ropeConstants({ ...v3, ropeScaling: "none" });
  assert.equal(plain.yarn, undefined);
  assert.ok(Math.abs(plain.kqScale - 1 / Math.sqrt(192)) < 1e-15);
});

test("deepseek2 on the wasm backend (MLA's attention and per-head matmuls in wasm, nothing warned) matches the scalar reference", async () => {
  const path = await smallVocabModel({ preset: "deepseek2-tiny", type: "F16", seed: 11, nVocab: 8192 });
  const tokens = Int32Array.from([3555, 11, 1879, 374, 13, 2701, 40, 1001, 17, 600, 2048, 5]);
  const ref = await backendLogits(path, "scalar", tokens);
  const err = relRmse(await backendLogits(path, "wasm", tokens, (lm) => assert.ok(!lm.warnings.some((w) => /have no wasm kernel/.test(w)), `warnings: ${lm.warnings.join("; ")}`)), ref);
  assert.ok(err < 1e-4, `relative RMSE ${err.toExponential(3)}`);
});

test("expert_gating_func absent means softmax (DeepSeek-V2 files), sigmoid for GLM-4.7-Flash's shape (47 layers, 154880 tokens), as llama.cpp reads it", () => {
  const base = PRESETS["deepseek2-tiny"].hp as HParams;
  const gating = (hp: HParams) => {
    const md = metadata(hp);
    md.delete("deepseek2.expert_gating_func");
    return readHParams(md, hp.nVocab).gating;
  };
  assert.equal(gating(base), "softmax");
  assert.equal(gating({ ...base, nLayer: 47, nNextn: 0, nVocab: 154880 }), "sigmoid");
  assert.equal(gating({ ...base, nLayer: 47, nNextn: 0 }), "softmax");
});
