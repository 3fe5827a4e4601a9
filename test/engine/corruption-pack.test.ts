// Seeded corruption of a packed model: manifest fields and bytes, dense.gguf, expert record files. Each case is
// run (load and greedy generation) and verified (`verify`): the run ends in a typed error naming the damaged
// file or gives output identical to the intact pack's; verify either refuses by name or the run was identical
// ("verify passes" implies "run gives the model's output"). Runs pass no flags: record and dense-tensor
// checksums are checked by default. GGUF headers and sessions: corruption-model.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packModel, verifyPack } from "../../src/engine/pack.js";
import { DENSE_FILE, MANIFEST_FILE, RECORDS_OFFSET, layerFileName } from "../../src/experts/pack-format.js";
import { openGGUF } from "../../src/format/gguf/read.js";
import { FormatError, ModelError } from "../../src/util/errors.js";
import { mulberry32 } from "../helpers/numeric.js";
import { smallVocabModel } from "../helpers/models.js";
import { CorruptionTally, hostileUnsigned, le, runModel, withPatch, type RunOptions, type RunOutput } from "../helpers/corruption.js";

/** Runs as `run` does with no flags: every record read and every dense tensor checked against its crc32c. */
const RECORD_CHECKS: RunOptions = {};
/** Streamed runs: a cache of a few records, so experts are read during generation, not at load. */
const STREAMED: RunOptions = { ...RECORD_CHECKS, expertIo: "stream", expertCache: 2 << 20 };

const dir = mkdtempSync(join(tmpdir(), "moestream-corrupt-pack-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

let made: Promise<{ pack: string; reference: RunOutput }> | undefined;
/** One pack of the small-vocabulary tiny model, shared by the tests (each restores what it damages). */
function basePack() {
  made ??= (async () => {
    const pack = join(dir, "pack");
    await packModel(await smallVocabModel({ type: "Q8_0", seed: 3, nVocab: 1024 }), pack);
    const reference = await runModel(pack, RECORD_CHECKS);
    assert.deepEqual(await runModel(pack, STREAMED), reference, "streamed and resident runs agree");
    return { pack, reference };
  })();
  return made;
}

type Verdict = "typed" | "identical" | "failed";

/**
 * Run the damaged pack (`opts`) and verify it. The run is judged by the tally; verify must refuse with a
 * FormatError/ModelError naming one of `names`, or pass, and then the run must have been identical.
 */
async function judgePack(tally: CorruptionTally, cls: string, label: string, names: string[], pack: string, reference: RunOutput, opts: RunOptions): Promise<Verdict> {
  const verified = await verifyPack(pack).then(() => undefined, (e: unknown) => e);
  const named = verified instanceof Error && names.some((n) => verified.message.includes(n));
  if (verified !== undefined && !((verified instanceof FormatError || verified instanceof ModelError) && named)) {
    tally.failures.push(`${cls} / ${label}: verify did not refuse by name: ${verified instanceof Error ? `${verified.name}: ${verified.message}` : String(verified)}`);
  }
  const out = await tally.judge(cls, label, names, reference, () => runModel(pack, opts));
  if (verified === undefined && out === "typed") tally.failures.push(`${cls} / ${label}: verify passes, but run refuses the pack`);
  return out;
}

const report = (t: { diagnostic(s: string): void }, tally: CorruptionTally) => {
  for (const line of tally.summary()) t.diagnostic(line);
  assert.equal(tally.failures.length, 0, tally.failures.join("\n"));
};

/** Every leaf, array and object of a JSON value, with its path. */
function jsonPaths(x: unknown, path: (string | number)[] = [], out: { path: (string | number)[]; value: unknown }[] = []) {
  out.push({ path, value: x });
  if (Array.isArray(x)) x.forEach((v, i) => jsonPaths(v, [...path, i], out));
  else if (typeof x === "object" && x !== null) for (const [k, v] of Object.entries(x)) jsonPaths(v, [...path, k], out);
  return out;
}

/** One seeded edit at `path` of a copy of `root`: a hostile value, a deleted key, a reordered or shortened array. */
function editJson(root: unknown, path: (string | number)[], value: unknown, r: () => number): { json: unknown; what: string } {
  const json = structuredClone(root);
  const pick = <T,>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  if (path.length === 0) return { json: pick([[], null, 7, "x"]), what: "root replaced" };
  const parent = path.slice(0, -1).reduce((o: any, k) => o[k], json as any);
  const key = path[path.length - 1];
  const set = (v: unknown, what: string) => {
    parent[key] = v;
    return { json, what };
  };
  if (r() < 0.12) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
    return { json, what: "removed" };
  }
  if (typeof value === "number") {
    const v = pick([value + 1, value - 1, 0, -value, value * 2, value + 64, value + 4096, 2 ** 53, value + 0.5, NaN]);
    return v !== v ? set(String(value), "as a string") : set(v, `${value} -> ${v}`);
  }
  if (typeof value === "string") {
    const v = pick(["", `${value}x`, value.slice(0, -1), "../x", value.toUpperCase()]);
    return set(v, `"${value.slice(0, 20)}" -> "${v.slice(0, 20)}"`);
  }
  if (Array.isArray(value)) {
    const a = [...value];
    const how = pick(["pop", "push", "swap", "empty"]);
    if (how === "pop") a.pop();
    if (how === "push") a.push(structuredClone(a[a.length - 1]));
    if (how === "swap" && a.length > 1) [a[0], a[a.length - 1]] = [a[a.length - 1], a[0]];
    return set(how === "empty" ? [] : a, `array ${how}`);
  }
  if (typeof value === "object" && value !== null) return r() < 0.5 ? set({ ...value, extra: 1 }, "unknown key added") : set(null, "null");
  return set(null, "null");
}

test("manifest: seeded edits of its fields and bytes; 0 silent wrong outputs, verify never passes a pack run refuses", async (t) => {
  const { pack, reference } = await basePack();
  const path = join(pack, MANIFEST_FILE);
  const text = readFileSync(path, "utf8");
  const root = JSON.parse(text) as unknown;
  const paths = jsonPaths(root);
  const tally = new CorruptionTally();
  const r = mulberry32(0x19d0);
  // A checksum that disagrees with its data names the data file: either side may be the damaged one.
  const names = [path, join(pack, DENSE_FILE), join(pack, "experts")];
  try {
    for (let i = 0; i < 60; i++) {
      const { path: at, value } = paths[Math.floor(r() * paths.length)];
      const { json, what } = editJson(root, at, value, r);
      writeFileSync(path, JSON.stringify(json, null, 1));
      await judgePack(tally, "manifest field", `${at.join(".") || "(root)"}: ${what}`, names, pack, reference, i % 2 ? STREAMED : RECORD_CHECKS);
    }
    // Layer records' parts reordered or shifted inside the record: the bytes checksum fine, the layout does not.
    for (const [layer, edit] of [[1, "shift"], [2, "swap"]] as const) {
      const m = structuredClone(root) as { layers: { parts: { offset: number }[] }[] };
      const parts = m.layers[layer].parts;
      if (edit === "shift") parts[2].offset += 64;
      else [parts[0].offset, parts[1].offset] = [parts[1].offset, parts[0].offset];
      writeFileSync(path, JSON.stringify(m, null, 1));
      await judgePack(tally, "manifest field", `layers[${layer}] part offsets ${edit}`, names, pack, reference, RECORD_CHECKS);
    }
    for (let i = 0; i < 10; i++) {
      const b = Buffer.from(text);
      const at = Math.floor(r() * b.length);
      const label = i < 5 ? `byte ${at} flipped` : `cut at ${at}`;
      if (i < 5) b[at] ^= 1 << Math.floor(r() * 8);
      writeFileSync(path, i < 5 ? b : b.subarray(0, at));
      await judgePack(tally, "manifest bytes", label, names, pack, reference, RECORD_CHECKS);
    }
    // Grown to 4 GiB (sparse): refused by its size, not read whole.
    writeFileSync(path, text);
    truncateSync(path, 2 ** 32);
    await judgePack(tally, "manifest bytes", "grown to 4 GiB", names, pack, reference, RECORD_CHECKS);
  } finally {
    writeFileSync(path, text);
  }
  report(t, tally);
});

test("dense.gguf: seeded byte damage in its header, tensor data and padding; run and verify refuse by name or the run is identical", async (t) => {
  const { pack, reference } = await basePack();
  const path = join(pack, DENSE_FILE);
  const file = await openGGUF(path);
  await file.source.close();
  const size = statSync(path).size;
  const tally = new CorruptionTally();
  const r = mulberry32(0x19d1);
  for (let i = 0; i < 36; i++) {
    const inHeader = i % 3 === 0;
    const at = inHeader ? Math.floor(r() * file.dataOffset) : file.dataOffset + Math.floor(r() * (size - file.dataOffset - 16));
    const wide = r() < 0.3;
    const orig = new Uint8Array(16);
    const fd = openSync(path, "r");
    readSync(fd, orig, 0, 16, at);
    closeSync(fd);
    const bytes = wide ? orig.map((x) => x ^ 0x5a) : Uint8Array.of(orig[0] ^ (1 << Math.floor(r() * 8)));
    await withPatch(path, at, bytes, () =>
      judgePack(tally, inHeader ? "dense.gguf header" : "dense.gguf data", `${wide ? "16 bytes" : "1 bit"} at ${at}`, [path], pack, reference, i % 2 ? STREAMED : RECORD_CHECKS));
  }
  report(t, tally);
});

test("expert record files: seeded damage of layer headers, records and padding, swapped and foreign records; 0 silent wrong outputs", async (t) => {
  const { pack, reference } = await basePack();
  const m = JSON.parse(readFileSync(join(pack, MANIFEST_FILE), "utf8")) as { layers: { layer: number; experts: number; recordBytes: number }[] };
  const tally = new CorruptionTally();
  const r = mulberry32(0x19d2);
  const file = (l: number) => join(pack, layerFileName(l));
  const read = (path: string, at: number, n: number) => {
    const b = new Uint8Array(n);
    const fd = openSync(path, "r");
    readSync(fd, b, 0, n, at);
    closeSync(fd);
    return b;
  };
  const judge = (cls: string, label: string, path: string, i: number) => judgePack(tally, cls, label, [path], pack, reference, i % 2 ? STREAMED : RECORD_CHECKS);
  for (let i = 0; i < 40; i++) {
    const L = m.layers[Math.floor(r() * m.layers.length)];
    const path = file(L.layer);
    const where = r();
    // The header's fields (magic, version, layer, experts, record size, records offset, fingerprint), its unused rest, or a record.
    const at = where < 0.2 ? Math.floor(r() * 48) : where < 0.3 ? 48 + Math.floor(r() * (RECORDS_OFFSET - 48)) : RECORDS_OFFSET + Math.floor(r() * L.experts * L.recordBytes);
    const cls = where < 0.2 ? "layer header" : where < 0.3 ? "layer header (unused bytes)" : "record bytes";
    const b = read(path, at, 1);
    await withPatch(path, at, Uint8Array.of(b[0] ^ (1 << Math.floor(r() * 8))), () => judge(cls, `${layerFileName(L.layer)} byte ${at}`, path, i));
  }
  // Whole records in the wrong place: two swapped, one copied from another layer of the same record size.
  for (let i = 0; i < 6; i++) {
    const L = m.layers[i % m.layers.length];
    const path = file(L.layer);
    const [a, b] = [Math.floor(r() * L.experts), Math.floor(r() * L.experts)];
    const other = m.layers[(i + 1) % m.layers.length];
    if (i % 2 === 0 && a !== b) {
      const ra = read(path, RECORDS_OFFSET + a * L.recordBytes, L.recordBytes);
      const rb = read(path, RECORDS_OFFSET + b * L.recordBytes, L.recordBytes);
      await withPatch(path, RECORDS_OFFSET + a * L.recordBytes, rb, () =>
        withPatch(path, RECORDS_OFFSET + b * L.recordBytes, ra, () => judge("records misplaced", `${layerFileName(L.layer)} experts ${a} and ${b} swapped`, path, i)));
    } else if (other.recordBytes === L.recordBytes) {
      const rec = read(file(other.layer), RECORDS_OFFSET + a * L.recordBytes, L.recordBytes);
      await withPatch(path, RECORDS_OFFSET + a * L.recordBytes, rec, () => judge("records misplaced", `${layerFileName(L.layer)} expert ${a} from layer ${other.layer}`, path, i));
    }
  }
  // Cut short or extended.
  for (let i = 0; i < 4; i++) {
    const L = m.layers[i];
    const path = file(L.layer);
    const bytes = readFileSync(path);
    const cut = i < 3 ? Math.floor(r() * bytes.length) : bytes.length + 4096;
    try {
      if (i < 3) truncateSync(path, cut);
      else writeFileSync(path, Buffer.concat([bytes, new Uint8Array(4096)]));
      await judge("layer file size", `${layerFileName(L.layer)} ${i < 3 ? `cut at ${cut}` : "extended by 4096 bytes"}`, path, i);
    } finally {
      writeFileSync(path, bytes);
    }
  }
  // A few header values set to hostile sizes (the record size, the records offset, the expert count).
  for (const [at, width] of [[12, 4], [16, 8], [24, 8]] as const) {
    const path = file(m.layers[1].layer);
    const v = read(path, at, width).reduceRight((a, x) => (a << 8n) | BigInt(x), 0n);
    const x = hostileUnsigned(v, width, r);
    await withPatch(path, at, le(x, width), () => judge("layer header", `${layerFileName(m.layers[1].layer)} field at ${at}: ${v} -> ${x}`, path, 0));
  }
  report(t, tally);
});
