// `pack`: split a GGUF into a packed directory (dense.gguf + one record file per MoE layer + manifest).
// Reads the source by positioned reads only, writes into outDir.tmp-<pid> and renames it into place at
// the end, so an interrupted pack never leaves a directory that opens as a model.
import { existsSync, statSync } from "node:fs";
import { mkdir, open, readdir, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { checkTensorLayout, openGGUF, readGGUF, readTensorBytes } from "../format/gguf/read.js";
import { FileSource } from "../format/gguf/byte-source.js";
import { metaString } from "../format/gguf/accessors.js";
import type { GGUFFile, GGUFTensorInfo } from "../format/gguf/types.js";
import { writeGGUF } from "../format/gguf/write.js";
import { crc32c, jsChecksums, type Checksums } from "../util/crc32c.js";
import { FormatError, UsageError } from "../util/errors.js";
import { processExists } from "../util/process.js";
import {
  DENSE_FILE, MANIFEST_FILE, PACK_FORMAT_NAME, PACK_FORMAT_VERSION, RECORDS_OFFSET, computeIdentity, encodeLayerHeader, layerFileName, planExpertLayers, sourceFingerprint,
  type ExpertTensorLayout, type FileIdentity, type PackLayer, type PackManifest, type PlannedLayer,
} from "./pack-format.js";
import { ExpertStore, fileIdentity } from "./store.js";

export interface PackOptions {
  /** Each layer's stacked expert tensors; the engine passes the architecture's expertTensors(hp, i) for every layer. */
  experts: (file: GGUFFile) => ExpertTensorLayout;
  /** Tensors the model never reads (an MTP block): left out of dense.gguf. */
  unused?: (file: GGUFFile) => ReadonlySet<string>;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Re-read every record and check its crc32c before the directory is renamed into place. */
  verify?: boolean;
  /** When outDir exists: false (default) refuses; true swaps the new pack in by two renames, then deletes the old one. */
  overwrite?: boolean;
}

export interface PackResult {
  dir: string;
  manifest: PackManifest;
  denseBytes: number;
  expertBytes: number;
}

/** Records are written in batches of about this many bytes: few large writes, bounded memory. */
const BATCH_BYTES = 16 << 20;

export async function packModel(srcGguf: string, outDirArg: string, opts: PackOptions): Promise<PackResult> {
  const outDir = outDirArg.replace(/(?<=.)[\\/]+$/, ""); // "out/" is "out"; "/" stays "/"
  if (existsSync(outDir)) {
    if (!opts.overwrite) throw new UsageError("pack_exists", `${outDir} already exists (pack refuses to replace it unless told to overwrite)`);
    // --overwrite replaces a pack, never anything else that happens to sit there.
    if (!statSync(outDir).isDirectory() || !existsSync(join(outDir, MANIFEST_FILE))) {
      throw new UsageError("pack_exists", `${outDir} exists and is not a moestream pack (no ${MANIFEST_FILE}); --overwrite only replaces a pack, so it was left alone`);
    }
  }
  await removeStaleTemps(outDir);
  // The source opens first: a file that cannot be read leaves no temp directory behind.
  const file = await openGGUF(srcGguf);
  const tmp = `${outDir}.tmp-${process.pid}`;
  try {
    await rm(tmp, { recursive: true, force: true });
    await mkdir(join(tmp, "experts"), { recursive: true });
  } catch (e) {
    await file.source.close();
    throw e;
  }

  let result: PackResult;
  try {
    checkTensorLayout(file); // a tensor whose type disagrees with its bytes would be sliced into wrong records
    const planned = planExpertLayers(file, opts.experts(file));
    const expertNames = new Set(planned.flatMap((p) => p.sources.map((t) => t.name)));
    const unused = opts.unused?.(file) ?? new Set<string>();
    const dense = file.tensors.filter((t) => !expertNames.has(t.name) && !unused.has(t.name));
    const denseBytes = dense.reduce((s, t) => s + t.byteLength, 0);
    const expertBytes = planned.reduce((s, p) => s + p.sources.reduce((a, t) => a + t.byteLength, 0), 0);
    let done = 0;
    const progress = (n: number) => opts.onProgress?.((done += n), denseBytes + expertBytes);

    const source = { file: basename(srcGguf), ...(await sourceIdentityOf(file)) };
    // Every dense tensor's checksum, so verify catches a change anywhere in dense.gguf (the identity samples pages).
    const denseCrcs: Record<string, number> = {};
    const densePath = join(tmp, DENSE_FILE);
    const layout = await writeGGUF(densePath, {
      version: file.version,
      alignment: file.alignment,
      metadata: file.metadata,
      tensors: dense.map((t) => ({
        name: t.name, shape: t.shape, type: t.type,
        data: async () => {
          const b = await readTensorBytes(file, t);
          denseCrcs[t.name] = crc32c(b);
          progress(b.byteLength);
          return b;
        },
      })),
    });
    const dfh = await open(densePath, "r");
    let denseId: FileIdentity;
    try {
      denseId = await fileIdentity(dfh, densePath, layout.dataOffset);
    } finally {
      await dfh.close();
    }

    const layers: PackLayer[] = [];
    for (const p of planned) {
      const crcs = await packLayer(file, p, join(tmp, layerFileName(p.layer)), sourceFingerprint(source), progress);
      layers.push({ layer: p.layer, file: layerFileName(p.layer), experts: p.experts, recordBytes: p.recordBytes, parts: p.parts, crc32c: crcs });
    }
    const manifest: PackManifest = {
      format: PACK_FORMAT_NAME, version: PACK_FORMAT_VERSION, source, dense: { file: DENSE_FILE, ...denseId, crc32c: denseCrcs },
      architecture: metaString(file, "general.architecture", { default: "unknown" }), layers,
    };
    // Written last: a directory without a manifest is never taken for a pack.
    await writeSynced(join(tmp, MANIFEST_FILE), new TextEncoder().encode(JSON.stringify(manifest, null, 1) + "\n"));
    if (opts.verify) await verifyPack(tmp);
    result = { dir: outDir, manifest, denseBytes, expertBytes };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    await file.source.close();
  }
  await install(tmp, outDir, opts.overwrite ?? false);
  return result;
}

/** Re-read every record of a pack and check its crc32c; throws ExpertError naming the first bad one. */
export async function verifyPack(dir: string, checksums: Checksums = jsChecksums): Promise<{ records: number; bytes: number }> {
  const store = await ExpertStore.open(dir, { checksums });
  try {
    const dense = await openGGUF(join(dir, DENSE_FILE)); // parses: dense.gguf is a well-formed GGUF
    try {
      await checkDenseCrcs(dense, store.manifest.dense.crc32c, checksums);
    } finally {
      await dense.source.close();
    }
    let records = 0;
    for (const layer of store.layers) {
      const buf = new Uint8Array(store.recordBytes(layer));
      for (let e = 0; e < store.expertCount(layer); e++, records++) await store.readExpert(layer, e, buf, true);
    }
    return { records, bytes: store.stats.bytes };
  } finally {
    await store.close();
  }
}

/** Each dense tensor against the manifest's checksum (packs that predate them are read through). */
async function checkDenseCrcs(dense: GGUFFile, crcs: Record<string, number> | undefined, checksums: Checksums): Promise<void> {
  if (!crcs) return;
  const where = dense.source.name;
  const names = new Set(dense.tensors.map((t) => t.name));
  const unlisted = Object.keys(crcs).find((n) => !names.has(n));
  if (unlisted) throw new FormatError("checksum_mismatch", where, undefined, `the manifest has a checksum for tensor '${unlisted}', which dense.gguf lacks`);
  for (const t of dense.tensors) await checkDenseTensor(where, t, await readTensorBytes(dense, t), crcs, checksums);
}

/** Tensor t of dense.gguf (`where`), its bytes in memory, against the manifest's crc32c: a FormatError naming it when they differ. */
export async function checkDenseTensor(where: string, t: GGUFTensorInfo, bytes: Uint8Array, crcs: Record<string, number>, checksums: Checksums = jsChecksums): Promise<void> {
  const want = crcs[t.name];
  if (want === undefined) throw new FormatError("checksum_mismatch", where, undefined, `tensor '${t.name}' has no checksum in the manifest (not written by this pack)`);
  const got = (await checksums.crc32c(bytes)) >>> 0;
  if (got !== want) throw new FormatError("checksum_mismatch", where, t.offset, `tensor '${t.name}': crc32c ${got.toString(16)}, the manifest says ${want.toString(16)} (corrupt)`);
}

/** Identity of a GGUF as a manifest records it: size and sha256 of the bytes before its tensor data. */
export async function sourceIdentity(path: string): Promise<FileIdentity> {
  const src = await FileSource.open(path);
  try {
    return await sourceIdentityOf(await readGGUF(src));
  } finally {
    await src.close();
  }
}

function sourceIdentityOf(file: GGUFFile): Promise<FileIdentity> {
  const read = async (dst: Uint8Array, at: number) => (await file.source.read(at, dst.byteLength, dst)).byteLength;
  return computeIdentity(read, file.source.size, file.dataOffset, file.source.name);
}

async function readExact(file: GGUFFile, offset: number, length: number, what: string, dst?: Uint8Array): Promise<Uint8Array> {
  const out = await file.source.read(offset, length, dst);
  if (out.byteLength !== length) throw new FormatError("truncated", file.source.name, offset, `${what}: got ${out.byteLength} of ${length} bytes`);
  return out;
}

/** Write a layer file: header page, then each expert's record (its parts in order); returns the records' crc32c. */
async function packLayer(file: GGUFFile, p: PlannedLayer, path: string, fingerprint: string, progress: (n: number) => void): Promise<number[]> {
  const R = p.recordBytes;
  const batch = Math.max(1, Math.min(p.experts, Math.floor(BATCH_BYTES / R)));
  const buf = new Uint8Array(batch * R);
  const crcs: number[] = [];
  const fh = await open(path, "w");
  try {
    await writeAll(fh, encodeLayerHeader({ layer: p.layer, experts: p.experts, recordBytes: R, sourceFingerprint: fingerprint }), 0);
    for (let e0 = 0; e0 < p.experts; e0 += batch) {
      const n = Math.min(batch, p.experts - e0);
      buf.fill(0); // padding between parts and at the end of each record is zeros
      // Expert e of a stacked [..., nExpert] tensor is its e-th contiguous slice of byteLength bytes.
      await Promise.all(
        Array.from({ length: n }, (_, j) => p.parts.map((part, i) => {
          const at = j * R + part.offset;
          const src = p.sources[i].offset + (e0 + j) * part.byteLength;
          return readExact(file, src, part.byteLength, `tensor "${part.tensor}" expert ${e0 + j}`, buf.subarray(at, at + part.byteLength));
        })).flat(),
      );
      for (let j = 0; j < n; j++) crcs.push(crc32c(buf.subarray(j * R, (j + 1) * R)));
      await writeAll(fh, buf.subarray(0, n * R), RECORDS_OFFSET + e0 * R);
      progress(n * p.parts.reduce((s, x) => s + x.byteLength, 0));
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return crcs;
}

async function writeAll(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let off = 0; off < data.byteLength; ) {
    const { bytesWritten } = await fh.write(data, off, Math.min(data.byteLength - off, 1 << 30), position + off);
    off += bytesWritten;
  }
}

async function writeSynced(path: string, data: Uint8Array): Promise<void> {
  const fh = await open(path, "w");
  try {
    await writeAll(fh, data, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Move the finished pack into place. Replacing is two renames: outDir is briefly absent, never half-written. */
async function install(tmp: string, outDir: string, overwrite: boolean): Promise<void> {
  try {
    if (!existsSync(outDir)) return await rename(tmp, outDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST") {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  if (!overwrite) {
    await rm(tmp, { recursive: true, force: true });
    throw new UsageError("pack_exists", `${outDir} appeared while packing; not replaced`);
  }
  const old = `${outDir}.old-${process.pid}`;
  await rename(outDir, old);
  await rename(tmp, outDir);
  await rm(old, { recursive: true, force: true });
}

/** Remove outDir.tmp-<pid> / outDir.old-<pid> left by packs whose process is gone. */
async function removeStaleTemps(outDir: string): Promise<void> {
  const base = basename(outDir);
  let names: string[];
  try {
    names = await readdir(dirname(outDir));
  } catch {
    return;
  }
  for (const n of names) {
    const m = n.startsWith(base + ".") ? /^\.(?:tmp|old)-(\d+)$/.exec(n.slice(base.length)) : null;
    if (m && !alive(Number(m[1]))) await rm(join(dirname(outDir), n), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  return pid !== process.pid && processExists(pid); // ours can only be from an earlier, failed call
}
