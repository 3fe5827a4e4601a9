// Expert storage: one record per expert, read by positioned reads into caller-owned buffers, from a
// packed directory (ExpertStore) or in place from a plain GGUF (GGUFExpertReader), behind one interface.
// Reads go through libuv's thread pool, 4 threads by default: the number of reads in flight is capped by
// it, so UV_THREADPOOL_SIZE=16 (set before Node starts) lets the expert queue keep more of them going.
// Packed records are read with O_DIRECT where the file system allows it: no page-cache copy to reclaim
// (under a memory cap the page cache is charged too, and an expert would be held twice), one DMA per record.
import { constants as fsc } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { FileSource } from "../format/gguf/byte-source.js";
import { readGGUF } from "../format/gguf/read.js";
import type { GGUFFile } from "../format/gguf/types.js";
import { jsChecksums, type Checksums } from "../util/crc32c.js";
import { FormatError, UsageError } from "../util/errors.js";
import {
  DENSE_FILE, ExpertError, MANIFEST_FILE, RECORDS_OFFSET, computeIdentity, decodeLayerHeader, planExpertLayers, sourceFingerprint, validateManifest,
  type ExpertPart, type ExpertTensorLayout, type FileIdentity, type PackLayer, type PackManifest, type PlannedLayer,
} from "./pack-format.js";

/** Where a model's experts come from; everything above it is the same for packed dirs and plain GGUFs. */
export interface ExpertReader {
  /** Layers that have routed experts, ascending. */
  readonly layers: readonly number[];
  expertCount(layer: number): number;
  /** Bytes of one record of `layer` (a multiple of 4096); readExpert's dst must hold at least this. */
  recordBytes(layer: number): number;
  /** Where each part (gate, up, down for qwen3moe; any named matrices or vectors) sits inside a record, in record order. */
  parts(layer: number): readonly ExpertPart[];
  /**
   * Fill dst[0, recordBytes) with expert e's record. Once the promise settles, nothing writes to dst any more.
   * `check: false` defers the reader's integrity check to checkExpert (speculative reads: most are never used).
   */
  readExpert(layer: number, e: number, dst: Uint8Array, check?: boolean): Promise<void>;
  /** The integrity check a read with `check: false` skipped, on the record now in rec (none where the reader has none). */
  checkExpert?(layer: number, e: number, rec: Uint8Array): Promise<void>;
  /**
   * Where in `buf` (at most 4096 bytes in) a buffer must start for the reader's direct I/O; absent or 0
   * when any address will do. A misaligned buffer still reads, just through the page cache.
   */
  alignOffset?(buf: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

/** The part of fs.promises.FileHandle the readers use; tests wrap it to inject faults. */
export interface FileLike {
  /** The descriptor, where there is one (fs FileHandles; -1 once closed): lets a checksumming read run natively. */
  readonly fd?: number;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}
export type OpenFile = (path: string) => Promise<FileLike>;
const openFileDefault: OpenFile = (path) => open(path, "r");

const MAX_MANIFEST_BYTES = 64 << 20;

/** A read that returns nothing before the end is retried this many times, then refused. */
export const MAX_READ_RETRIES = 3;

/** Read into dst at `position`, continuing after short reads; returns the bytes read (short only at EOF). */
async function preadAll(fh: FileLike, dst: Uint8Array, position: number): Promise<number> {
  let got = 0;
  for (let empty = 0; got < dst.byteLength && empty <= MAX_READ_RETRIES; ) {
    const n = (await fh.read(dst, got, dst.byteLength - got, position + got)).bytesRead;
    got += n;
    empty = n === 0 ? empty + 1 : 0;
  }
  return got;
}

/** Read all of dst at `position` for expert `at.expert` of `at.layer`; ExpertError naming all of it otherwise. */
export async function readFully(fh: FileLike, dst: Uint8Array, position: number, at: { file: string; layer: number; expert?: number }): Promise<void> {
  let got: number;
  try {
    got = await preadAll(fh, dst, position);
  } catch (e) {
    throw new ExpertError("io_error", at.file, position, at, `read of ${dst.byteLength} bytes failed: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  if (got < dst.byteLength) {
    throw new ExpertError("short_read", at.file, position, at, `expected ${dst.byteLength} bytes, got ${got} (${MAX_READ_RETRIES} retries returned nothing; file truncated?)`);
  }
}

/** Identity of an open file as a manifest records it. */
export async function fileIdentity(fh: FileLike, file: string, headerBytes: number): Promise<FileIdentity> {
  const { size } = await fh.stat();
  return computeIdentity((dst, pos) => preadAll(fh, dst, pos), size, Math.min(headerBytes, size), file);
}

function checkIndex(what: string, i: number, n: number, where: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new UsageError("bad_expert", `${what} ${i} out of range [0, ${n}) in ${where}`);
}

export interface ExpertStoreOptions {
  /** Check each record's crc32c on every read (default on). */
  verify?: boolean;
  /** How to checksum (default: the JS crc32c on the calling thread); the engine injects the native addon's. */
  checksums?: Checksums;
  openFile?: OpenFile;
  /** A missing layer file is not an error: its experts read as zero bytes (all-zero blocks decode to 0, so they add nothing). */
  allowMissing?: boolean;
  /** Read records with O_DIRECT where possible (default: on, unless openFile is given). */
  direct?: boolean;
}

interface OpenLayer extends PackLayer {
  path: string;
  /** null: the file is missing and allowMissing was given. */
  fh: FileLike | null;
  /** The same file opened O_DIRECT, when the file system allows it. */
  dfh?: FileLike | null;
}

const isEinval = (e: unknown) => (e as NodeJS.ErrnoException)?.code === "EINVAL";

/** Open with O_DIRECT, or null where the platform or file system refuses it. */
async function openDirect(path: string): Promise<FileLike | null> {
  if (fsc.O_DIRECT === undefined) return null;
  try {
    return await open(path, fsc.O_RDONLY | fsc.O_DIRECT);
  } catch {
    return null;
  }
}

/** What both readers know per layer, and the lookups over it. */
interface LayerRecords {
  experts: number;
  recordBytes: number;
  parts: readonly ExpertPart[];
}

abstract class RecordLayers<L extends LayerRecords> {
  readonly layers: readonly number[];
  constructor(protected readonly byLayer: Map<number, L>, private readonly where: string) {
    this.layers = [...byLayer.keys()].sort((a, b) => a - b);
  }
  protected layer(layer: number): L {
    const l = this.byLayer.get(layer);
    if (!l) throw new UsageError("bad_layer", `layer ${layer} has no experts in ${this.where} (layers: ${this.layers.join(", ")})`);
    return l;
  }
  expertCount(layer: number): number {
    return this.layer(layer).experts;
  }
  recordBytes(layer: number): number {
    return this.layer(layer).recordBytes;
  }
  parts(layer: number): readonly ExpertPart[] {
    return this.layer(layer).parts;
  }
}

/** Experts of a packed directory: one positioned read per expert. */
export class ExpertStore extends RecordLayers<OpenLayer> implements ExpertReader {
  /** Reads and bytes completed; `buffered`: reads that fell back from O_DIRECT (misaligned buffer). */
  readonly stats = { reads: 0, bytes: 0, direct: 0, buffered: 0 };
  /** Layer files that were missing (only with allowMissing): their experts are zeros. */
  readonly missing: readonly string[];
  private readonly verify: boolean;
  private readonly checksums: Checksums;
  /** Native reads in flight on raw descriptors: close() waits for them (fs FileHandles do that for their own). */
  private readonly inflight = new Set<Promise<unknown>>();

  private constructor(
    readonly dir: string,
    readonly manifest: PackManifest,
    byLayer: Map<number, OpenLayer>,
    opts: ExpertStoreOptions,
  ) {
    super(byLayer, dir);
    this.verify = opts.verify ?? true;
    this.checksums = opts.checksums ?? jsChecksums;
    this.missing = [...byLayer.values()].filter((l) => !l.fh).map((l) => l.path);
  }

  /** Open and check a pack: manifest fields, dense.gguf's identity, each layer file's header and size. */
  static async open(dir: string, opts: ExpertStoreOptions = {}): Promise<ExpertStore> {
    const openFile = opts.openFile ?? openFileDefault;
    const manifestPath = join(dir, MANIFEST_FILE);
    let text: string;
    try {
      // Bounded before it is read whole: a real manifest is kilobytes (one crc per expert).
      const st = await stat(manifestPath);
      if (!st.isFile() || st.size > MAX_MANIFEST_BYTES) {
        throw new FormatError("bad_manifest", manifestPath, undefined, st.isFile() ? `is ${st.size} bytes, more than any manifest (${MAX_MANIFEST_BYTES})` : "is not a file");
      }
      text = await readFile(manifestPath, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new FormatError("not_a_pack", manifestPath, undefined, "no manifest: not a packed model directory (or an interrupted pack)");
      throw e;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new FormatError("bad_manifest", manifestPath, undefined, `not JSON: ${(e as Error).message.replace(/\s+/g, " ")}`); // V8 quotes the text, newlines and all
    }
    const manifest = validateManifest(json, manifestPath);

    const densePath = join(dir, DENSE_FILE);
    const dense = await openOrFail(openFile, densePath, () => new FormatError("missing_file", densePath, undefined, "dense weights file is missing"));
    try {
      const id = await fileIdentity(dense, densePath, manifest.dense.headerBytes);
      const want = manifest.dense;
      if (id.size !== want.size || id.headerSha256 !== want.headerSha256 || id.sampleSha256 !== want.sampleSha256) {
        const show = (x: FileIdentity) => `${x.size} bytes, header ${x.headerSha256.slice(0, 12)}…, sample ${x.sampleSha256.slice(0, 12)}…`;
        throw new FormatError("identity_mismatch", densePath, undefined, `is ${show(id)}; ${MANIFEST_FILE} expects ${show(want)}: they come from different models (or ${DENSE_FILE} was changed)`);
      }
    } finally {
      await dense.close();
    }

    const byLayer = new Map<number, OpenLayer>();
    try {
      for (const l of manifest.layers) {
        try {
          byLayer.set(l.layer, await openLayer(dir, l, manifest, openFile));
        } catch (e) {
          if (!(opts.allowMissing && e instanceof ExpertError && e.code === "missing_layer_file")) throw e;
          byLayer.set(l.layer, { ...l, path: join(dir, l.file), fh: null });
        }
      }
    } catch (e) {
      await Promise.all([...byLayer.values()].map((l) => l.fh?.close()));
      throw e;
    }
    if (opts.direct ?? !opts.openFile) {
      for (const l of byLayer.values()) if (l.fh) l.dfh = await openDirect(l.path);
    }
    return new ExpertStore(dir, manifest, byLayer, opts);
  }

  /** True when records are read with O_DIRECT. */
  get direct(): boolean {
    return [...this.byLayer.values()].some((l) => l.dfh);
  }

  /** Find where in buf O_DIRECT reads work: probe 4 KiB reads of a layer header at 16-byte steps. */
  async alignOffset(buf: Uint8Array): Promise<number> {
    const l = [...this.byLayer.values()].find((x) => x.dfh);
    if (!l?.dfh) return 0;
    for (let at = 0; at + 4096 <= Math.min(buf.byteLength, 8192); at += 16) {
      try {
        await l.dfh.read(buf, at, 4096, 0);
        return at;
      } catch (e) {
        if (!isEinval(e)) return 0;
      }
    }
    return 0;
  }

  /** Byte offset of expert e's record in its layer file. */
  recordOffset(layer: number, e: number): number {
    return RECORDS_OFFSET + e * this.layer(layer).recordBytes;
  }

  /** `verify` (default: the store's setting) checks the record's crc32c; false skips it (checkExpert does it later). */
  async readExpert(layer: number, e: number, dst: Uint8Array, verify = this.verify): Promise<void> {
    const l = this.layer(layer);
    checkIndex("expert", e, l.experts, l.path);
    if (dst.byteLength < l.recordBytes) throw new UsageError("bad_buffer", `buffer of ${dst.byteLength} bytes is smaller than a layer ${layer} record (${l.recordBytes})`);
    const rec = dst.subarray(0, l.recordBytes);
    if (!l.fh) {
      rec.fill(0);
      return;
    }
    const at = this.recordOffset(layer, e);
    let got = 0;
    let crc: number | undefined;
    // First try: the O_DIRECT handle, or (verifying) the buffered one where the read can checksum on its own thread.
    const first = l.dfh ?? (verify && this.canFold(l.fh) ? l.fh : undefined);
    if (first) {
      try {
        ({ got, crc } = await this.readOnce(first, rec, at, verify));
        if (first === l.dfh) this.stats.direct++;
      } catch (err) {
        // EINVAL: this buffer is not aligned for O_DIRECT; read it through the page cache instead.
        if (first !== l.dfh || !isEinval(err)) throw new ExpertError("io_error", l.path, at, { layer, expert: e }, `read of ${rec.byteLength} bytes failed: ${err instanceof Error ? err.message : String(err)}`, err);
        this.stats.buffered++;
      }
    }
    // Not read yet, or short (a truncated file): the buffered path reads (or refuses) the whole record.
    if (got < rec.byteLength) {
      crc = undefined;
      await readFully(l.fh, rec, at, { file: l.path, layer, expert: e });
    }
    this.stats.reads++;
    this.stats.bytes += rec.byteLength;
    if (verify) await this.compare(layer, e, crc ?? (await this.checksums.crc32c(rec)));
  }

  /** A record read with verify false, checked now (when the store verifies at all). */
  async checkExpert(layer: number, e: number, rec: Uint8Array): Promise<void> {
    if (!this.verify) return;
    const l = this.layer(layer);
    checkIndex("expert", e, l.experts, l.path);
    if (l.fh) await this.compare(layer, e, await this.checksums.crc32c(rec.subarray(0, l.recordBytes)));
  }

  private async compare(layer: number, e: number, have: number): Promise<void> {
    const l = this.layer(layer);
    const want = l.crc32c[e];
    if (have !== want) {
      throw new ExpertError("checksum_mismatch", l.path, this.recordOffset(layer, e), { layer, expert: e }, `record crc32c ${hex(have)}, manifest says ${hex(want)} (corrupt, or a record of another pack; re-run pack)`);
    }
  }

  private canFold(fh: FileLike): boolean {
    return this.checksums.preadCrc32c !== undefined && fh.fd !== undefined && fh.fd >= 0;
  }

  /** One positioned read of rec; when checking and the checksums can, the crc32c of what it read, taken by the reading thread. */
  private async readOnce(fh: FileLike, rec: Uint8Array, at: number, check: boolean): Promise<{ got: number; crc?: number }> {
    if (!check || !this.canFold(fh)) return { got: (await fh.read(rec, 0, rec.byteLength, at)).bytesRead };
    const p = this.checksums.preadCrc32c!(fh.fd!, rec, at);
    const done = () => this.inflight.delete(p);
    this.inflight.add(p);
    p.then(done, done);
    const r = await p;
    return { got: r.bytesRead, crc: r.crc };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
    await Promise.all([...this.byLayer.values()].flatMap((l) => [l.fh?.close(), l.dfh?.close()]));
  }
}

const hex = (x: number) => `0x${x.toString(16).padStart(8, "0")}`;

async function openOrFail(openFile: OpenFile, path: string, missing: () => Error): Promise<FileLike> {
  try {
    return await openFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw missing();
    throw e;
  }
}

/** Open one layer file and check its header against the manifest and its size against its records. */
async function openLayer(dir: string, l: PackLayer, m: PackManifest, openFile: OpenFile): Promise<OpenLayer> {
  const path = join(dir, l.file);
  const fh = await openOrFail(openFile, path, () => new ExpertError("missing_layer_file", path, undefined, { layer: l.layer }, `layer file is missing (${l.experts} experts expected)`));
  try {
    const { size } = await fh.stat();
    const head = new Uint8Array(Math.min(size, 64));
    await readFully(fh, head, 0, { file: path, layer: l.layer });
    const h = decodeLayerHeader(head, path);
    const mismatch = (field: string, header: unknown, manifest: unknown) =>
      new ExpertError("header_mismatch", path, 0, { layer: l.layer }, `header ${field} is ${String(header)}, ${MANIFEST_FILE} says ${String(manifest)}`);
    if (h.version !== m.version) throw mismatch("format version", h.version, m.version);
    if (h.layer !== l.layer) throw mismatch("layer", h.layer, l.layer);
    if (h.experts !== l.experts) throw mismatch("expert count", h.experts, l.experts);
    if (h.recordBytes !== l.recordBytes) throw mismatch("record size", h.recordBytes, l.recordBytes);
    if (h.recordsOffset !== RECORDS_OFFSET) throw mismatch("records offset", h.recordsOffset, RECORDS_OFFSET);
    if (h.sourceFingerprint !== sourceFingerprint(m.source)) throw mismatch("source fingerprint", h.sourceFingerprint, sourceFingerprint(m.source));
    const need = RECORDS_OFFSET + l.experts * l.recordBytes;
    if (size < need) {
      const first = Math.floor((size - RECORDS_OFFSET) / l.recordBytes);
      throw new ExpertError("truncated", path, size, { layer: l.layer, expert: Math.max(0, first) },
        `file has ${size} bytes, ${l.experts} records of ${l.recordBytes} need ${need}: experts ${Math.max(0, first)}..${l.experts - 1} are cut off`);
    }
    return { ...l, path, fh };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Experts read in place from a plain GGUF: one positioned read per part, from its own stacked tensor, into the record layout of a pack. */
export class GGUFExpertReader extends RecordLayers<PlannedLayer & { gaps: [number, number][] }> implements ExpertReader {
  readonly stats = { reads: 0, bytes: 0 };
  private constructor(readonly path: string, private readonly fh: FileLike, planned: PlannedLayer[]) {
    super(new Map(planned.map((p) => [p.layer, { ...p, gaps: gapsOf(p) }])), path);
  }

  /** `experts` names each layer's stacked tensors (the engine derives it from the architecture). */
  /** `file`: the already parsed header of `path`, when the caller has it (saves parsing it again). */
  static async open(path: string, experts: (file: GGUFFile) => ExpertTensorLayout, opts: { openFile?: OpenFile; file?: GGUFFile } = {}): Promise<GGUFExpertReader> {
    let planned: PlannedLayer[];
    if (opts.file) planned = planExpertLayers(opts.file, experts(opts.file));
    else {
      const src = await FileSource.open(path);
      try {
        const file = await readGGUF(src);
        planned = planExpertLayers(file, experts(file));
      } finally {
        await src.close();
      }
    }
    const fh = await (opts.openFile ?? openFileDefault)(path);
    return new GGUFExpertReader(path, fh, planned);
  }

  async readExpert(layer: number, e: number, dst: Uint8Array): Promise<void> {
    const l = this.layer(layer);
    checkIndex("expert", e, l.experts, this.path);
    if (dst.byteLength < l.recordBytes) throw new UsageError("bad_buffer", `buffer of ${dst.byteLength} bytes is smaller than a layer ${layer} record (${l.recordBytes})`);
    // allSettled: a failed part must not return while its siblings still write into dst.
    const rs = await Promise.allSettled(
      l.parts.map((p, i) => readFully(this.fh, dst.subarray(p.offset, p.offset + p.byteLength), l.sources[i].offset + e * p.byteLength, { file: this.path, layer, expert: e })),
    );
    const bad = rs.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (bad) throw bad.reason;
    for (const [a, b] of l.gaps) dst.fill(0, a, b); // same bytes as a packed record, padding included
    this.stats.reads += l.parts.length;
    this.stats.bytes += l.parts.reduce((s, p) => s + p.byteLength, 0);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Byte ranges of a record not covered by any part. */
function gapsOf(p: PlannedLayer): [number, number][] {
  const gaps: [number, number][] = [];
  let at = 0;
  for (const part of p.parts) {
    if (part.offset > at) gaps.push([at, part.offset]);
    at = part.offset + part.byteLength;
  }
  if (at < p.recordBytes) gaps.push([at, p.recordBytes]);
  return gaps;
}
