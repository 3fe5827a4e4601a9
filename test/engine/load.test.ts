// The loader takes any valid qwen3moe GGUF (tensor order, alignment, version) and refuses broken ones
// naming the tensor or key.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/engine/load.js";
import { checkEngineRanges, defaultEngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import { ModelError, UsageError } from "../../src/util/errors.js";
import { testModel } from "../helpers/models.js";
import { rewriteGGUF } from "../helpers/rewrite.js";
import type { GGUFMetaValue } from "../../src/format/gguf/types.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-load-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const cfg = defaultEngineConfig({ ctxSize: 64 });

async function logitsOf(path: string): Promise<Float32Array> {
  const lm = await loadModel(path, cfg);
  try {
    const s = new Session(lm);
    return await s.eval(lm.tokenizer.encode("Hello there, how are you?"), "all");
  } finally {
    await lm.close();
  }
}

test("another writer's layout (reversed tensor order, alignment 64, GGUF v2) gives identical logits", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const dst = join(dir, "relayout.gguf");
  await rewriteGGUF(src, dst, { version: 2, alignment: 64, edit: (t) => t.reverse() });
  assert.deepEqual(await logitsOf(dst), await logitsOf(src));
});

test("a missing tensor is refused at load, naming it", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const dst = join(dir, "missing.gguf");
  await rewriteGGUF(src, dst, { edit: (t) => t.filter((x) => x.name !== "blk.2.attn_k_norm.weight") });
  await assert.rejects(loadModel(dst, cfg), (e: unknown) => e instanceof ModelError && e.code === "missing_tensor" && /blk\.2\.attn_k_norm\.weight/.test(e.message));
});

test("a wrong-shape tensor is refused at load, naming it and both shapes", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const dst = join(dir, "shape.gguf");
  // Same bytes, experts axis and rows swapped: [256, 256, 16] -> [256, 16, 256] would be valid bytes but a wrong shape.
  await rewriteGGUF(src, dst, {
    edit: (t) => t.map((x) => (x.name === "blk.1.ffn_up_exps.weight" ? { ...x, shape: [x.shape[0], x.shape[2], x.shape[1]] } : x)),
  });
  await assert.rejects(loadModel(dst, cfg), (e: unknown) =>
    e instanceof ModelError && e.code === "bad_shape" && /'blk\.1\.ffn_up_exps\.weight' has shape \[256, 16, 256\], expected \[256, 256, 16\]/.test(e.message));
});

test("a missing hyperparameter is refused, naming the key", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const dst = join(dir, "nokey.gguf");
  await rewriteGGUF(src, dst, { edit: (t, md) => (md.delete("qwen3moe.attention.key_length"), t) });
  await assert.rejects(loadModel(dst, cfg), (e: unknown) => e instanceof ModelError && /qwen3moe\.attention\.key_length/.test(e.message));
});

test("hyperparameters out of any plausible range are refused at once, naming the file and the key", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const cases: [string, GGUFMetaValue][] = [
    ["qwen3moe.block_count", { type: "u32", value: 2 ** 31 }],
    ["qwen3moe.rope.freq_base", { type: "f32", value: NaN }],
    ["qwen3moe.rope.freq_base", { type: "f32", value: 0 }],
    ["qwen3moe.rope.freq_base", { type: "f32", value: -1 }],
    ["qwen3moe.attention.layer_norm_rms_epsilon", { type: "f32", value: NaN }],
    ["qwen3moe.attention.layer_norm_rms_epsilon", { type: "f32", value: -1 }],
    ["qwen3moe.attention.layer_norm_rms_epsilon", { type: "f32", value: 1e30 }],
    ["qwen3moe.expert_count", { type: "u32", value: 0 }],
  ];
  for (const [i, [key, value]] of cases.entries()) {
    const dst = join(dir, `hp-${i}.gguf`);
    await rewriteGGUF(src, dst, { edit: (t, md) => (md.set(key, value), t) });
    const t0 = performance.now();
    await assert.rejects(loadModel(dst, cfg), (e: unknown) => e instanceof ModelError && e.code === "bad_hparams" && e.message.includes(dst) && e.message.includes(`'${key}'`), `${key} = ${value.value}`);
    // Refused before anything is sized by the value (2^31 layers took 70 s and the heap before): a bound far
    // above the ~0.3 s it takes, so a loaded machine cannot fail it.
    assert.ok(performance.now() - t0 < 10_000, `${key}: refused in ${performance.now() - t0} ms`);
  }
});

test("an unsupported architecture is refused, naming it", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const dst = join(dir, "arch.gguf");
  await rewriteGGUF(src, dst, { edit: (t, md) => (md.set("general.architecture", { type: "string", value: "mamba9" }), t) });
  await assert.rejects(loadModel(dst, cfg), /unsupported architecture 'mamba9'/);
});

test("a missing model file is a clear error", async () => {
  await assert.rejects(loadModel(join(dir, "nope.gguf"), cfg), /model file not found: .*nope\.gguf/);
});

test("numeric options out of range and a context whose KV cache exceeds the budget are refused by name before anything is allocated", async () => {
  const path = await testModel({ type: "Q8_0", seed: 3 });
  const refuse = (over: Partial<typeof cfg>, re: RegExp) => assert.rejects(loadModel(path, { ...cfg, ...over }), (e: unknown) => e instanceof UsageError && re.test(e.message));
  await refuse({ threads: 100000 }, /--threads \(threads\) must be an integer in \[0, 1024\], got 100000/);
  await refuse({ ctxSize: 100_000_000 }, /--ctx-size \(ctxSize\) must be an integer in \[0, 16777216\]/);
  await refuse({ ctxSize: 0.5 }, /--ctx-size/);
  await refuse({ gpuKeepBusy: 20000 }, /--gpu-keep-busy \(gpuKeepBusy\) must be an integer in \[0, 10000\], got 20000/);
  // 4M positions x 4 layers x 2 x 128 f32 = 16 GiB of KV rows: more than a 1 GiB budget.
  await refuse({ ctxSize: 1 << 22, memBudget: 2 ** 30 }, /--ctx-size 4194304 needs 16\.0 GiB of per-sequence state .* more than the memory budget \(--mem-budget 1\.00 GiB\)/);
  checkEngineRanges(defaultEngineConfig({})); // the defaults are in range
});
