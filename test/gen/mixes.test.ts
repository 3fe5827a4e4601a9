// The named mixes against llama.cpp's rule (llama-quant.cpp), worked by hand for an 8-layer, 128-expert model with
// 8 query heads per KV head (a3b-8L's shape): use_more_bits(i, 8) holds for layers 0, 3, 6 and 7 (i < 8/8,
// i >= 7*8/8, (i - 1) % 3 == 2), the layers where Q4_K_M widens attn_v and ffn_down to Q6_K; IQ2_XXS writes its
// first 8/8 = 1 ffn_down tensor Q2_K. And the written file: each tensor carries its rule's type, inspect's
// per-expert bytes add up to the expert tensors' bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mixTypes, useMoreBits, type MixName, type MixTensor } from "../../src/gen/mixes.js";
import { inspectGGUF } from "../../src/engine/inspect.js";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { testModel } from "../helpers/models.js";

const L = 8;
const attn = ["attn_q", "attn_k", "attn_v", "attn_output"];
const tensors: MixTensor[] = [
  { name: "token_embd.weight", shape: [2048, 151936], expert: false },
  ...Array.from({ length: L }, (_, i) => [
    ...attn.map((a) => ({ name: `blk.${i}.${a}.weight`, shape: [a === "attn_output" ? 4096 : 2048, 512], expert: false })),
    ...["gate", "up", "down"].map((p) => ({ name: `blk.${i}.ffn_${p}_exps.weight`, shape: [p === "down" ? 768 : 2048, 768, 128], expert: true })),
  ]).flat(),
  { name: "output.weight", shape: [2048, 151936], expert: false },
];
const model = { nLayer: L, nExpert: 128, nGqa: 8, tied: false };
const types = (mix: MixName) => mixTypes(mix, tensors, model);
const perLayer = (m: Map<string, string>, suffix: string) => Array.from({ length: L }, (_, i) => m.get(`blk.${i}.${suffix}`));

test("use_more_bits as llama.cpp: layers 0, 3, 6, 7 of 8; the first and last 6 of 48 and every third between", () => {
  assert.deepEqual(Array.from({ length: 8 }, (_, i) => i).filter((i) => useMoreBits(i, 8)), [0, 3, 6, 7]);
  const of48 = Array.from({ length: 48 }, (_, i) => i).filter((i) => useMoreBits(i, 48));
  assert.deepEqual(of48, [0, 1, 2, 3, 4, 5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 41, 42, 43, 44, 45, 46, 47]);
});

test("q4_k_m: Q4_K, attn_v and ffn_down Q6_K on layers 0, 3, 6, 7, output Q6_K, token_embd Q4_K", () => {
  const m = types("q4_k_m");
  const more = ["Q6_K", "Q4_K", "Q4_K", "Q6_K", "Q4_K", "Q4_K", "Q6_K", "Q6_K"];
  assert.deepEqual(perLayer(m, "attn_v.weight"), more);
  assert.deepEqual(perLayer(m, "ffn_down_exps.weight"), more);
  for (const p of ["attn_q", "attn_k", "attn_output", "ffn_gate_exps", "ffn_up_exps"]) assert.deepEqual(new Set(perLayer(m, `${p}.weight`)), new Set(["Q4_K"]), p);
  assert.equal(m.get("output.weight"), "Q6_K");
  assert.equal(m.get("token_embd.weight"), "Q4_K");
});

test("q2_k: Q2_K, attn_v Q4_K (8 heads per KV head), attn_output Q3_K, expert downs IQ3_XXS, output Q6_K", () => {
  const m = types("q2_k");
  assert.deepEqual(new Set(perLayer(m, "attn_v.weight")), new Set(["Q4_K"]));
  assert.deepEqual(new Set(perLayer(m, "attn_output.weight")), new Set(["Q3_K"]));
  assert.deepEqual(new Set(perLayer(m, "ffn_down_exps.weight")), new Set(["IQ3_XXS"]));
  assert.deepEqual(new Set(perLayer(m, "ffn_gate_exps.weight")), new Set(["Q2_K"]));
  assert.equal(m.get("output.weight"), "Q6_K");
  assert.equal(m.get("token_embd.weight"), "Q2_K");
  assert.equal(mixTypes("q2_k", tensors, { ...model, nGqa: 2 }).get("blk.0.attn_v.weight"), "Q3_K");
});

test("iq2_xxs: IQ2_XXS experts, the first ffn_down Q2_K, attn_v Q4_K, dense i-quants as Q2_K, token_embd Q2_K, output Q5_K", () => {
  const m = types("iq2_xxs");
  assert.deepEqual(perLayer(m, "ffn_down_exps.weight"), ["Q2_K", ...Array(7).fill("IQ2_XXS")]);
  assert.deepEqual(new Set(perLayer(m, "ffn_up_exps.weight")), new Set(["IQ2_XXS"]));
  assert.deepEqual(new Set(perLayer(m, "attn_v.weight")), new Set(["Q4_K"]));
  assert.deepEqual(new Set(perLayer(m, "attn_q.weight")), new Set(["Q2_K"]));
  assert.equal(m.get("token_embd.weight"), "Q2_K");
  assert.equal(m.get("output.weight"), "Q5_K");
});

test("ud: gate/up IQ2_XXS (IQ3_XXS on layers 0, 3, 6, 7), downs one step up, attn_v Q6_K, attention Q4_K, Q6_K / Q8_0 embeddings", () => {
  const m = types("ud");
  const more = [true, false, false, true, false, false, true, true];
  assert.deepEqual(perLayer(m, "ffn_gate_exps.weight"), more.map((x) => (x ? "IQ3_XXS" : "IQ2_XXS")));
  assert.deepEqual(perLayer(m, "ffn_down_exps.weight"), more.map((x) => (x ? "IQ4_XS" : "IQ3_XXS")));
  assert.deepEqual(new Set(perLayer(m, "attn_v.weight")), new Set(["Q6_K"]));
  assert.deepEqual(new Set(perLayer(m, "attn_output.weight")), new Set(["Q4_K"]));
  assert.equal(m.get("token_embd.weight"), "Q6_K");
  assert.equal(m.get("output.weight"), "Q8_0");
  assert.equal(mixTypes("ud", tensors, { ...model, tied: true }).get("token_embd.weight"), "Q8_0");
});

test("a row length the mix's type cannot hold falls back as llama.cpp's tensor_type_fallback (Q4_K -> Q5_0, Q6_K -> Q8_0, then F16)", () => {
  const odd = [{ name: "blk.0.attn_q.weight", shape: [96, 64], expert: false }, { name: "blk.0.attn_v.weight", shape: [96, 64], expert: false }, { name: "blk.0.attn_k.weight", shape: [40, 64], expert: false }];
  const m = mixTypes("q4_k_m", odd, { nLayer: 1, nExpert: 4, nGqa: 1, tied: false });
  assert.equal(m.get("blk.0.attn_q.weight"), "Q5_0");
  assert.equal(m.get("blk.0.attn_v.weight"), "Q8_0"); // the only attn_v of 1 layer: use_more_bits(0, 1)
  assert.equal(m.get("blk.0.attn_k.weight"), "F16");
});

test("gen --mix writes each tensor in its rule's type; inspect's bytes per expert per type add up to the expert tensors", async () => {
  const path = await testModel({ type: "Q8_0", mix: "ud", seed: 11, expertSynthesis: "direct" });
  const f = await inspectGGUF(path);
  const byName = new Map(f.tensors.map((t) => [t.name, t.type]));
  // tiny: 4 layers, use_more_bits(i, 4) holds for 2 and 3
  assert.deepEqual([0, 1, 2, 3].map((i) => byName.get(`blk.${i}.ffn_up_exps.weight`)), ["IQ2_XXS", "IQ2_XXS", "IQ3_XXS", "IQ3_XXS"]);
  assert.deepEqual([0, 1, 2, 3].map((i) => byName.get(`blk.${i}.ffn_down_exps.weight`)), ["IQ3_XXS", "IQ3_XXS", "IQ4_XS", "IQ4_XS"]);
  assert.equal(byName.get("token_embd.weight"), "Q8_0"); // tied: it is the output projection
  const nExpert = 16;
  const sum = f.perExpert.reduce((a, t) => a + t.bytesPerExpert, 0) * f.expertLayers * nExpert;
  assert.equal(sum, f.expertBytes);
  // hand count: IQ2_XXS 66 B, IQ3_XXS 98 B, IQ4_XS 136 B per 256 values; gate/up 256x256, down 256x256 per expert
  const blocks = 256; // 256 rows of one 256-value block
  const iq2 = f.perExpert.find((t) => t.type === "IQ2_XXS")!;
  assert.equal(iq2.bytesPerExpert, (2 * 2 * blocks * 66) / 4); // gate + up on 2 of 4 layers
  assert.deepEqual(iq2.parts, [{ part: "gate", layers: 2 }, { part: "up", layers: 2 }]);
  // the loader's figures (from the expert reader's parts) are inspect's (from the file's tensors), and its line says so
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 64, backend: "scalar" }));
  try {
    assert.deepEqual(lm.expertIO.perExpert, f.perExpert);
    assert.match(lm.expertIO.reason, /per expert: IQ3_XXS .* \(down 2\/4 layers, gate 2\/4 layers, up 2\/4 layers\)/);
  } finally {
    await lm.close();
  }
});
