// llama (Mixtral) and olmoe without a file: the real-dimension presets declare Mixtral-8x7B's and OLMoE-1B-7B's
// tensor shapes (ARCHITECTURES.md §2, §7.3) and KV sizes, every preset's metadata reads back as its hp, and the wasm
// backend matches the scalar reference on both tiny models.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PRESETS } from "../../src/gen/presets.js";
import { architecture } from "../../src/models/registry.js";
import { smallVocabModel } from "../helpers/models.js";
import { backendLogits } from "../helpers/decode.js";
import { relRmse } from "../helpers/golden.js";

const shapes = (preset: keyof typeof PRESETS) => {
  const p = PRESETS[preset];
  const { dense, experts } = architecture(p.arch).tensors(p.hp);
  return { shape: (name: string) => dense.find((t) => t.name === name)?.shape, experts, arch: architecture(p.arch), hp: p.hp };
};

test("mixtral-8x7b declares Mixtral-8x7B's shapes: 32/8 heads of 128, 8 experts of 14336 in all 32 layers, 128 KiB of f16 KV a token", () => {
  const { shape, experts, arch, hp } = shapes("mixtral-8x7b");
  assert.deepEqual(shape("blk.0.attn_q.weight"), [4096, 4096]);
  assert.deepEqual(shape("blk.31.attn_k.weight"), [4096, 1024]);
  assert.deepEqual(shape("blk.31.attn_output.weight"), [4096, 4096]);
  assert.deepEqual(shape("blk.5.ffn_gate_inp.weight"), [4096, 8]);
  assert.equal(shape("blk.0.attn_q_norm.weight"), undefined, "no q/k norms");
  assert.equal(experts.length, 32);
  assert.deepEqual(experts[31], {
    gate: { name: "blk.31.ffn_gate_exps.weight", shape: [4096, 14336, 8] },
    up: { name: "blk.31.ffn_up_exps.weight", shape: [4096, 14336, 8] },
    down: { name: "blk.31.ffn_down_exps.weight", shape: [14336, 4096, 8] },
  });
  // llama.cpp's f16 cache: 2 x 32 layers x 1024 values x 2 B = 128 KiB a token; ours holds f32, twice that.
  assert.equal(arch.cacheBytes(hp, 1), 2 * 128 * 1024);
  assert.equal(arch.info(hp).nExpertUsed, 2);
});

test("olmoe-1b-7b declares OLMoE-1B-7B's shapes: q/k norms over 2048, 64 experts of 1024, top-8, 128 KiB of f16 KV a token", () => {
  const { shape, experts, arch, hp } = shapes("olmoe-1b-7b");
  assert.deepEqual(shape("blk.0.attn_q_norm.weight"), [2048]);
  assert.deepEqual(shape("blk.15.attn_k_norm.weight"), [2048]);
  assert.deepEqual(shape("blk.3.attn_v.weight"), [2048, 2048]);
  assert.deepEqual(shape("output.weight"), [2048, arch.info(hp).nVocab]);
  assert.equal(experts.length, 16);
  assert.deepEqual(experts[0]!.down.shape, [1024, 2048, 64]);
  assert.equal(arch.cacheBytes(hp, 1), 2 * 128 * 1024);
  assert.equal(arch.info(hp).nExpertUsed, 8);
});

test("each new preset's metadata(hp) reads back as its hp; Mixtral's carries no key_length when heads x head size = width, as real files", () => {
  for (const name of ["mixtral-tiny", "mixtral-8x7b", "olmoe-tiny", "olmoe-1b-7b"] as const) {
    const { arch, hp } = shapes(name);
    const md = arch.metadata!(hp);
    assert.deepEqual(arch.readHParams(md, arch.info(hp).nVocab), hp, name);
    if (arch.name === "llama") assert.ok(!md.has("llama.attention.key_length"), name);
  }
  const llama = architecture("llama");
  const odd = { ...PRESETS["mixtral-tiny"].hp, headDim: 32 }; // heads of 32 in a 256-wide model: key_length is written
  assert.deepEqual(llama.readHParams(llama.metadata!(odd), odd.nVocab), odd);
});

// Both on the golden tests' F16 models: NORM rope goes to the scalar reference on wasm, the whole-projection q/k norm is
// a wasm rmsnorm over longer rows.
for (const preset of ["mixtral-tiny", "olmoe-tiny"] as const) {
  test(`${preset} on the wasm backend matches the scalar reference`, async () => {
    const path = await smallVocabModel({ preset, type: "F16", seed: 11, nVocab: 8192 });
    const tokens = [3555, 11, 1879, 374, 13, 2701, 40, 1001, 17, 600, 2048, 5];
    const err = relRmse(await backendLogits(path, "wasm", tokens), await backendLogits(path, "scalar", tokens));
    assert.ok(err < 1e-4, `relative RMSE ${err.toExponential(3)}`);
  });
}
