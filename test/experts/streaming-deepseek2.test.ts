// The standing invariant for deepseek2 (MLA with its latent cache, a dense lead layer, shared experts resident, an MTP
// block in the file): logits with streamed experts are identical to the resident path, packed and plain, at every
// cache budget; the packed dense file keeps the shared experts and drops the MTP block.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openGGUF } from "../../src/format/gguf/read.js";
import { verifyPack } from "../../src/engine/pack.js";
import { smallVocabModel } from "../helpers/models.js";
import { checkStreamedEqualsResident } from "../helpers/streaming.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-stream-ds2-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("deepseek2: streamed logits equal resident logits for packed dir and plain GGUF, at every budget", async () => {
  const src = await smallVocabModel({ preset: "deepseek2-tiny", type: "Q8_0", seed: 3, nVocab: 4096 });
  await checkStreamedEqualsResident(src, dir, [3555, 11, 1879, 374, 13, 2701]);
  const dense = await openGGUF(join(dir, "packed", "dense.gguf"));
  try {
    const names = dense.tensors.map((t) => t.name);
    for (const l of [1, 2]) for (const p of ["gate", "up", "down"]) assert.ok(names.includes(`blk.${l}.ffn_${p}_shexp.weight`), `shared expert ${p} of layer ${l} stays dense`);
    assert.ok(names.includes("blk.1.attn_k_b.weight") && names.includes("blk.0.ffn_gate.weight"), "MLA and the dense lead layer stay dense");
    assert.ok(!names.some((n) => /_exps\.weight$/.test(n)), "routed experts are in the pack, not the dense file");
    assert.ok(!names.some((n) => n.startsWith("blk.3.")), "the MTP block is dropped");
  } finally {
    await dense.source.close();
  }
  const v = await verifyPack(join(dir, "packed")); // what load relies on holds without the MTP block
  assert.equal(v.records, 2 * 16, "16 experts in each of the 2 MoE layers");
});
