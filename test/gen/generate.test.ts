// The generator writes what the architecture declares: its metadata(hp) keys and its tensors, in llama.cpp's
// file order, with a custom preset as well as a named one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF, readTensorBytes } from "../../src/format/gguf/read.js";
import { MXFP4 } from "../../src/quant/index.js";
import { architecture } from "../../src/models/registry.js";
import { fileTensors, generateModel } from "../../src/gen/index.js";
import { PRESETS, type Qwen3MoePreset } from "../../src/gen/presets.js";
import { testModel } from "../helpers/models.js";
import { ggmlTypeName } from "../../src/format/gguf/ggml-types.js";
import { UsageError } from "../../src/util/errors.js";
import { parseTensorTypes } from "../../src/cli/gen.js";

test("file order: token_embd, each layer's dense then expert tensors, output_norm, output", () => {
  const { hp } = PRESETS.tiny;
  const arch = architecture("qwen3moe");
  const names = (withOutput: boolean) => fileTensors(arch, hp, withOutput).map((t) => t.name);
  const tied = names(false);
  assert.equal(tied[0], "token_embd.weight");
  assert.equal(tied.at(-1), "output_norm.weight");
  assert.deepEqual(names(true), [...tied, "output.weight"]);
  assert.deepEqual(tied.slice(1, 13), [
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm", "ffn_norm", "ffn_gate_inp",
    "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps",
  ].map((n) => `blk.0.${n}.weight`));
  // Every declared tensor exactly once.
  const { dense, experts } = arch.tensors(hp);
  const declared = [...dense.map((t) => t.name), ...experts.flatMap((p) => Object.values(p ?? {}).map((t) => t.name))];
  assert.deepEqual([...names(true)].sort(), declared.sort());
});

test("a generated file carries the architecture's metadata(hp) and reads back as the preset's hp", async () => {
  const file = await openGGUF(await testModel({ type: "Q8_0" }));
  try {
    const arch = architecture("qwen3moe");
    const { hp } = PRESETS.tiny;
    const own = [...file.metadata.keys()].filter((k) => k.startsWith("qwen3moe."));
    assert.deepEqual(own, [...arch.metadata!(hp).keys()]);
    // rms epsilon goes through f32 in the file.
    assert.deepEqual(arch.readHParams(file.metadata, hp.nVocab), { ...hp, rmsEps: Math.fround(hp.rmsEps) });
    assert.deepEqual(file.tensors.map((t) => t.name), fileTensors(arch, hp, false).map((t) => t.name));
  } finally {
    await file.source.close();
  }
});

test("a custom preset (any registered architecture and hp) is written as given; bad hp is refused before writing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "moestream-gen-"));
  try {
    const preset: Qwen3MoePreset = { ...PRESETS.tiny, hp: { ...PRESETS.tiny.hp, nLayer: 1, nExpert: 4, nExpertUsed: 2 } };
    const m = await generateModel(join(dir, "custom.gguf"), { preset, type: "F16", peaked: 1 });
    assert.equal(m.preset.tiedEmbeddings, false); // peaked forces an output.weight
    const file = await openGGUF(m.path);
    try {
      assert.deepEqual(architecture("qwen3moe").readHParams(file.metadata, preset.hp.nVocab), { ...preset.hp, rmsEps: Math.fround(preset.hp.rmsEps) });
      assert.equal(file.tensors.at(-1)?.name, "output.weight");
      assert.equal(file.tensors.find((t) => t.name === "blk.0.ffn_up_exps.weight")?.shape.join(), "256,256,4");
    } finally {
      await file.source.close();
    }
    await assert.rejects(generateModel(join(dir, "bad.gguf"), { preset: "tiny", type: "F16", hp: { nExpertUsed: 99 } }), /expert_used_count 99/);
    // moestream cannot quantise to the i-quants: only expert tensors may be IQ-typed (sampled directly).
    await assert.rejects(generateModel(join(dir, "iq.gguf"), { preset, type: "IQ2_XXS" }), (e: unknown) =>
      e instanceof UsageError && /tensor 'token_embd\.weight' cannot be IQ2_XXS: moestream cannot quantise to it/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("per-group types: experts in --expert-type, regex overrides first, the rest in --type; the file reads back", async () => {
  const dir = mkdtempSync(join(tmpdir(), "moestream-gen-"));
  try {
    const preset: Qwen3MoePreset = { ...PRESETS.tiny, hp: { ...PRESETS.tiny.hp, nLayer: 1, nExpert: 4, nExpertUsed: 2 } };
    const path = join(dir, "mix.gguf");
    const typeOverrides = [{ pattern: /ffn_down_exps/, type: "Q5_K" }, { pattern: /attn_q\./, type: "Q4_0" }];
    await generateModel(path, { preset, type: "F16", expertType: "Q3_K", typeOverrides });
    const file = await openGGUF(path);
    try {
      const typeOf = (n: string) => ggmlTypeName(file.tensors.find((t) => t.name === n)!.type);
      assert.deepEqual(
        ["blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight", "blk.0.ffn_down_exps.weight", "blk.0.attn_q.weight", "token_embd.weight", "blk.0.ffn_gate_inp.weight", "blk.0.attn_norm.weight"].map(typeOf),
        ["Q3_K", "Q3_K", "Q5_K", "Q4_0", "F16", "F32", "F32"],
      );
    } finally {
      await file.source.close();
    }
    for (const bad of [{ type: "Q9_K" }, { type: "Q8_0", expertType: "IQ9" }, { type: "Q8_0", typeOverrides: [{ pattern: /x/, type: "nope" }] }]) {
      await assert.rejects(generateModel(join(dir, "bad.gguf"), { preset, ...bad }), (e: Error) => e instanceof UsageError && /unsupported quant type/.test(e.message));
    }
    // a K-quant on rows that are not whole 256-value blocks is refused naming the tensor
    const narrow: Qwen3MoePreset = { ...preset, hp: { ...preset.hp, nFfExp: 96 } };
    await assert.rejects(generateModel(join(dir, "bad.gguf"), { preset: narrow, type: "Q8_0", expertType: "Q2_K" }), /tensor 'blk\.0\.ffn_down_exps\.weight' rows of 96 values cannot be stored as Q2_K/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("MXFP4 (gpt-oss's expert type): --expert-type writes it, decoding to the generator's scale; rows not whole 32-value blocks refused naming the tensor", async () => {
  // the model the pack and llama.cpp parity tests use too (generated once per machine)
  const file = await openGGUF(await testModel({ type: "Q8_0", seed: 11, expertType: "MXFP4" }));
  try {
    const typeOf = (n: string) => ggmlTypeName(file.tensors.find((t) => t.name === n)!.type);
    assert.deepEqual(["blk.0.ffn_gate_exps.weight", "blk.3.ffn_down_exps.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight"].map(typeOf), ["MXFP4", "MXFP4", "Q8_0", "F32"]);
    // the expert matrix decodes to the generator's scale, 1/sqrt(fan-in) (gate: K = 256), within MXFP4's error
    const t = file.tensors.find((x) => x.name === "blk.0.ffn_gate_exps.weight")!;
    const n = t.shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(n);
    MXFP4.dequantRow(await readTensorBytes(file, t), x, n);
    const sd = Math.sqrt(x.reduce((a, v) => a + v * v, 0) / n);
    assert.ok(Math.abs(sd * Math.sqrt(256) - 1) < 0.1, `std ${sd}`);
  } finally {
    await file.source.close();
  }
  const preset: Qwen3MoePreset = { ...PRESETS.tiny, hp: { ...PRESETS.tiny.hp, nLayer: 1, nExpert: 4, nExpertUsed: 2, nFfExp: 48 } };
  await assert.rejects(generateModel(join(tmpdir(), "never-written.gguf"), { preset, type: "Q8_0", expertType: "MXFP4" }), (e: unknown) =>
    e instanceof UsageError && /tensor 'blk\.0\.ffn_down_exps\.weight' rows of 48 values cannot be stored as MXFP4 \(blocks of 32\)/.test(e.message));
});

test("gen --tensor-type parses regex=TYPE and refuses malformed values", () => {
  const [o] = parseTensorTypes(["ffn_(up|gate)_exps=Q2_K"]);
  assert.equal(o.type, "Q2_K");
  assert.ok(o.pattern.test("blk.3.ffn_up_exps.weight") && !o.pattern.test("blk.3.ffn_down_exps.weight"));
  for (const bad of ["Q2_K", "=Q2_K", "ffn=", "(=Q2_K"]) assert.throws(() => parseTensorTypes([bad]), UsageError, bad);
});
