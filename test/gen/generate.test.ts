// The generator writes what the architecture declares: its metadata(hp) keys and its tensors, in llama.cpp's
// file order, with a custom preset as well as a named one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../../src/format/gguf/read.js";
import { architecture } from "../../src/models/registry.js";
import { fileTensors, generateModel } from "../../src/gen/index.js";
import { PRESETS, type Qwen3MoePreset } from "../../src/gen/presets.js";
import { testModel } from "../helpers/models.js";
import { UsageError } from "../../src/util/errors.js";

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
