// pack: records hold exactly the source's expert slices, 4 KiB aligned; the manifest round-trips; both
// readers (packed dir, plain GGUF) return byte-identical records.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packModel, sourceIdentity, verifyPack } from "../../src/experts/pack.js";
import { MANIFEST_FILE, RECORDS_OFFSET, RECORD_ALIGN, validateManifest } from "../../src/experts/pack-format.js";
import { ExpertStore, GGUFExpertReader } from "../../src/experts/store.js";
import { openGGUF, readTensorBytes } from "../../src/format/gguf/read.js";
import { getTensor } from "../../src/format/gguf/accessors.js";
import { crc32c } from "../../src/util/crc32c.js";
import { FormatError, UsageError } from "../../src/util/errors.js";
import { testModel } from "../helpers/models.js";
import { expertLayout } from "../helpers/experts.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-pack-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("crc32c matches the standard check values", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  const a = Uint8Array.from({ length: 1001 }, (_, i) => (i * 7919) & 0xff);
  for (const s of [0, 1, 3, 5]) assert.equal(crc32c(a.subarray(s)), crc32c(a.subarray(s + 100), crc32c(a.subarray(s, s + 100))));
});

// MXFP4: gpt-oss's experts, 17-byte blocks (parts of 34816 bytes: records padded to 4 KiB).
for (const [type, expertType] of [["Q8_0"], ["Q6_K"], ["Q8_0", "MXFP4"]]) {
  test(`${expertType ?? type}: every packed record holds the source's expert slices; offsets 4 KiB aligned; verifyPack passes`, async () => {
    const src = await testModel({ type, seed: 11, ...(expertType ? { expertType } : {}) });
    const out = join(dir, `pack-${expertType ?? type}`);
    let last = [0, 0];
    const res = await packModel(src, out, { experts: expertLayout, verify: true, onProgress: (d, t) => (last = [d, t]) });
    assert.equal(last[0], last[1]);
    assert.equal(last[1], res.denseBytes + res.expertBytes);
    assert.ok(!existsSync(`${out}.tmp-${process.pid}`));

    const file = await openGGUF(src);
    const store = await ExpertStore.open(out, { verify: true });
    const plain = await GGUFExpertReader.open(src, expertLayout);
    try {
      assert.deepEqual(store.layers, [0, 1, 2, 3]);
      assert.deepEqual(plain.layers, store.layers);
      for (const layer of store.layers) {
        const R = store.recordBytes(layer);
        assert.equal(R % RECORD_ALIGN, 0);
        assert.equal(plain.recordBytes(layer), R);
        assert.deepEqual(plain.parts(layer), store.parts(layer));
        const stacked = await Promise.all(store.parts(layer).map((p) => readTensorBytes(file, getTensor(file, p.tensor))));
        const a = new Uint8Array(R), b = new Uint8Array(R);
        for (let e = 0; e < store.expertCount(layer); e++) {
          assert.equal(store.recordOffset(layer, e) % RECORD_ALIGN, 0);
          await store.readExpert(layer, e, a);
          await plain.readExpert(layer, e, b.fill(0xee));
          assert.deepEqual(b, a, `layer ${layer} expert ${e}: GGUF reader and pack differ`);
          let end = 0;
          for (const [i, p] of store.parts(layer).entries()) {
            assert.deepEqual(a.subarray(p.offset, p.offset + p.byteLength), stacked[i].subarray(e * p.byteLength, (e + 1) * p.byteLength));
            assert.ok(a.subarray(end, p.offset).every((x) => x === 0));
            end = p.offset + p.byteLength;
          }
          assert.ok(a.subarray(end).every((x) => x === 0), "record padding is zeros");
        }
      }
      if (type === "Q6_K" || expertType) assert.notEqual(store.parts(0)[2].offset + store.parts(0)[2].byteLength, store.recordBytes(0), `${expertType ?? type} records are padded`);
      const v = await verifyPack(out);
      assert.equal(v.records, 4 * 16);
    } finally {
      await Promise.all([store.close(), plain.close(), file.source.close()]);
    }
  });
}

test("manifest round trip: the file validates to the manifest pack returned; source identity matches", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const out = join(dir, "roundtrip");
  const res = await packModel(src, out, { experts: expertLayout });
  const path = join(out, MANIFEST_FILE);
  const parsed = validateManifest(JSON.parse(readFileSync(path, "utf8")), path);
  assert.deepEqual(parsed, res.manifest);
  assert.deepEqual(validateManifest(JSON.parse(JSON.stringify(parsed)), path), parsed);
  const { file: _f, ...id } = parsed.source;
  assert.deepEqual(id, await sourceIdentity(src));
  assert.equal(parsed.architecture, "qwen3moe");
  const l = parsed.layers[1];
  assert.equal(l.file, "experts/layer_001.bin");
  assert.equal(readFileSync(join(out, l.file)).byteLength, RECORDS_OFFSET + l.experts * l.recordBytes);

  // dense.gguf: every non-expert tensor, none of the expert ones, the same metadata.
  const a = await openGGUF(src), d = await openGGUF(join(out, "dense.gguf"));
  try {
    const isExpert = (n: string) => /_exps\.weight$/.test(n);
    assert.deepEqual(d.tensors.map((t) => t.name), a.tensors.filter((t) => !isExpert(t.name)).map((t) => t.name));
    assert.deepEqual(d.metadata, a.metadata);
    for (const t of d.tensors) assert.deepEqual(await readTensorBytes(d, t), await readTensorBytes(a, getTensor(a, t.name)));
  } finally {
    await Promise.all([a.source.close(), d.source.close()]);
  }
});

test("pack into an existing dir is refused by default; overwrite replaces only a pack; leftovers of a killed pack never open", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const out = join(dir, "exists");
  mkdirSync(out);
  writeFileSync(join(out, "keep.txt"), "x");
  await assert.rejects(packModel(src, out, { experts: expertLayout }), (e: unknown) => e instanceof UsageError && e.code === "pack_exists" && e.message.includes(out));
  assert.ok(existsSync(join(out, "keep.txt")), "the refused pack left the directory alone");
  // Not a pack (no manifest): --overwrite refuses it by name instead of deleting someone's files.
  await assert.rejects(packModel(src, out, { experts: expertLayout, overwrite: true }), (e: unknown) => e instanceof UsageError && /is not a moestream pack/.test(e.message) && e.message.includes(out));
  assert.ok(existsSync(join(out, "keep.txt")));
  assert.ok(!existsSync(`${out}.tmp-${process.pid}`), "no temp dir left behind");

  const packed = join(dir, "replaced");
  await packModel(src, packed + "/", { experts: expertLayout }); // a trailing slash names the same directory
  writeFileSync(join(packed, "stale.txt"), "x");
  await packModel(src, packed, { experts: expertLayout, overwrite: true });
  assert.ok(!existsSync(join(packed, "stale.txt")), "a pack is replaced whole");
  await (await ExpertStore.open(packed)).close();
  assert.ok(!existsSync(`${packed}.old-${process.pid}`));

  // A source that cannot be read leaves nothing behind.
  const bad = join(dir, "not-a-gguf.gguf");
  writeFileSync(bad, "definitely not GGUF");
  await assert.rejects(packModel(bad, join(dir, "from-bad"), { experts: expertLayout }), FormatError);
  assert.ok(!existsSync(join(dir, "from-bad")) && !existsSync(`${join(dir, "from-bad")}.tmp-${process.pid}`));

  // A pack killed before its rename leaves outDir.tmp-<pid> with no manifest: it does not open, and the next pack clears it.
  const stale = `${join(dir, "killed")}.tmp-999999999`;
  mkdirSync(join(stale, "experts"), { recursive: true });
  await assert.rejects(ExpertStore.open(stale), (e: unknown) => e instanceof FormatError && e.code === "not_a_pack");
  await packModel(src, join(dir, "killed"), { experts: expertLayout });
  assert.ok(!existsSync(stale));
});

test("a pack killed midway leaves no outDir, only a temp dir without a manifest that never opens", async () => {
  const src = await testModel({ type: "Q8_0", seed: 3 });
  const out = join(dir, "sigkill");
  const root = join(import.meta.dirname, "..", "..");
  const code = `import { packModel } from ${JSON.stringify(join(root, "src/experts/pack.ts"))};
import { expertLayout } from ${JSON.stringify(join(root, "test/helpers/experts.ts"))};
await packModel(${JSON.stringify(src)}, ${JSON.stringify(out)}, { experts: expertLayout, onProgress: (d, t) => d > t / 2 && console.log("half") });`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  child.stdout.once("data", () => child.kill("SIGKILL"));
  assert.equal(await exited, null, "killed, not finished");
  assert.ok(!existsSync(out));
  const tmp = `${out}.tmp-${child.pid}`;
  assert.ok(existsSync(tmp) && !readdirSync(tmp).includes(MANIFEST_FILE));
  await assert.rejects(ExpertStore.open(tmp), (e: unknown) => e instanceof FormatError && e.code === "not_a_pack");
  await packModel(src, out, { experts: expertLayout }); // clears the dead pack's temp dir
  assert.ok(!existsSync(tmp));
});
