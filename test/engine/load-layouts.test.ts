// Fused layouts, per-layer keys and bad input: a fused ffn_gate_up_exps or attn_qkv of the wrong shape is refused at
// load naming it and both shapes; a fused tensor beside the parts it replaces, or one the architecture does not take
// (llama.cpp's glm4moe and qwen3moe load no ffn_gate_up_exps), is refused by name; a fused pack's record layout is
// checked; a per-layer key of the wrong length or type, or with values the layers using it disagree on, is refused
// naming the key, while values of layers that do not read it are ignored.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { packModel, verifyPack } from "../../src/engine/pack.js";
import { openGGUF, readTensorBytes } from "../../src/format/gguf/read.js";
import { FormatError } from "../../src/util/errors.js";
import { smallVocabModel } from "../helpers/models.js";
import { logitsOf, refused, Rewrites } from "../helpers/bad-input.js";
import { meta } from "../../src/format/gguf/write.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import type { RewriteTensor } from "../helpers/rewrite.js";

const files = new Rewrites();
test.after(() => files.remove());
const cfg = defaultEngineConfig({ ctxSize: 64 });
const fused = (preset: string) => smallVocabModel({ preset: preset as never, type: "Q8_0", seed: 3, nVocab: 4096, fuse: ["qkv", "gate_up"] });
/** The tensor `name` with only its first `rows` rows (of each expert, for a stacked one). */
const cut = (x: RewriteTensor, rows: number): RewriteTensor => {
  const E = x.shape[2] ?? 1, per = x.data.length / E / x.shape[1];
  const data = new Uint8Array(E * rows * per);
  for (let e = 0; e < E; e++) data.set(x.data.subarray(e * x.shape[1] * per, (e * x.shape[1] + rows) * per), e * rows * per);
  return { ...x, shape: x.shape.length === 3 ? [x.shape[0], rows, E] : [x.shape[0], rows], data };
};

test("a fused ffn_gate_up_exps or attn_qkv of the wrong shape is refused, naming it and both shapes", async () => {
  const cases: [string, string, number, RegExp][] = [
    ["qwen35moe-tiny", "blk.0.ffn_gate_up_exps.weight", 256, /'blk\.0\.ffn_gate_up_exps\.weight' has shape \[256, 256, 16\], expected \[256, 512, 16\]/],
    ["deepseek2-tiny", "blk.2.ffn_gate_up_exps.weight", 256, /'blk\.2\.ffn_gate_up_exps\.weight' has shape \[256, 256, 16\], expected \[256, 512, 16\]/],
    ["qwen35moe-tiny", "blk.3.attn_qkv.weight", 512, /'blk\.3\.attn_qkv\.weight' has shape \[256, 512\], expected \[256, 768\]/], // the gate half missing
    ["glm4moe-tiny", "blk.1.attn_qkv.weight", 384, /'blk\.1\.attn_qkv\.weight' has shape \[256, 384\], expected \[256, 512\]/],
  ];
  for (const [preset, name, rows, what] of cases) {
    const path = await files.of(await fused(preset), (t) => t.map((x) => (x.name === name ? cut(x, rows) : x)));
    await assert.rejects(loadModel(path, cfg), refused("bad_shape", what), `${preset} ${name}`);
  }
});

test("a fused tensor beside the parts it replaces, or one the architecture takes no fused form of, is refused by name", async () => {
  const split = await smallVocabModel({ preset: "qwen35moe-tiny", type: "Q8_0", seed: 3, nVocab: 4096 });
  const f = await openGGUF(split);
  const gate = f.tensors.find((t) => t.name === "blk.0.ffn_gate_exps.weight")!;
  const gateBytes = await readTensorBytes(f, gate);
  await f.source.close();
  const both = await files.of(await fused("qwen35moe-tiny"), (t) => [...t, { name: gate.name, shape: [...gate.shape], type: gate.type, data: gateBytes }]);
  await assert.rejects(loadModel(both, cfg), refused("unexpected_tensor", /'blk\.0\.ffn_gate_exps\.weight' is not one the qwen35moe architecture declares/));
  // llama.cpp's glm4moe creates ffn_gate_exps and ffn_up_exps only: a fused file of it is refused as llama.cpp refuses it.
  const glm = await files.of(await smallVocabModel({ preset: "glm4moe-tiny", type: "Q8_0", seed: 3, nVocab: 4096 }), (t) => {
    const g = t.find((x) => x.name === "blk.1.ffn_gate_exps.weight")!, u = t.find((x) => x.name === "blk.1.ffn_up_exps.weight")!;
    const per = g.data.length / g.shape[2];
    const data = new Uint8Array(2 * g.data.length);
    for (let e = 0; e < g.shape[2]; e++) {
      data.set(g.data.subarray(e * per, (e + 1) * per), 2 * e * per);
      data.set(u.data.subarray(e * per, (e + 1) * per), (2 * e + 1) * per);
    }
    return [...t.filter((x) => x !== g && x !== u), { ...g, name: "blk.1.ffn_gate_up_exps.weight", shape: [g.shape[0], 2 * g.shape[1], g.shape[2]], data }];
  });
  await assert.rejects(loadModel(glm, cfg), refused("missing_tensor", /'blk\.1\.ffn_gate_exps\.weight'/));
});

test("a fused pack: its manifest names the split, and a split that does not add up or differs from the declaration is refused", async () => {
  const dir = join(files.dir, "pack");
  await packModel(await fused("deepseek2-tiny"), dir);
  assert.ok((await verifyPack(dir)).records > 0); // verify declares the layout from the manifest's tensors, as load does
  const manifestPath = join(dir, "manifest.json");
  const good = readFileSync(manifestPath, "utf8");
  const m = JSON.parse(good) as { layers: { parts: { name: string; split?: { name: string; rows: number }[] }[] }[] };
  assert.deepEqual(m.layers[0].parts[0], { ...m.layers[0].parts[0], name: "gate_up", split: [{ name: "gate", rows: 256 }, { name: "up", rows: 256 }] });
  const edit = (rows: [number, number]) => {
    const e = JSON.parse(good) as typeof m;
    e.layers[0].parts[0].split = [{ name: "gate", rows: rows[0] }, { name: "up", rows: rows[1] }];
    writeFileSync(manifestPath, JSON.stringify(e));
  };
  edit([256, 255]);
  await assert.rejects(loadModel(dir, cfg), (e: unknown) => e instanceof FormatError && e.code === "bad_manifest" && /parts\[0\]\.split": split rows sum to 511, the part has 512/.test(e.message));
  edit([128, 384]);
  await assert.rejects(loadModel(dir, cfg), refused("bad_experts", /expert part 'gate_up' \(blk\.1\.ffn_gate_up_exps\.weight\) splits into rows \[gate 128, up 384\], the architecture declares \[gate 256, up 256\]/));
});

test("per-layer keys: a wrong length or type, or values the layers using it disagree on, refused naming the key; other layers' values ignored", async () => {
  const src = await smallVocabModel({ preset: "qwen35moe-tiny", type: "Q8_0", seed: 3, nVocab: 4096 });
  const k = (s: string) => `qwen35moe.${s}`;
  const cases: [string, (md: GGUFMetadata) => void, RegExp][] = [
    ["wrong length", (md) => md.set(k("attention.head_count_kv"), meta.u32Array([2, 2, 2])), /'qwen35moe\.attention\.head_count_kv' has 3 values; expected one per block \(block_count 5\)/],
    ["strings", (md) => md.set(k("expert_used_count"), meta.strArray(["2", "2", "2", "2", "2"])), /'qwen35moe\.expert_used_count' is an array of strings/],
    ["layers disagree", (md) => md.set(k("expert_used_count"), meta.u32Array([4, 4, 2, 4, 4])), /'qwen35moe\.expert_used_count' gives layer 0 4 and layer 2 2: every layer that uses it must have the same value/],
    ["a value out of range", (md) => md.set(k("expert_feed_forward_length"), meta.u32Array([256, 0, 256, 256, 256])), /'qwen35moe\.expert_feed_forward_length\[1\]' is 0; expected an integer in \[1, /],
  ];
  for (const [what, edit, msg] of cases) {
    const path = await files.of(src, (t, md) => (edit(md), t));
    await assert.rejects(loadModel(path, cfg), refused("bad_hparams", msg), what);
  }
  // Only layer 3 is full attention: the DeltaNet layers' (and the MTP block's) head counts are not read.
  const heads = await files.of(src, (t, md) => (md.set(k("attention.head_count_kv"), meta.u32Array([7, 7, 7, 2, 7])), md.set(k("attention.head_count"), meta.u32Array([0, 0, 0, 4, 0])), t));
  assert.deepEqual(await logitsOf(heads, cfg), await logitsOf(src, cfg));
});
