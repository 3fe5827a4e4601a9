// Bad packs and failed reads: each is a typed error naming the file, the layer and (where there is one) the
// expert; a failed read leaves no half-filled slot in the cache.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync, writeSync, closeSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Weight } from "../../src/backends/backend.js";
import { packModel, verifyPack } from "../../src/experts/pack.js";
import { DENSE_FILE, ExpertError, MANIFEST_FILE, RECORDS_OFFSET } from "../../src/experts/pack-format.js";
import { openGGUF } from "../../src/format/gguf/read.js";
import { ExpertStore, GGUFExpertReader, MAX_READ_RETRIES, type ExpertReader, type FileLike, type OpenFile } from "../../src/experts/store.js";
import { ExpertBudgetError, StreamingExperts } from "../../src/experts/streaming-source.js";
import { FormatError } from "../../src/util/errors.js";
import { testModel } from "../helpers/models.js";
import { buildModel, expertLayout, runLogits } from "../helpers/experts.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-experr-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let packs: Promise<{ a: string; b: string; src: string }> | undefined;
/** Two packs of same-shaped models (seeds 3 and 11), made once; each test works on a copy. */
function basePacks() {
  packs ??= (async () => {
    const src = await testModel({ type: "Q8_0", seed: 3 });
    await packModel(src, join(dir, "a"), { experts: expertLayout });
    await packModel(await testModel({ type: "Q8_0", seed: 11 }), join(dir, "b"), { experts: expertLayout });
    return { a: join(dir, "a"), b: join(dir, "b"), src };
  })();
  return packs;
}
let copies = 0;
async function copyOf(which: "a" | "b"): Promise<string> {
  const p = join(dir, `copy${copies++}`);
  cpSync((await basePacks())[which], p, { recursive: true });
  return p;
}
const layerFile = (pack: string, layer: number) => join(pack, "experts", `layer_${String(layer).padStart(3, "0")}.bin`);

function expertError(code: string, file: string, layer: number, expert?: number) {
  return (e: unknown) => {
    assert.ok(e instanceof ExpertError, `expected ExpertError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.file, file);
    assert.equal(e.layer, layer);
    assert.equal(e.expert, expert);
    assert.ok(e.message.includes(file) && e.message.includes(`layer ${layer}`), e.message);
    if (expert !== undefined) assert.ok(e.message.includes(`expert ${expert}`), e.message);
    return true;
  };
}

/** Opens real files whose reads, once armed, fail on the nth read, come back short, or return nothing `emptyReads` times. */
function faultyOpen(fault: { armed: boolean; failOnRead?: number; maxBytes?: number; emptyReads?: number }): OpenFile {
  let reads = 0;
  return async (path) => {
    const fh = await open(path, "r");
    const wrapped: FileLike = {
      stat: () => fh.stat(),
      close: () => fh.close(),
      read: async (buf, off, len, pos) => {
        if (!fault.armed) return fh.read(buf, off, len, pos);
        if (fault.failOnRead !== undefined && ++reads === fault.failOnRead) throw Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" });
        if (fault.emptyReads && fault.emptyReads-- > 0) return { bytesRead: 0 };
        return fh.read(buf, off, Math.min(len, fault.maxBytes ?? len), pos);
      },
    };
    return wrapped;
  };
}

const bytesOf = (w: Weight) => (w as unknown as { bytes: Uint8Array }).bytes;

test("checksum mismatch: a flipped byte is refused on a verified read and by verifyPack, naming file, layer and expert", async () => {
  const p = await copyOf("a");
  const store0 = await ExpertStore.open(p);
  const R = store0.recordBytes(2);
  await store0.close();
  const file = layerFile(p, 2);
  const fd = openSync(file, "r+");
  const at = RECORDS_OFFSET + 5 * R + 100; // inside expert 5's gate
  const b = new Uint8Array(1);
  readSync(fd, b, 0, 1, at);
  writeSync(fd, Uint8Array.of(b[0] ^ 0x40), 0, 1, at);
  closeSync(fd);

  const store = await ExpertStore.open(p, { verify: true });
  try {
    await assert.rejects(store.readExpert(2, 5, new Uint8Array(R)), expertError("checksum_mismatch", file, 2, 5));
    await store.readExpert(2, 4, new Uint8Array(R)); // its neighbours are fine
    await store.readExpert(2, 5, new Uint8Array(R), false); // verification is per read
  } finally {
    await store.close();
  }
  await assert.rejects(verifyPack(p), expertError("checksum_mismatch", file, 2, 5));
});

test("dense.gguf: 16 bytes changed inside a tensor (outside the identity's sampled pages or not) are caught by verifyPack, naming the tensor", async () => {
  const p = await copyOf("a");
  await verifyPack(p); // the untouched copy verifies
  const densePath = join(p, DENSE_FILE);
  const dense = await openGGUF(densePath);
  const t = dense.tensors.find((x) => x.name === "blk.1.attn_v.weight")!;
  await dense.source.close();
  const fd = openSync(densePath, "r+");
  writeSync(fd, new Uint8Array(16).fill(0x5a), 0, 16, t.offset + Math.floor(t.byteLength / 2));
  closeSync(fd);
  await assert.rejects(verifyPack(p), (e: unknown) => e instanceof FormatError && e.code === "checksum_mismatch" && e.message.includes(densePath) && e.message.includes("'blk.1.attn_v.weight'"));
});

test("truncated layer file: refused at open naming the first expert cut off; truncated after open: short read naming offset, expected, got", async () => {
  const p = await copyOf("a");
  const file = layerFile(p, 3);
  const store = await ExpertStore.open(p);
  const R = store.recordBytes(3);
  truncateSync(file, RECORDS_OFFSET + 9 * R + 1000); // expert 9 is partly there, 10.. are gone
  try {
    await assert.rejects(store.readExpert(3, 9, new Uint8Array(R)), (e: unknown) =>
      expertError("short_read", file, 3, 9)(e) && (e as ExpertError).offset === RECORDS_OFFSET + 9 * R &&
      (e as Error).message.includes(`expected ${R} bytes, got 1000`));
    await store.readExpert(3, 8, new Uint8Array(R));
  } finally {
    await store.close();
  }
  await assert.rejects(ExpertStore.open(p), expertError("truncated", file, 3, 9));
});

test("missing layer file: refused at open, naming the file and layer", async () => {
  const p = await copyOf("a");
  unlinkSync(layerFile(p, 1));
  await assert.rejects(ExpertStore.open(p), expertError("missing_layer_file", layerFile(p, 1), 1));
});

test("a manifest or layer file from another model is refused (source identity mismatch)", async () => {
  const p = await copyOf("a");
  const other = (await basePacks()).b;
  cpSync(join(other, MANIFEST_FILE), join(p, MANIFEST_FILE));
  await assert.rejects(ExpertStore.open(p), (e: unknown) =>
    e instanceof FormatError && e.code === "identity_mismatch" && e.file === join(p, "dense.gguf") && /different models/.test(e.message));

  const q = await copyOf("a");
  cpSync(layerFile(other, 2), layerFile(q, 2));
  await assert.rejects(ExpertStore.open(q), (e: unknown) => expertError("header_mismatch", layerFile(q, 2), 2)(e) && /source fingerprint/.test((e as Error).message));
});

test("record size in a layer header that disagrees with the manifest is refused; malformed manifest fields are named", async () => {
  const p = await copyOf("a");
  const mpath = join(p, MANIFEST_FILE);
  const m = JSON.parse(readFileSync(mpath, "utf8"));
  const good = structuredClone(m);
  m.layers[0].recordBytes += 4096;
  writeFileSync(mpath, JSON.stringify(m));
  await assert.rejects(ExpertStore.open(p), (e: unknown) =>
    expertError("header_mismatch", layerFile(p, 0), 0)(e) && /record size is \d+, manifest.json says \d+/.test((e as Error).message));

  const bad = (edit: (x: typeof good) => void, field: string) => {
    const x = structuredClone(good);
    edit(x);
    writeFileSync(mpath, JSON.stringify(x));
    return assert.rejects(ExpertStore.open(p), (e: unknown) =>
      e instanceof FormatError && e.code === "bad_manifest" && e.file === mpath && e.message.includes(`field "${field}"`));
  };
  await bad((x) => (x.layers[1].parts[2].offset = -64), "layers[1].parts[2].offset");
  // Moved into the record's padding: the record's bytes still checksum, only the layout betrays it.
  await bad((x) => ((x.layers[1].recordBytes += 4096), (x.layers[1].parts[2].offset += 64)), "layers[1].parts[2].offset");
  await bad((x) => x.layers[2].crc32c.pop(), "layers[2].crc32c");
  await bad((x) => (x.layers[0].parts[0].byteLength += 1), "layers[0].parts[0].byteLength");
  await bad((x) => (x.layers[3].file = "../../etc/passwd"), "layers[3].file");
  await bad((x) => delete x.dense, "dense");
  writeFileSync(mpath, "{ not json");
  await assert.rejects(ExpertStore.open(p), (e: unknown) => e instanceof FormatError && e.code === "bad_manifest" && e.file === mpath);
});

for (const kind of ["packed", "gguf"] as const) {
  test(`${kind}: an I/O error mid-read propagates, naming file, layer and expert; the cache keeps no half-filled slot`, async () => {
    const { a, src } = await basePacks();
    const fault = { armed: false, failOnRead: 3 };
    const openFile = faultyOpen(fault);
    const reader: ExpertReader = kind === "packed" ? await ExpertStore.open(a, { openFile, verify: true }) : await GGUFExpertReader.open(src, expertLayout, { openFile });
    const clean: ExpertReader = kind === "packed" ? await ExpertStore.open(a) : await GGUFExpertReader.open(src, expertLayout);
    const file = kind === "packed" ? layerFile(a, 1) : src;
    try {
      const slot = reader.recordBytes(0);
      const s = new StreamingExperts(reader, new ScalarBackend(), { budgetBytes: 8 * slot, minExperts: 4 });
      const ids = [0, 3, 6, 9];
      const w = await s.acquire(0, ids);
      s.release(0, ids);
      fault.armed = true;
      await assert.rejects(s.acquire(1, [2, 4, 7, 8]), (e: unknown) =>
        e instanceof ExpertError && e.code === "io_error" && e.file === file && e.layer === 1 && [2, 4, 7, 8].includes(e.expert!) &&
        e.message.includes(file) && /EIO/.test(e.message) && (e.cause as { code?: string }).code === "EIO");
      assert.equal(s.pinned(), 0, "the failed acquire unpinned everything");
      assert.equal(s.cached(1).length, 3, "the failed expert's slot was not kept");
      fault.armed = false;

      // Everything the cache still holds is whole: compare against a clean read.
      const check = async (layer: number, got: Awaited<ReturnType<typeof s.acquire>>, ids: number[]) => {
        const rec = new Uint8Array(clean.recordBytes(layer));
        for (const [i, e] of ids.entries()) {
          await clean.readExpert(layer, e, rec);
          for (const p of clean.parts(layer)) assert.deepEqual(bytesOf(got[i][p.name]), rec.subarray(p.offset, p.offset + p.byteLength), `layer ${layer} expert ${e} ${p.name}`);
        }
      };
      const misses = s.stats.misses;
      const again = await s.acquire(1, [2, 4, 7, 8]);
      assert.equal(s.stats.misses, misses + 1, "only the failed expert is read again");
      await check(1, again, [2, 4, 7, 8]);
      s.release(1, [2, 4, 7, 8]);
      await check(0, w, ids);
    } finally {
      await Promise.all([reader.close(), clean.close()]);
    }
  });
}

test("an ExpertReader that throws on its nth read: the forward pass rejects with it, no slot stays pinned or half-filled, the next forward is exact", async () => {
  const { a } = await basePacks();
  const store = await ExpertStore.open(a);
  let n = 0;
  let failOn = 7;
  const failing: ExpertReader = {
    layers: store.layers, expertCount: (l) => store.expertCount(l), recordBytes: (l) => store.recordBytes(l), parts: (l) => store.parts(l), close: () => store.close(),
    readExpert: async (l, e, dst) => {
      if (++n === failOn) {
        dst.fill(0xab, 0, 1000); // a partial write before failing
        throw new ExpertError("io_error", "injected", 0, { layer: l, expert: e }, "injected failure");
      }
      return store.readExpert(l, e, dst);
    },
  };
  try {
    const budget = { budgetBytes: 16 * store.recordBytes(0), minExperts: 4 };
    let s!: StreamingExperts;
    const m = await buildModel(join(a, "dense.gguf"), (be) => (s = new StreamingExperts(failing, be, budget)));
    await assert.rejects(runLogits(m, [9707], "steps"), (e: unknown) => e instanceof ExpertError && e.file === "injected" && e.layer === 1);
    assert.equal(s.pinned(), 0);
    assert.deepEqual([s.cached(0).length, s.cached(1).length], [4, 3], "layer 1's other reads completed; the failed expert's slot was dropped");
    const clean = await buildModel(join(a, "dense.gguf"), (be) => new StreamingExperts(store, be, budget));
    failOn = -1;
    assert.deepEqual(await runLogits(m, [9707, 11], "steps"), await runLogits(clean, [9707, 11], "steps"));
  } finally {
    await failing.close();
  }
});

test("short reads are continued; reads that return nothing are retried a bounded number of times", async () => {
  const { a } = await basePacks();
  const read = async (fault: Parameters<typeof faultyOpen>[0]) => {
    const store = await ExpertStore.open(a, { openFile: faultyOpen(fault), verify: true });
    try {
      fault.armed = true;
      await store.readExpert(0, 7, new Uint8Array(store.recordBytes(0))); // checksum verified: every piece landed in place
    } finally {
      await store.close();
    }
  };
  await read({ armed: false, maxBytes: 4096 });
  await read({ armed: false, emptyReads: MAX_READ_RETRIES });
  await assert.rejects(read({ armed: false, emptyReads: MAX_READ_RETRIES + 1 }), (e: unknown) =>
    expertError("short_read", layerFile(a, 0), 0, 7)(e) && /expected \d+ bytes, got 0/.test((e as Error).message));
});

test("a budget too small for one layer's active experts is refused, stating the need; pinned experts are never evicted", async () => {
  const { a } = await basePacks();
  const store = await ExpertStore.open(a);
  const slot = store.recordBytes(0);
  try {
    assert.throws(() => new StreamingExperts(store, new ScalarBackend(), { budgetBytes: 4 * slot - 1, minExperts: 4 }), (e: unknown) =>
      e instanceof ExpertBudgetError && e.code === "expert_budget" && e.needBytes === 4 * slot && e.message.includes(`need at least ${4 * slot} bytes`));
    const s = new StreamingExperts(store, new ScalarBackend(), { budgetBytes: 8 * slot, minExperts: 4 });
    await assert.rejects(s.acquire(0, [0, 1, 2, 3, 4, 5, 6, 7, 8]), (e: unknown) => e instanceof ExpertBudgetError && e.needBytes === 9 * slot && /layer 0 needs 9 experts/.test(e.message));
    assert.equal(s.pinned(), 0);

    const held = await s.acquire(0, [0, 1, 2, 3]); // not released
    const before = held.map((w) => bytesOf(w.down).slice());
    await s.acquire(1, [0, 1, 2, 3]);
    s.release(1, [0, 1, 2, 3]);
    await s.acquire(2, [4, 5, 6, 7]); // evicts layer 1's, never layer 0's
    s.release(2, [4, 5, 6, 7]);
    assert.deepEqual(s.cached(0), [0, 1, 2, 3]);
    assert.deepEqual(s.cached(1), []);
    assert.deepEqual(held.map((w) => bytesOf(w.down)), before);
    await s.acquire(3, [0, 1, 2, 3]);
    await assert.rejects(s.acquire(1, [9]), (e: unknown) => e instanceof ExpertBudgetError && /8 more are pinned by unreleased acquires/.test(e.message));
    s.release(0, [0, 1, 2, 3]);
    s.release(3, [0, 1, 2, 3]);
    await s.acquire(1, [9]);
  } finally {
    await store.close();
  }
});
