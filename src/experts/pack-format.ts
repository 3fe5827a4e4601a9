// The packed model directory: dense.gguf (every non-expert tensor, all metadata), experts/layer_NNN.bin
// (one 4 KiB-aligned record per expert, so one expert is one positioned read) and manifest.json.
import { createHash } from "node:crypto";
import { getTensor } from "../format/gguf/accessors.js";
import { ggmlTypeInfo, ggmlTypeName, tensorByteLength } from "../format/gguf/ggml-types.js";
import { alignUp } from "../format/gguf/read.js";
import type { GGUFFile, GGUFTensorInfo } from "../format/gguf/types.js";
import { FormatError, ModelError } from "../util/errors.js";

/**
 * Version 2 (written): free part names, parts of rank 1 or 2. Version 1 (still read): exactly the 2-D
 * parts gate, up, down; its files are otherwise byte-identical, so one reader serves both.
 */
export const PACK_FORMAT_VERSION = 2;
/** Versions this build reads, manifest and layer header alike. */
export const PACK_READ_VERSIONS: readonly number[] = [1, 2];
export const PACK_FORMAT_NAME = "moestream-experts";
export const MANIFEST_FILE = "manifest.json";
export const DENSE_FILE = "dense.gguf";
/** Records start and are sized in whole pages, so reads can later go O_DIRECT. */
export const RECORD_ALIGN = 4096;
/** Parts start on 64 bytes inside a record: cache lines for SIMD, and more than WebGPU's 4-byte copy alignment. */
export const PART_ALIGN = 64;
/** The layer header occupies the first page; records follow. */
export const RECORDS_OFFSET = RECORD_ALIGN;
const LAYER_MAGIC = [0x4d, 0x53, 0x45, 0x58]; // "MSEX"
const HEADER_USED_BYTES = 48;

/** The parts of every version 1 record, in this order (qwen3moe's). */
export const V1_PART_NAMES: readonly string[] = ["gate", "up", "down"];
/** Part names are identifiers: they key ExpertWeights and show in file and error text. */
export const PART_NAME_RE = /^[a-z][a-z0-9_]*$/;

/** One tensor of an expert record: a matrix (gate, up, down; a fused gate_up) or a vector (a bias). */
export interface ExpertPart {
  name: string;
  /** The stacked source tensor it was sliced from ("blk.3.ffn_up_exps.weight"). */
  tensor: string;
  /** ggml type id. */
  type: number;
  /** ggml order: [K, N] (N rows of K) or [N] (one vector). */
  shape: number[];
  /** Byte offset inside the record. */
  offset: number;
  byteLength: number;
  /** A fused matrix (gate_up): its rows are these parts' rows back to back, each handed out as a view of its rows. */
  split?: ExpertSplit;
}

/** The parts a fused part's rows hold, in row order. */
export type ExpertSplit = readonly { name: string; rows: number }[];

/**
 * An architecture's stacked expert tensors of one layer (structurally, models' expertTensors(hp, i)), by
 * part name; declaration order is record order.
 */
export type ExpertLayerTensors = Readonly<Record<string, { name: string; shape?: readonly number[]; split?: ExpertSplit }>>;
/** Indexed by layer; undefined/null for a layer without routed experts. */
export type ExpertTensorLayout = ReadonlyArray<ExpertLayerTensors | null | undefined>;

/** Identifies a file cheaply: size, sha256 of its header bytes [0, headerBytes), and a sampled content hash. */
export interface FileIdentity {
  size: number;
  headerBytes: number;
  headerSha256: string;
  /** sha256 of the header followed by IDENTITY_SAMPLES pages spread evenly over the data: tells apart models whose headers are equal. */
  sampleSha256: string;
}

const IDENTITY_SAMPLES = 64;
const SAMPLE_BYTES = 4096;

/** Positioned read into dst; returns the bytes read (fewer only at end of file). */
export type PositionedRead = (dst: Uint8Array, position: number) => Promise<number>;

export async function computeIdentity(read: PositionedRead, size: number, headerBytes: number, file: string): Promise<FileIdentity> {
  const header = createHash("sha256");
  const sample = createHash("sha256");
  const buf = new Uint8Array(Math.max(SAMPLE_BYTES, Math.min(headerBytes, 4 << 20)));
  const take = async (at: number, n: number): Promise<Uint8Array> => {
    const got = await read(buf.subarray(0, n), at);
    if (got < n) throw new FormatError("truncated", file, at + got, `identity read of ${n} bytes at ${at} got ${got}; file has ${size} bytes`);
    return buf.subarray(0, n);
  };
  for (let at = 0; at < headerBytes; at += buf.byteLength) {
    const part = await take(at, Math.min(buf.byteLength, headerBytes - at));
    header.update(part);
    sample.update(part);
  }
  const span = size - headerBytes;
  for (let i = 0; i < IDENTITY_SAMPLES && span > 0; i++) {
    const at = headerBytes + Math.floor((i * Math.max(0, span - SAMPLE_BYTES)) / (IDENTITY_SAMPLES - 1));
    sample.update(await take(at, Math.min(SAMPLE_BYTES, size - at)));
  }
  return { size, headerBytes, headerSha256: header.digest("hex"), sampleSha256: sample.digest("hex") };
}

/** Ties a layer file to the model it was packed from (16 bytes, hex). */
export function sourceFingerprint(source: FileIdentity): string {
  return source.sampleSha256.slice(0, 32);
}

export interface PackLayer {
  layer: number;
  /** Relative to the pack directory: experts/layer_NNN.bin. */
  file: string;
  experts: number;
  recordBytes: number;
  parts: ExpertPart[];
  /** crc32c of each expert's whole record, padding included. */
  crc32c: number[];
}

export interface PackManifest {
  format: typeof PACK_FORMAT_NAME;
  version: number;
  /** The GGUF this was packed from (file is its base name, informational only). */
  source: FileIdentity & { file: string };
  /** `crc32c`: every dense tensor's checksum by name (packs written before it have none). */
  dense: FileIdentity & { file: typeof DENSE_FILE; crc32c?: Record<string, number> };
  architecture: string;
  layers: PackLayer[];
}

export interface LayerHeader {
  version: number;
  layer: number;
  experts: number;
  recordBytes: number;
  recordsOffset: number;
  /** First 16 bytes of the source header's sha256, hex: ties a layer file to its model. */
  sourceFingerprint: string;
}

/** A read or check of one layer file failed; names the file, the layer and (when known) the expert. */
export class ExpertError extends FormatError {
  readonly layer: number;
  readonly expert: number | undefined;
  constructor(code: string, file: string, offset: number | undefined, at: { layer: number; expert?: number }, detail: string, cause?: unknown) {
    super(code, file, offset, `layer ${at.layer}${at.expert === undefined ? "" : `, expert ${at.expert}`}: ${detail}`);
    this.layer = at.layer;
    this.expert = at.expert;
    if (cause !== undefined) this.cause = cause;
  }
}

export function layerFileName(layer: number): string {
  return `experts/layer_${String(layer).padStart(3, "0")}.bin`;
}

/** Parts laid out back to back at PART_ALIGN; the record is padded to RECORD_ALIGN. */
export function recordLayout(parts: ReadonlyArray<Omit<ExpertPart, "offset" | "byteLength">>): { parts: ExpertPart[]; recordBytes: number } {
  let at = 0;
  const out = parts.map((p) => {
    const offset = alignUp(at, PART_ALIGN);
    const byteLength = tensorByteLength(p.type, p.shape);
    at = offset + byteLength;
    return { ...p, shape: [...p.shape], offset, byteLength, ...(p.split ? { split: p.split.map((x) => ({ ...x })) } : {}) };
  });
  return { parts: out, recordBytes: Math.max(RECORD_ALIGN, alignUp(at, RECORD_ALIGN)) };
}

/** A layer of a GGUF's stacked expert tensors, planned as records. */
export interface PlannedLayer {
  layer: number;
  experts: number;
  recordBytes: number;
  parts: ExpertPart[];
  /** The stacked tensors, in part order; expert e's bytes are the e-th contiguous slice. */
  sources: GGUFTensorInfo[];
}

/**
 * Find and check each layer's stacked tensors: the LAST dim is the expert count, so [K, N, nExpert] gives
 * 2-D parts and [N, nExpert] (a per-expert bias) 1-D parts. ModelError naming the tensor otherwise.
 */
export function planExpertLayers(file: GGUFFile, layout: ExpertTensorLayout): PlannedLayer[] {
  const out: PlannedLayer[] = [];
  const where = file.source.name;
  layout.forEach((spec, layer) => {
    if (!spec) return;
    const names = Object.keys(spec);
    if (names.length === 0) throw new ModelError("bad_layout", `${where}: layer ${layer} declares expert tensors but no parts`);
    const bad = names.find((n) => !PART_NAME_RE.test(n));
    if (bad !== undefined) throw new ModelError("bad_layout", `${where}: layer ${layer} part name ${JSON.stringify(bad)} is not ${PART_NAME_RE}`);
    const sources = names.map((n) => getTensor(file, spec[n].name));
    for (const [i, t] of sources.entries()) {
      const want = spec[names[i]].shape;
      if (want && (want.length !== t.shape.length || want.some((d, j) => d !== t.shape[j]))) {
        throw new ModelError("bad_shape", `${where}: tensor '${t.name}' has shape [${t.shape.join(", ")}], expected [${want.join(", ")}]`);
      }
      if (t.shape.length !== 2 && t.shape.length !== 3) {
        throw new ModelError("bad_shape", `${where}: stacked expert tensor '${t.name}' has shape [${t.shape.join(", ")}], expected [K, N, nExpert] or [N, nExpert]`);
      }
    }
    const nExp = (t: GGUFTensorInfo) => t.shape[t.shape.length - 1];
    const experts = nExp(sources[0]);
    const odd = sources.find((t) => nExp(t) !== experts);
    if (odd) throw new ModelError("bad_shape", `${where}: tensor '${odd.name}' has ${nExp(odd)} experts, '${sources[0].name}' has ${experts} (layer ${layer})`);
    if (experts < 1) throw new ModelError("bad_shape", `${where}: tensor '${sources[0].name}' has no experts`);
    const split = (i: number) => spec[names[i]].split;
    for (const [i, t] of sources.entries()) {
      const s = split(i);
      if (s) checkSplit(s, t.shape.slice(0, -1), names, (detail) => new ModelError("bad_layout", `${where}: layer ${layer} fused part '${names[i]}' (${t.name}): ${detail}`));
    }
    const { parts, recordBytes } = recordLayout(sources.map((t, i) => ({ name: names[i], tensor: t.name, type: t.type, shape: t.shape.slice(0, -1), ...(split(i) ? { split: split(i) } : {}) })));
    out.push({ layer, experts, recordBytes, parts, sources });
  });
  if (out.length === 0) throw new ModelError("no_experts", `${where}: the architecture declares no expert tensors`);
  return out;
}

/** A split of a part of `shape` ([K, N]) whose row counts sum to N, into names distinct from each other and from the record's parts. */
function checkSplit(split: ExpertSplit, shape: readonly number[], partNames: readonly string[], fail: (detail: string) => Error): void {
  if (shape.length !== 2) throw fail(`only a matrix [K, N] can be split, shape is [${shape.join(", ")}]`);
  if (split.length < 2) throw fail(`a split needs at least 2 parts, found ${split.length}`);
  const seen = new Set(partNames);
  let rows = 0;
  for (const s of split) {
    if (!PART_NAME_RE.test(s.name)) throw fail(`split part name ${JSON.stringify(s.name)} is not ${PART_NAME_RE}`);
    if (seen.has(s.name)) throw fail(`split part name "${s.name}" is used twice`);
    seen.add(s.name);
    if (!Number.isSafeInteger(s.rows) || s.rows < 1) throw fail(`split part "${s.name}" has ${s.rows} rows`);
    rows += s.rows;
  }
  if (rows !== shape[1]) throw fail(`split rows sum to ${rows}, the part has ${shape[1]}`);
}

export function encodeLayerHeader(h: Omit<LayerHeader, "version" | "recordsOffset">): Uint8Array {
  const buf = new Uint8Array(RECORDS_OFFSET);
  const v = new DataView(buf.buffer);
  buf.set(LAYER_MAGIC, 0);
  v.setUint32(4, PACK_FORMAT_VERSION, true);
  v.setUint32(8, h.layer, true);
  v.setUint32(12, h.experts, true);
  v.setBigUint64(16, BigInt(h.recordBytes), true);
  v.setBigUint64(24, BigInt(RECORDS_OFFSET), true);
  buf.set(Buffer.from(h.sourceFingerprint, "hex").subarray(0, 16), 32);
  return buf;
}

/** Parse the fixed header at offset 0 of a layer file; FormatError with the byte offset when malformed. */
export function decodeLayerHeader(bytes: Uint8Array, file: string): LayerHeader {
  if (bytes.byteLength < HEADER_USED_BYTES) throw new FormatError("truncated", file, 0, `layer header needs ${HEADER_USED_BYTES} bytes, file has ${bytes.byteLength}`);
  if (LAYER_MAGIC.some((b, i) => bytes[i] !== b)) throw new FormatError("bad_magic", file, 0, "not a moestream expert layer file (magic is not 'MSEX')");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint32(4, true);
  if (!PACK_READ_VERSIONS.includes(version)) {
    throw new FormatError("unsupported_pack_version", file, 4, `layer file format version ${version}, this build reads ${PACK_READ_VERSIONS.join(" and ")} (re-run pack)`);
  }
  const big = (at: number) => {
    const x = v.getBigUint64(at, true);
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError("bad_layer_header", file, at, `value ${x} is not a safe integer`);
    return Number(x);
  };
  return {
    version,
    layer: v.getUint32(8, true),
    experts: v.getUint32(12, true),
    recordBytes: big(16),
    recordsOffset: big(24),
    sourceFingerprint: Buffer.from(bytes.subarray(32, 48)).toString("hex"),
  };
}

/** Validate parsed manifest JSON by hand; FormatError "bad_manifest" naming the file and the field. */
export function validateManifest(json: unknown, file: string): PackManifest {
  const fail = (field: string, detail: string): never => {
    throw new FormatError("bad_manifest", file, undefined, `field "${field}": ${detail}`);
  };
  const show = (x: unknown) => (x === undefined ? "nothing" : JSON.stringify(x).slice(0, 60));
  const obj = (x: unknown, f: string): Record<string, unknown> =>
    typeof x === "object" && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : fail(f, `expected an object, found ${show(x)}`);
  const arr = (x: unknown, f: string): unknown[] => (Array.isArray(x) ? x : fail(f, `expected an array, found ${show(x)}`));
  const str = (x: unknown, f: string): string => (typeof x === "string" && x.length > 0 ? x : fail(f, `expected a non-empty string, found ${show(x)}`));
  const int = (x: unknown, f: string, min = 0, max = Number.MAX_SAFE_INTEGER): number =>
    typeof x === "number" && Number.isSafeInteger(x) && x >= min && x <= max ? x : fail(f, `expected an integer in [${min}, ${max}], found ${show(x)}`);
  const identity = (x: unknown, f: string): FileIdentity => {
    const o = obj(x, f);
    const size = int(o.size, `${f}.size`);
    const headerBytes = int(o.headerBytes, `${f}.headerBytes`, 1, size);
    const sha = (k: "headerSha256" | "sampleSha256") => {
      const x = str(o[k], `${f}.${k}`);
      return /^[0-9a-f]{64}$/.test(x) ? x : fail(`${f}.${k}`, `expected 64 lowercase hex digits, found ${show(x)}`);
    };
    return { size, headerBytes, headerSha256: sha("headerSha256"), sampleSha256: sha("sampleSha256") };
  };

  const m = obj(json, "(root)");
  if (m.format !== PACK_FORMAT_NAME) fail("format", `expected "${PACK_FORMAT_NAME}", found ${show(m.format)}`);
  const version = int(m.version, "version");
  if (!PACK_READ_VERSIONS.includes(version)) {
    throw new FormatError("unsupported_pack_version", file, undefined, `field "version": pack format ${version}, this build reads ${PACK_READ_VERSIONS.join(" and ")} (re-run pack)`);
  }
  const src = obj(m.source, "source");
  const source = { file: str(src.file, "source.file"), ...identity(src, "source") };
  const dn = obj(m.dense, "dense");
  if (dn.file !== DENSE_FILE) fail("dense.file", `expected "${DENSE_FILE}", found ${show(dn.file)}`);
  let crcs: Record<string, number> | undefined;
  if (dn.crc32c !== undefined) {
    crcs = {};
    for (const [name, c] of Object.entries(obj(dn.crc32c, "dense.crc32c"))) crcs[name] = int(c, `dense.crc32c["${name}"]`, 0, 0xffffffff);
  }
  const dense = { file: DENSE_FILE, ...identity(dn, "dense"), ...(crcs ? { crc32c: crcs } : {}) } as const;
  const architecture = str(m.architecture, "architecture");

  const seen = new Set<number>();
  const layers = arr(m.layers, "layers").map((x, i): PackLayer => {
    const f = `layers[${i}]`;
    const l = obj(x, f);
    const layer = int(l.layer, `${f}.layer`, 0, 0xffffffff);
    if (seen.has(layer)) fail(`${f}.layer`, `layer ${layer} appears twice`);
    seen.add(layer);
    if (l.file !== layerFileName(layer)) fail(`${f}.file`, `expected "${layerFileName(layer)}", found ${show(l.file)}`);
    const experts = int(l.experts, `${f}.experts`, 1, 1 << 20);
    const recordBytes = int(l.recordBytes, `${f}.recordBytes`, RECORD_ALIGN);
    if (recordBytes % RECORD_ALIGN !== 0) fail(`${f}.recordBytes`, `${recordBytes} is not a multiple of ${RECORD_ALIGN}`);
    let end = 0;
    const names = new Set<string>();
    const rawParts = arr(l.parts, `${f}.parts`);
    if (version === 1 && rawParts.length !== V1_PART_NAMES.length) {
      fail(`${f}.parts`, `expected ${V1_PART_NAMES.length} parts (${V1_PART_NAMES.join(", ")}), found ${rawParts.length}`);
    }
    if (rawParts.length === 0) fail(`${f}.parts`, "expected at least one part");
    const parts = rawParts.map((px, j): ExpertPart => {
      const pf = `${f}.parts[${j}]`;
      const p = obj(px, pf);
      const name = str(p.name, `${pf}.name`);
      if (version === 1 && name !== V1_PART_NAMES[j]) fail(`${pf}.name`, `expected "${V1_PART_NAMES[j]}", found ${show(p.name)}`);
      if (!PART_NAME_RE.test(name)) fail(`${pf}.name`, `expected a name matching ${PART_NAME_RE}, found ${show(name)}`);
      if (names.has(name)) fail(`${pf}.name`, `part "${name}" appears twice`);
      names.add(name);
      const type = int(p.type, `${pf}.type`);
      if (!ggmlTypeInfo(type)) fail(`${pf}.type`, `unknown ggml type ${type}`);
      const shape = arr(p.shape, `${pf}.shape`);
      if (version === 1 ? shape.length !== 2 : shape.length !== 1 && shape.length !== 2) {
        fail(`${pf}.shape`, `expected ${version === 1 ? "[K, N]" : "[K, N] or [N]"}, found ${show(shape)}`);
      }
      const dims = shape.map((d, i) => int(d, `${pf}.shape[${i}]`, 1));
      let want = -1;
      try {
        want = tensorByteLength(type, dims);
      } catch (e) {
        fail(`${pf}.shape`, e instanceof Error ? e.message : String(e));
      }
      const byteLength = int(p.byteLength, `${pf}.byteLength`);
      if (byteLength !== want) fail(`${pf}.byteLength`, `${ggmlTypeName(type)} [${dims.join(", ")}] takes ${want} bytes, found ${byteLength}`);
      // The layout recordLayout writes, and no other: a part moved inside its record's padding still checksums.
      const offset = int(p.offset, `${pf}.offset`);
      if (offset !== alignUp(end, PART_ALIGN)) fail(`${pf}.offset`, `expected ${alignUp(end, PART_ALIGN)} (parts lie back to back at ${PART_ALIGN}-byte boundaries), found ${offset}`);
      end = offset + byteLength;
      if (end > recordBytes) fail(`${pf}.offset`, `part ends at ${end}, past the record size ${recordBytes}`);
      let split: ExpertSplit | undefined;
      if (p.split !== undefined) {
        if (version === 1) fail(`${pf}.split`, "version 1 packs have no fused parts");
        split = arr(p.split, `${pf}.split`).map((sx, k) => {
          const so = obj(sx, `${pf}.split[${k}]`);
          return { name: str(so.name, `${pf}.split[${k}].name`), rows: int(so.rows, `${pf}.split[${k}].rows`, 1) };
        });
      }
      return { name, tensor: str(p.tensor, `${pf}.tensor`), type, shape: dims, offset, byteLength, ...(split ? { split } : {}) };
    });
    const allNames = parts.map((p) => p.name);
    parts.forEach((p, j) => {
      if (p.split) checkSplit(p.split, p.shape, allNames, (detail) => new FormatError("bad_manifest", file, undefined, `field "${f}.parts[${j}].split": ${detail}`));
    });
    const crcs = arr(l.crc32c, `${f}.crc32c`).map((c, e) => int(c, `${f}.crc32c[${e}]`, 0, 0xffffffff));
    if (crcs.length !== experts) fail(`${f}.crc32c`, `expected ${experts} checksums (one per expert), found ${crcs.length}`);
    return { layer, file: layerFileName(layer), experts, recordBytes, parts, crc32c: crcs };
  });
  if (layers.length === 0) fail("layers", "expected at least one layer");
  return { format: PACK_FORMAT_NAME, version, source, dense, architecture, layers };
}
