// Corrupt packs with no flags given: a bit flipped in a block scale, two records swapped, a record copied from
// another pack of the same shapes, bytes changed in a dense tensor. Each is a typed error naming the file and
// the layer, expert and offset (or the tensor), resident and streamed, through the native checksums (read and
// check in one pool trip, direct or buffered) and the JS ones; the opt-outs load what the checks refuse.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/config.js";
import { engineChecksums } from "../../src/engine/checksums.js";
import { loadModel } from "../../src/engine/load.js";
import { packModel } from "../../src/engine/pack.js";
import { DENSE_FILE, ExpertError, MANIFEST_FILE, RECORDS_OFFSET } from "../../src/experts/pack-format.js";
import { ExpertStore, type ExpertStoreOptions, type FileLike } from "../../src/experts/store.js";
import { openGGUF } from "../../src/format/gguf/read.js";
import { StreamingExperts } from "../../src/experts/streaming-source.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { jsChecksums, type Checksums } from "../../src/util/crc32c.js";
import { FormatError } from "../../src/util/errors.js";
import { testModel } from "../helpers/models.js";
import { needNative } from "../helpers/parity.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "moestream.cjs");
const dir = mkdtempSync(join(tmpdir(), "moestream-integrity-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Two packs of same-shaped models (seeds 3 and 11), made once; each case works on a copy of the first. */
const packs = (async () => {
  await packModel(await testModel({ type: "Q8_0", seed: 3 }), join(dir, "a"));
  await packModel(await testModel({ type: "Q8_0", seed: 11 }), join(dir, "b"));
  return { a: join(dir, "a"), b: join(dir, "b") };
})();
let copies = 0;
async function copyOfA(): Promise<string> {
  const p = join(dir, `copy${copies++}`);
  cpSync((await packs).a, p, { recursive: true });
  return p;
}
const layerFile = (pack: string, layer: number) => join(pack, "experts", `layer_${String(layer).padStart(3, "0")}.bin`);
const LAYER = 1;
const N_EXPERT = 16; // the tiny preset's

/** Record e of a layer file's bytes (R bytes each after the header page). */
const record = (file: Uint8Array, R: number, e: number) => file.subarray(RECORDS_OFFSET + e * R, RECORDS_OFFSET + (e + 1) * R);

/** Every way of corrupting every expert of LAYER, so that any token (streamed) and the preload (resident) meet one. */
const CORRUPTIONS: Record<string, (file: Uint8Array, R: number, other: Uint8Array) => void> = {
  // Bit 2 of the high byte of the first Q8_0 block's f16 scale (the gate's first block): the scale's exponent.
  "one bit of a block scale": (f, R) => {
    for (let e = 0; e < N_EXPERT; e++) record(f, R, e)[1] ^= 0x04;
  },
  "records swapped in pairs": (f, R) => {
    for (let e = 0; e < N_EXPERT; e += 2) {
      const a = record(f, R, e).slice();
      record(f, R, e).set(record(f, R, e + 1));
      record(f, R, e + 1).set(a);
    }
  },
  "records of another pack (same shapes)": (f, R, other) => {
    for (let e = 0; e < N_EXPERT; e++) record(f, R, e).set(record(other, R, e));
  },
};

async function corruptedPack(kind: string): Promise<{ pack: string; file: string; R: number }> {
  const pack = await copyOfA();
  const store = await ExpertStore.open(pack);
  const R = store.recordBytes(LAYER);
  await store.close();
  const file = layerFile(pack, LAYER);
  const bytes = new Uint8Array(readFileSync(file));
  CORRUPTIONS[kind](bytes, R, new Uint8Array(readFileSync(layerFile((await packs).b, LAYER))));
  writeFileSync(file, bytes);
  return { pack, file, R };
}

/** The typed error of a bad record: ExpertError naming the file, LAYER, an expert, and its record's offset. */
function badRecord(file: string, R: number, expert?: number) {
  return (e: unknown) => {
    assert.ok(e instanceof ExpertError, `expected ExpertError, got ${String(e)}`);
    assert.equal(e.code, "checksum_mismatch", e.message);
    assert.equal(e.file, file);
    assert.equal(e.layer, LAYER);
    if (expert !== undefined) assert.equal(e.expert, expert);
    assert.equal(e.offset, RECORDS_OFFSET + e.expert! * R);
    assert.ok(e.message.includes(file) && e.message.includes(`layer ${LAYER}, expert ${e.expert}`) && e.message.includes(`byte offset ${e.offset}`), e.message);
    return true;
  };
}

/** Opens without a descriptor: the store reads through FileLike.read and checksums afterwards. */
const noFd = async (path: string): Promise<FileLike> => {
  const fh = await open(path, "r");
  return { read: (b, o, l, p) => fh.read(b, o, l, p), stat: () => fh.stat(), close: () => fh.close() };
};

for (const kind of Object.keys(CORRUPTIONS)) {
  test(`${kind}: refused on every read path with no flags, naming file, layer, expert and offset`, async () => {
    needNative();
    const { pack, file, R } = await corruptedPack(kind);
    const readers: [string, ExpertStoreOptions][] = [
      ["native, O_DIRECT", { checksums: engineChecksums() }],
      ["native, buffered", { checksums: engineChecksums(), direct: false }],
      ["JS", { checksums: jsChecksums }],
      ["no descriptor", { checksums: engineChecksums(), openFile: noFd }],
    ];
    for (const [name, opts] of readers) {
      const store = await ExpertStore.open(pack, opts);
      try {
        const raw = new Uint8Array(R + 8192);
        const at = await store.alignOffset(raw); // where O_DIRECT reads work (0 without it)
        const buf = raw.subarray(at, at + R);
        for (const e of [0, 5, 15]) await assert.rejects(store.readExpert(LAYER, e, buf), badRecord(file, R, e), `${name}: expert ${e}`);
        await store.readExpert(LAYER + 1, 5, buf); // other layers are intact
        await store.readExpert(LAYER, 5, buf, false); // an unverified read passes the bad bytes
        if (name === "native, O_DIRECT" && store.direct) assert.deepEqual([store.stats.direct, store.stats.buffered], [5, 0], "every read direct");
      } finally {
        await store.close();
      }
    }
  });
}

test("resident and streamed loads refuse corrupt records with no flags; --verify-experts off runs them", async () => {
  const { pack, file, R } = await corruptedPack("one bit of a block scale");
  const run = async (cfg: Partial<EngineConfig>) => {
    const lm = await loadModel(pack, defaultEngineConfig({ ctxSize: 32, ...cfg }));
    try {
      const kv = lm.model.makeCache(32);
      try {
        return await lm.model.forward(Int32Array.from(lm.tokenizer.encode("Hello there")), kv, { logits: "last" });
      } finally {
        kv.free();
      }
    } finally {
      await lm.close();
    }
  };
  for (const backend of ["cpu", "wasm"] as const) {
    // Resident: the preload reads every record, so load itself fails.
    await assert.rejects(run({ backend, expertIo: "resident" }), badRecord(file, R), `${backend} resident`);
    // Streamed (a cache of 12 records, prefetch on): the first forward's read of layer 1 fails.
    await assert.rejects(run({ backend, expertIo: "stream", expertCache: 12 * R }), badRecord(file, R), `${backend} stream`);
  }
  const logits = await run({ expertIo: "resident", verifyExperts: false });
  assert.ok(logits.every(Number.isFinite));
});

/** 16 bytes in the middle of blk.1.attn_v.weight (outside the pages the identity samples) set to 0x5a. */
async function corruptDense(pack: string) {
  const densePath = join(pack, DENSE_FILE);
  const dense = await openGGUF(densePath);
  const t = dense.tensors.find((x) => x.name === "blk.1.attn_v.weight")!;
  await dense.source.close();
  const bytes = new Uint8Array(readFileSync(densePath));
  bytes.fill(0x5a, t.offset + Math.floor(t.byteLength / 2), t.offset + Math.floor(t.byteLength / 2) + 16);
  writeFileSync(densePath, bytes);
  return { densePath, t };
}

test("a dense tensor changed in dense.gguf: load names the tensor; --verify-dense off and packs without dense checksums load", async () => {
  const pack = await copyOfA();
  const { densePath, t } = await corruptDense(pack);
  for (const backend of ["cpu", "wasm"] as const) {
    await assert.rejects(loadModel(pack, defaultEngineConfig({ backend, ctxSize: 32 })), (e: unknown) =>
      e instanceof FormatError && e.code === "checksum_mismatch" && e.file === densePath && e.offset === t.offset && e.message.includes("tensor 'blk.1.attn_v.weight'"), backend);
  }
  await (await loadModel(pack, defaultEngineConfig({ ctxSize: 32, verifyDense: false }))).close();
  // A pack written before dense checksums existed: nothing to check against, it loads.
  const m = JSON.parse(readFileSync(join(pack, MANIFEST_FILE), "utf8"));
  delete m.dense.crc32c;
  writeFileSync(join(pack, MANIFEST_FILE), JSON.stringify(m));
  await (await loadModel(pack, defaultEngineConfig({ ctxSize: 32 }))).close();
});

test("run: a corrupt record and a corrupt dense tensor exit 3 with one line naming them; the opt-outs (flag and env) run", async () => {
  const { pack, file, R } = await corruptedPack("records swapped in pairs");
  const cli = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [BIN, "run", "-m", pack, "-p", "Hello", "-n", "2", "--temp", "0", ...args], { encoding: "utf8", env: { ...process.env, ...env } });
    return { code: r.status, err: r.stderr };
  };
  for (const io of ["resident", "stream"]) {
    const r = cli(["--expert-io", io, "--expert-cache", String(12 * R)]);
    assert.equal(r.code, 3, r.err);
    const line = r.err.trim().split("\n").at(-1)!;
    assert.match(line, new RegExp(`^moestream: error: ${file} at byte offset \\d+: layer ${LAYER}, expert \\d+: record crc32c 0x[0-9a-f]{8}, manifest says 0x[0-9a-f]{8}`), r.err);
  }
  assert.equal(cli(["--no-verify-experts"]).code, 0);
  assert.equal(cli(["--verify-experts", "off"]).code, 0);
  assert.equal(cli([], { MOESTREAM_VERIFY_EXPERTS: "0" }).code, 0);

  const { densePath, t } = await corruptDense(pack);
  const r = cli(["--no-verify-experts"]);
  assert.equal(r.code, 3, r.err);
  assert.match(r.err.trim().split("\n").at(-1)!, new RegExp(`^moestream: error: ${densePath} at byte offset ${t.offset}: tensor 'blk\\.1\\.attn_v\\.weight': crc32c`));
  assert.equal(cli(["--no-verify-experts", "--no-verify-dense"]).code, 0);
});

test("prefetched records are checked when used, not when read: a used corrupt one fails its acquire, a wasted one is never checksummed", async () => {
  const { pack, file, R } = await corruptedPack("one bit of a block scale"); // every expert of layer 1
  const native = engineChecksums();
  let checks = 0;
  const counting: Checksums = {
    crc32c: (b) => (checks++, native.crc32c(b)),
    preadCrc32c: (fd, b, p) => (checks++, native.preadCrc32c!(fd, b, p)),
  };
  const store = await ExpertStore.open(pack, { checksums: counting });
  const experts = new StreamingExperts(store, new ScalarBackend(), { budgetBytes: 8 * R, minExperts: 1, prefetchSlots: 4, fill: false });
  try {
    await experts.prepare();
    experts.prefetch(LAYER, [3, 4]);
    while (experts.io.pending) await new Promise((r) => setImmediate(r)); // both staged reads landed
    assert.equal(checks, 0, "speculative reads are not checked as they land");
    await assert.rejects(experts.acquire(LAYER, [3]), badRecord(file, R, 3));
    assert.equal(experts.stats.prefetched, 1, "expert 3 came from staging");
    assert.equal(checks, 1, "checked once, when taken; expert 4 (wasted) never");
    const w = await experts.acquire(LAYER + 1, [5]); // a demand read of an intact layer
    assert.equal(w.length, 1);
    experts.release(LAYER + 1, [5]);
    assert.equal(checks, 2);
  } finally {
    await experts.cancelPrefetch();
    await store.close();
  }
});
