// The load-time capability check and the pack-vs-architecture part check: what a backend or a pack lacks is
// refused once, at load, by name, instead of failing (or silently falling back) inside a forward pass.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OpName } from "../../src/backends/backend.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { checkCapabilities } from "../../src/engine/capabilities.js";
import { architecture } from "../../src/models/registry.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { loadModel } from "../../src/engine/load.js";
import { packModel } from "../../src/experts/pack.js";
import { verifyPack } from "../../src/engine/pack.js";
import { MANIFEST_FILE } from "../../src/experts/pack-format.js";
import { ModelError, UsageError } from "../../src/util/errors.js";
import { expertLayout } from "../helpers/experts.js";
import { testModel } from "../helpers/models.js";

/** The scalar reference, pretending to lack one op (for one type, or for all). */
class Lacking extends ScalarBackend {
  constructor(private readonly op: OpName, private readonly type?: number) {
    super();
  }
  override supports(op: OpName, type?: number): boolean {
    if (op === this.op && (this.type === undefined || type === this.type)) return false;
    return super.supports(op, type);
  }
}

test("checkCapabilities names the op, the type and the tensor a backend lacks", () => {
  const weights = [
    { name: "token_embd.weight", type: 8, rank: 2 },
    { name: "blk.0.attn_norm.weight", type: 0, rank: 1 },
    { name: "blk.0.ffn_down_exps.weight", type: 14, rank: 2 },
  ];
  checkCapabilities(new ScalarBackend(), weights); // the reference runs everything
  // A type not even the reference runs (an F32 norm's type field changed to I32): the file is at fault, not the backend choice.
  assert.throws(() => checkCapabilities(new Lacking("rmsnorm", 26), [{ name: "blk.0.attn_norm.weight", type: 26, rank: 1 }]), (e: unknown) =>
    e instanceof ModelError && e.code === "unsupported_type" && /tensor 'blk\.0\.attn_norm\.weight' is I32: no moestream backend runs rmsnorm on it/.test(e.message));
  assert.throws(() => checkCapabilities(new Lacking("matmul", 14), weights), (e: unknown) =>
    e instanceof UsageError && /cannot run matmul on Q6_K weights \(tensor 'blk\.0\.ffn_down_exps\.weight'\)/.test(e.message));
  assert.throws(() => checkCapabilities(new Lacking("embed", 8), weights), /cannot run embed on Q8_0 weights \(tensor 'token_embd\.weight'\)/);
  assert.throws(() => checkCapabilities(new Lacking("rmsnorm", 0), weights), /cannot run rmsnorm on F32 weights/);
  assert.throws(() => checkCapabilities(new Lacking("attention"), weights), /lacks the op\(s\) attention/);
});

test("1-D weights ask for what uses them: biases add_rows, sinks attention, the shared-expert gate matmul, others rmsnorm", () => {
  const bias = [{ name: "blk.0.attn_q.bias", type: 0, rank: 1 }];
  checkCapabilities(new ScalarBackend(), bias);
  assert.throws(() => checkCapabilities(new Lacking("add_rows", 0), bias), /cannot run add_rows on F32 weights \(tensor 'blk\.0\.attn_q\.bias'\)/);
  checkCapabilities(new Lacking("add_rows"), [{ name: "blk.0.attn_norm.weight", type: 0, rank: 1 }]); // a model without biases is not asked
  assert.throws(() => checkCapabilities(new Lacking("attention", 0), [{ name: "blk.0.attn_sinks.weight", type: 0, rank: 1 }]), /cannot run attention on F32 weights/);
  assert.throws(() => checkCapabilities(new Lacking("matmul", 0), [{ name: "blk.0.ffn_gate_inp_shexp.weight", type: 0, rank: 1 }]), /cannot run matmul on F32 weights/);
});

test("an architecture's own ops are asked of the backend at load: gpt-oss's clamped SwiGLU", () => {
  const weights = [{ name: "blk.0.attn_norm.weight", type: 0, rank: 1 }];
  checkCapabilities(new Lacking("swiglu_oai"), weights); // not asked of a model that does not run it
  assert.throws(() => checkCapabilities(new Lacking("swiglu_oai"), weights, architecture("gpt-oss").ops), /lacks the op\(s\) swiglu_oai/);
});

test("a pack whose expert parts differ from the architecture's declaration is refused at load, naming layer and part", async () => {
  const dir = mkdtempSync(join(tmpdir(), "moestream-parts-"));
  try {
    const pack = join(dir, "m.moe");
    await packModel(await testModel({ type: "Q8_0", seed: 7 }), pack, { experts: expertLayout });
    const cfg = defaultEngineConfig({ backend: "scalar", ctxSize: 32 });
    const original = readFileSync(join(pack, MANIFEST_FILE), "utf8");
    const edit = (f: (m: { layers: { parts: { name: string; shape: number[] }[] }[] }) => void) => {
      const m = JSON.parse(original);
      f(m);
      writeFileSync(join(pack, MANIFEST_FILE), JSON.stringify(m));
    };
    // Twice the row length, half the rows: the same bytes, so only the declaration can tell.
    // `verify` refuses each case as load does: a pack that verifies also loads.
    const both = async (re: RegExp) => {
      await assert.rejects(loadModel(pack, cfg), (e: unknown) => e instanceof ModelError && re.test(e.message));
      await assert.rejects(verifyPack(pack), (e: unknown) => e instanceof ModelError && re.test(e.message));
    };
    edit((m) => (m.layers[1].parts[0].shape = [m.layers[1].parts[0].shape[0] * 2, m.layers[1].parts[0].shape[1] / 2]));
    await both(/layer 1 expert part 'gate' .* has shape \[\d+, \d+\], expected/);
    edit((m) => (m.layers[2].parts[1].name = "upp"));
    await both(/layer 2's expert records hold parts \[gate, upp, down\]/);
    edit((m) => m.layers.splice(3, 1));
    await both(/experts for layers \[0, 1, 2\], the model has them in layers \[0, 1, 2, 3\]/);
    writeFileSync(join(pack, MANIFEST_FILE), original);
    assert.ok((await verifyPack(pack)).records > 0);
    const lm = await loadModel(pack, cfg);
    await lm.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
