// Pack format v2: free part names, 1-D parts, layers without experts; v1 packs (gate/up/down) still load.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { packModel } from "../../src/experts/pack.js";
import {
  MANIFEST_FILE, PACK_FORMAT_VERSION, RECORD_ALIGN, decodeLayerHeader, planExpertLayers, validateManifest, type ExpertTensorLayout,
} from "../../src/experts/pack-format.js";
import { ExpertStore, GGUFExpertReader } from "../../src/experts/store.js";
import { StreamingExperts } from "../../src/experts/streaming-source.js";
import { getTensor } from "../../src/format/gguf/accessors.js";
import { GGMLType, meta, metaMap, tensorByteLength } from "../../src/format/gguf/index.js";
import { openGGUF, readTensorBytes } from "../../src/format/gguf/read.js";
import { writeGGUF } from "../../src/format/gguf/write.js";
import { crc32c } from "../../src/util/crc32c.js";
import { FormatError, ModelError } from "../../src/util/errors.js";
import { mulberry32 } from "../helpers/numeric.js";
import { expertLayout } from "../helpers/experts.js";
import { testModel } from "../helpers/models.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-pack-v2-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number, seed: number) => {
  const r = mulberry32(seed);
  return Uint8Array.from({ length: n }, () => (r() * 256) | 0);
};

/** gpt-oss-like: layer 0 dense; layers 1, 2 hold a fused Q8_0 gate_up [64, 12], a 1-D F32 bias [12] and an F16 down [6, 64]. */
const EXPERTS = [0, 5, 3];
const layout: ExpertTensorLayout = EXPERTS.map((n, l) => n === 0 ? null : {
  gate_up: { name: `blk.${l}.ffn_gate_up_exps.weight`, shape: [64, 12, n] },
  gate_up_b: { name: `blk.${l}.ffn_gate_up_exps.bias` },
  down: { name: `blk.${l}.ffn_down_exps.weight` },
});

async function syntheticGGUF(path: string): Promise<void> {
  const specs: { name: string; shape: number[]; type: number }[] = [
    { name: "token_embd.weight", shape: [8, 4], type: GGMLType.F32 },
    { name: "output_norm.weight", shape: [8], type: GGMLType.F32 },
    { name: "blk.0.ffn_up.weight", shape: [8, 16], type: GGMLType.F32 },
  ];
  EXPERTS.forEach((n, l) => {
    if (n === 0) return;
    specs.push(
      { name: `blk.${l}.ffn_gate_up_exps.weight`, shape: [64, 12, n], type: GGMLType.Q8_0 },
      { name: `blk.${l}.ffn_gate_up_exps.bias`, shape: [12, n], type: GGMLType.F32 },
      { name: `blk.${l}.ffn_down_exps.weight`, shape: [6, 64, n], type: GGMLType.F16 },
    );
  });
  specs.push({ name: "blk.2.odd.bias", shape: [12, 4], type: GGMLType.F32 }); // 4 experts where its layer has 3
  await writeGGUF(path, {
    metadata: metaMap({ "general.architecture": meta.str("synthmoe"), "general.name": meta.str("synthetic") }),
    tensors: specs.map((s, i) => ({ ...s, data: bytes(tensorByteLength(s.type, s.shape), 100 + i) })),
  });
}

test("v2: a fused 2-D part, a 1-D bias part and a dense layer pack; both readers give the stacked tensors' slices", async () => {
  const src = join(dir, "synth.gguf");
  await syntheticGGUF(src);
  const out = join(dir, "synth-pack");
  const res = await packModel(src, out, { experts: () => layout, verify: true });
  assert.equal(res.manifest.version, PACK_FORMAT_VERSION);
  assert.equal(PACK_FORMAT_VERSION, 2);
  assert.equal(res.manifest.architecture, "synthmoe");
  const mpath = join(out, MANIFEST_FILE);
  assert.deepEqual(validateManifest(JSON.parse(readFileSync(mpath, "utf8")), mpath), res.manifest);

  const file = await openGGUF(src);
  const store = await ExpertStore.open(out, { verify: true });
  const plain = await GGUFExpertReader.open(src, () => layout);
  try {
    assert.deepEqual(store.layers, [1, 2]);
    assert.deepEqual(plain.layers, [1, 2]);
    for (const layer of store.layers) {
      const parts = store.parts(layer);
      assert.deepEqual(parts.map((p) => [p.name, p.shape]), [["gate_up", [64, 12]], ["gate_up_b", [12]], ["down", [6, 64]]]);
      assert.deepEqual(plain.parts(layer), parts);
      assert.equal(store.expertCount(layer), EXPERTS[layer]);
      const R = store.recordBytes(layer);
      assert.equal(R, RECORD_ALIGN);
      const head = readFileSync(join(out, `experts/layer_00${layer}.bin`)).subarray(0, 64);
      assert.equal(decodeLayerHeader(head, "x").version, 2);
      const stacked = await Promise.all(parts.map((p) => readTensorBytes(file, getTensor(file, p.tensor))));
      const crcs = res.manifest.layers.find((l) => l.layer === layer)!.crc32c;
      const a = new Uint8Array(R), b = new Uint8Array(R);
      for (let e = 0; e < store.expertCount(layer); e++) {
        await store.readExpert(layer, e, a);
        await plain.readExpert(layer, e, b.fill(0xee));
        assert.deepEqual(b, a, `layer ${layer} expert ${e}: GGUF reader and pack differ`);
        assert.equal(crc32c(a), crcs[e], `layer ${layer} expert ${e}: crc32c`);
        let end = 0;
        for (const [i, p] of parts.entries()) {
          assert.equal(p.offset % 64, 0);
          assert.deepEqual(a.subarray(p.offset, p.offset + p.byteLength), stacked[i].subarray(e * p.byteLength, (e + 1) * p.byteLength), `layer ${layer} expert ${e} ${p.name}`);
          assert.ok(a.subarray(end, p.offset).every((x) => x === 0), "padding between parts is zeros");
          end = p.offset + p.byteLength;
        }
        assert.ok(a.subarray(end).every((x) => x === 0), "record padding is zeros");
      }
    }
    // dense.gguf keeps the dense layer's and the unused tensors, none of the expert ones.
    const d = await openGGUF(join(out, "dense.gguf"));
    assert.deepEqual(d.tensors.map((t) => t.name), ["token_embd.weight", "output_norm.weight", "blk.0.ffn_up.weight", "blk.2.odd.bias"]);
    await d.source.close();

    // The streaming cache hands every part over by name; the 1-D bias uploads through the scalar backend.
    const experts = new StreamingExperts(store, new ScalarBackend(), { budgetBytes: 8 * RECORD_ALIGN });
    const [w0, w2] = await experts.acquire(1, [0, 2]);
    assert.deepEqual(Object.keys(w0), ["gate_up", "gate_up_b", "down"]);
    assert.deepEqual(w2.gate_up_b.shape, [12]);
    assert.deepEqual(w2.down.shape, [6, 64]);
    assert.equal(w2.gate_up.name, "blk.1.ffn_gate_up_exps.weight[2]");
    experts.release(1, [0, 2]);
    await assert.rejects(experts.acquire(0, [0]), /layer 0 has no experts/);
    await experts.whenFilled(); // everything fits, so a background fill reads the rest: let it finish before closing
    assert.deepEqual(experts.cached(2), [0, 1, 2]);
  } finally {
    await Promise.all([store.close(), plain.close(), file.source.close()]);
  }
});

test("v2 layouts: a tensor whose expert count disagrees, a tensor of rank 1, a bad part name: ModelError naming it", async () => {
  const src = join(dir, "synth-plan.gguf");
  await syntheticGGUF(src);
  const file = await openGGUF(src);
  try {
    const l2 = layout[2]!;
    const plan = (spec: ExpertTensorLayout[number]) => () => planExpertLayers(file, [null, null, spec]);
    assert.throws(plan({ ...l2, odd_b: { name: "blk.2.odd.bias" } }), (e: unknown) =>
      e instanceof ModelError && /'blk\.2\.odd\.bias' has 4 experts, 'blk\.2\.ffn_gate_up_exps\.weight' has 3/.test(e.message));
    assert.throws(plan({ norm: { name: "output_norm.weight" } }), (e: unknown) =>
      e instanceof ModelError && e.code === "bad_shape" && /'output_norm\.weight' has shape \[8\]/.test(e.message));
    assert.throws(plan({ Gate: l2.gate_up }), (e: unknown) => e instanceof ModelError && /layer 2 part name "Gate"/.test(e.message));
    assert.throws(plan({}), (e: unknown) => e instanceof ModelError && /layer 2 declares expert tensors but no parts/.test(e.message));
    assert.throws(plan({ ...l2, gate_up: { ...l2.gate_up, shape: [64, 12, 5] } }), (e: unknown) =>
      e instanceof ModelError && /'blk\.2\.ffn_gate_up_exps\.weight' has shape \[64, 12, 3\], expected \[64, 12, 5\]/.test(e.message));
  } finally {
    await file.source.close();
  }
});

test("v2 manifests: part names checked (pattern, unique, at least one), ranks 1 and 2 only; fields named", async () => {
  const src = join(dir, "synth-manifest.gguf");
  await syntheticGGUF(src);
  const out = join(dir, "synth-manifest-pack");
  const good = (await packModel(src, out, { experts: () => layout })).manifest;
  const bad = (edit: (x: any) => void, field: string, re: RegExp, code = "bad_manifest") => {
    const x = structuredClone(good) as any;
    edit(x);
    assert.throws(() => validateManifest(JSON.parse(JSON.stringify(x)), "m.json"), (e: unknown) =>
      e instanceof FormatError && e.code === code && e.message.includes(`field "${field}"`) && re.test(e.message), field);
  };
  bad((x) => (x.layers[0].parts[1].name = "gate_up"), "layers[0].parts[1].name", /appears twice/);
  bad((x) => (x.layers[1].parts[0].name = "Gate"), "layers[1].parts[0].name", /matching/);
  bad((x) => (x.layers[1].parts = []), "layers[1].parts", /at least one part/);
  bad((x) => (x.layers[0].parts[1].shape = [12, 1, 1]), "layers[0].parts[1].shape", /\[K, N\] or \[N\]/);
  bad((x) => (x.layers[0].parts[1].byteLength = 4), "layers[0].parts[1].byteLength", /F32 \[12\] takes 48 bytes/);
  // As version 1 this pack's parts are not gate/up/down.
  bad((x) => (x.version = 1), "layers[0].parts[0].name", /expected "gate"/);
  bad((x) => (x.version = 3), "version", /reads 1 and 2 \(re-run pack\)/, "unsupported_pack_version");
});

/** Rewrite a freshly packed (v2) directory as version 1: only the manifest's and layer headers' version change. */
function downgrade(p: string): void {
  const mpath = join(p, MANIFEST_FILE);
  const m = JSON.parse(readFileSync(mpath, "utf8"));
  m.version = 1;
  writeFileSync(mpath, JSON.stringify(m, null, 1) + "\n");
  for (const l of m.layers) setHeaderVersion(join(p, l.file), 1);
}
function setHeaderVersion(path: string, v: number): void {
  const fd = openSync(path, "r+");
  writeSync(fd, Uint8Array.of(v, 0, 0, 0), 0, 4, 4);
  closeSync(fd);
}

test("v1 packs (gate/up/down) still load and give the same records; other versions are refused", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const v2 = join(dir, "qwen-v2");
  await packModel(src, v2, { experts: expertLayout });
  const v1 = join(dir, "qwen-v1");
  cpSync(v2, v1, { recursive: true });
  downgrade(v1);
  const a = await ExpertStore.open(v2, { verify: true });
  const b = await ExpertStore.open(v1, { verify: true });
  try {
    assert.equal(a.manifest.version, 2);
    assert.equal(b.manifest.version, 1);
    assert.deepEqual(b.layers, a.layers);
    for (const layer of a.layers) {
      assert.deepEqual(b.parts(layer), a.parts(layer));
      assert.deepEqual(a.parts(layer).map((p) => p.name), ["gate", "up", "down"]);
      const x = new Uint8Array(a.recordBytes(layer)), y = new Uint8Array(b.recordBytes(layer));
      for (let e = 0; e < a.expertCount(layer); e++) {
        await a.readExpert(layer, e, x);
        await b.readExpert(layer, e, y); // crc32c checked: the manifest's checksums still hold
        assert.deepEqual(y, x, `layer ${layer} expert ${e}`);
      }
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }

  // A layer header of version 3 is refused, naming the file; one that disagrees with its manifest too.
  const v3 = join(dir, "qwen-v3");
  cpSync(v2, v3, { recursive: true });
  setHeaderVersion(join(v3, "experts/layer_001.bin"), 3);
  await assert.rejects(ExpertStore.open(v3), (e: unknown) =>
    e instanceof FormatError && e.code === "unsupported_pack_version" && e.file === join(v3, "experts/layer_001.bin") && /version 3, this build reads 1 and 2 \(re-run pack\)/.test(e.message));
  setHeaderVersion(join(v3, "experts/layer_001.bin"), 1);
  await assert.rejects(ExpertStore.open(v3), (e: unknown) =>
    e instanceof FormatError && e.code === "header_mismatch" && /layer 1: header format version is 1, manifest.json says 2/.test(e.message));
});
