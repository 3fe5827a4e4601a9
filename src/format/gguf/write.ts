// GGUF writer: header first, then each tensor at its aligned offset. Tensor bytes may come from
// lazy producers, so a multi-GB model is never held whole in memory. Writes to `path.tmp`, then renames.
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { ModelError, UsageError } from "../../util/errors.js";
import { tensorByteLength } from "./ggml-types.js";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, alignUp } from "./read.js";
import type { GGUFMetaValue, GGUFMetadata, GGUFScalarTypeName, GGUFTensorInfo } from "./types.js";

export interface GGUFTensorSpec {
  name: string;
  /** ggml order, innermost first. */
  shape: readonly number[];
  /** ggml type id. */
  type: number;
}

export interface GGUFWriteTensor extends GGUFTensorSpec {
  /** The tensor's bytes, or a producer called once, when the tensor's turn to be written comes. */
  data: Uint8Array | (() => Uint8Array | Promise<Uint8Array>);
}

export interface GGUFHeaderOptions {
  version?: 2 | 3;
  metadata: GGUFMetadata;
  tensors: readonly GGUFTensorSpec[];
  /** Power of two; when not 32 it is recorded as `general.alignment` (u32). Defaults to the metadata's or 32. */
  alignment?: number;
}

export interface GGUFWriteOptions extends GGUFHeaderOptions {
  tensors: readonly GGUFWriteTensor[];
}

/** Where everything goes in the file. */
export interface GGUFLayout {
  /** Header bytes, zero-padded up to dataOffset. */
  header: Uint8Array;
  alignment: number;
  dataOffset: number;
  /** In the order given, with offsets assigned. */
  tensors: GGUFTensorInfo[];
  /** Total file size: every tensor, the last one included, is padded to the alignment. */
  fileSize: number;
}

const TYPE_IDS: Record<GGUFScalarTypeName | "array", number> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};
const INT_RANGES: Partial<Record<GGUFScalarTypeName, [number, number]>> = {
  u8: [0, 0xff], i8: [-0x80, 0x7f], u16: [0, 0xffff], i16: [-0x8000, 0x7fff], u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff],
};
const BIG_RANGES: Partial<Record<GGUFScalarTypeName, [bigint, bigint]>> = {
  u64: [0n, (1n << 64n) - 1n], i64: [-(1n << 63n), (1n << 63n) - 1n],
};

/** Plan the file: resolve the alignment, assign tensor offsets in order, serialize the header. */
export function planGGUF(opts: GGUFHeaderOptions): GGUFLayout {
  const version = opts.version ?? 3;
  if (version !== 2 && version !== 3) throw new UsageError("bad_version", `cannot write GGUF version ${String(version)}`);
  const { alignment, metadata } = resolveAlignment(opts);

  const names = new Set<string>();
  const tensors: GGUFTensorInfo[] = [];
  let rel = 0;
  for (const t of opts.tensors) {
    if (names.has(t.name)) throw new UsageError("duplicate_tensor", `duplicate tensor name "${t.name}"`);
    names.add(t.name);
    if (t.shape.length > 4) throw new UsageError("bad_shape", `tensor "${t.name}" has ${t.shape.length} dimensions (max 4)`);
    let byteLength: number;
    try {
      byteLength = tensorByteLength(t.type, t.shape);
    } catch (e) {
      if (e instanceof ModelError) throw new UsageError(e.code, `tensor "${t.name}": ${e.message}`);
      throw e;
    }
    tensors.push({ name: t.name, shape: [...t.shape], type: t.type, relOffset: rel, offset: 0, byteLength });
    rel = alignUp(rel + byteLength, alignment);
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(version);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(metadata.size));
  for (const [key, v] of metadata) {
    if (key.length === 0) throw new UsageError("bad_metadata", "empty metadata key");
    w.str(key, "metadata key");
    w.u32(TYPE_IDS[v.type] ?? bad(key, `unknown value type ${String(v.type)}`));
    writeValue(w, v, key, 0);
  }
  for (const t of tensors) {
    w.str(t.name, "tensor name");
    w.u32(t.shape.length);
    for (const d of t.shape) w.u64(BigInt(d));
    w.u32(t.type);
    w.u64(BigInt(t.relOffset));
  }
  const dataOffset = alignUp(w.pos, alignment);
  w.pad(dataOffset);
  for (const t of tensors) t.offset = dataOffset + t.relOffset;
  return { header: w.bytes(), alignment, dataOffset, tensors, fileSize: dataOffset + rel };
}

/** Header bytes (zero-padded to where tensor data starts). */
export function serializeGGUFHeader(opts: GGUFHeaderOptions): Uint8Array {
  return planGGUF(opts).header;
}

/** Stream a GGUF file to disk; returns the layout written (without the header bytes). */
export async function writeGGUF(path: string, opts: GGUFWriteOptions): Promise<Omit<GGUFLayout, "header">> {
  const { header, ...layout } = planGGUF(opts);
  const tmp = path + ".tmp";
  const fh = await open(tmp, "w");
  let done = false;
  try {
    await writeAt(fh, header, 0);
    for (let i = 0; i < opts.tensors.length; i++) {
      const spec = opts.tensors[i];
      const info = layout.tensors[i];
      const data = typeof spec.data === "function" ? await spec.data() : spec.data;
      if (!(data instanceof Uint8Array) || data.byteLength !== info.byteLength) {
        const got = data instanceof Uint8Array ? `${data.byteLength} bytes` : typeof data;
        throw new UsageError("bad_tensor_data", `tensor "${info.name}" needs ${info.byteLength} bytes, got ${got}`);
      }
      await writeAt(fh, data, info.offset);
    }
    // Padding between tensors is left as holes (they read as zeros); truncate fixes the tail padding.
    await fh.truncate(layout.fileSize);
    done = true;
  } finally {
    await fh.close();
    if (!done) await rm(tmp, { force: true });
  }
  await rename(tmp, path);
  return layout;
}

/** Write all of `data` at `position` (fs writes may write less than asked). */
export async function writeAt(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let off = 0;
  // fs writes take at most 2 GiB at a time and may write less than asked.
  while (off < data.byteLength) {
    const n = Math.min(data.byteLength - off, 1 << 30);
    const { bytesWritten } = await fh.write(data, off, n, position + off);
    off += bytesWritten;
  }
}

function resolveAlignment(opts: GGUFHeaderOptions): { alignment: number; metadata: GGUFMetadata } {
  const inMeta = opts.metadata.get("general.alignment");
  if (inMeta !== undefined && inMeta.type !== "u32") bad("general.alignment", `must be u32, found ${inMeta.type}`);
  const fromMeta = inMeta?.type === "u32" ? inMeta.value : undefined;
  const alignment = opts.alignment ?? fromMeta ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment > 0xffffffff || (alignment & (alignment - 1)) !== 0) {
    throw new UsageError("bad_alignment", `alignment ${alignment} is not a power of two that fits in a u32`);
  }
  if (fromMeta !== undefined && fromMeta !== alignment) {
    throw new UsageError("bad_alignment", `alignment ${alignment} disagrees with general.alignment ${fromMeta} in the metadata`);
  }
  if (alignment === GGUF_DEFAULT_ALIGNMENT || fromMeta !== undefined) return { alignment, metadata: opts.metadata };
  // Readers only know a non-default alignment from the metadata, so record it.
  const metadata: GGUFMetadata = new Map(opts.metadata);
  metadata.set("general.alignment", { type: "u32", value: alignment });
  return { alignment, metadata };
}

function bad(key: string, detail: string): never {
  throw new UsageError("bad_metadata", `metadata "${key}": ${detail}`);
}

function writeValue(w: ByteWriter, v: GGUFMetaValue, key: string, depth: number): void {
  if (v.type !== "array") return writeScalar(w, v.type, v.value, key);
  if (depth > 8) bad(key, "arrays nested too deeply");
  const itemId = TYPE_IDS[v.itemType] ?? bad(key, `unknown array item type ${String(v.itemType)}`);
  if (!Array.isArray(v.value)) bad(key, "array value is not an array");
  w.u32(itemId);
  w.u64(BigInt(v.value.length));
  if (v.itemType === "array") {
    for (const item of v.value) {
      // Items of an array of arrays carry no type tag of their own: just item type, count, items.
      if (item?.type !== "array") bad(key, "an array of arrays holds a non-array item");
      writeValue(w, item, key, depth + 1);
    }
    return;
  }
  for (const item of v.value as ReadonlyArray<number | bigint | boolean | string>) writeScalar(w, v.itemType, item, key);
}

function writeScalar(w: ByteWriter, type: GGUFScalarTypeName, value: unknown, key: string): void {
  const range = INT_RANGES[type];
  if (range) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < range[0] || value > range[1]) bad(key, `${String(value)} is not a ${type}`);
  } else if (BIG_RANGES[type]) {
    const [lo, hi] = BIG_RANGES[type]!;
    if (typeof value !== "bigint" || value < lo || value > hi) bad(key, `${String(value)} is not a ${type} (bigint)`);
  }
  switch (type) {
    case "u8": return w.u8(value as number);
    case "i8": return w.u8((value as number) & 0xff);
    case "u16": return w.u16(value as number);
    case "i16": return w.u16((value as number) & 0xffff);
    case "u32": return w.u32(value as number);
    case "i32": return w.u32((value as number) >>> 0);
    case "u64": return w.u64(value as bigint);
    case "i64": return w.u64(BigInt.asUintN(64, value as bigint));
    case "f32":
    case "f64":
      if (typeof value !== "number") bad(key, `${String(value)} is not a number`);
      return type === "f32" ? w.f32(value) : w.f64(value);
    case "bool":
      if (typeof value !== "boolean") bad(key, `${String(value)} is not a boolean`);
      return w.u8(value ? 1 : 0);
    case "string":
      if (typeof value !== "string") bad(key, `${String(value)} is not a string`);
      return w.str(value, `value of "${key}"`);
  }
  bad(key, `unknown value type ${String(type)}`);
}

/** Growable little-endian buffer for the header. */
class ByteWriter {
  pos = 0;
  private buf = Buffer.alloc(1 << 16);

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.pos = this.buf.writeUInt16LE(v, this.pos);
  }
  u32(v: number): void {
    this.ensure(4);
    this.pos = this.buf.writeUInt32LE(v, this.pos);
  }
  u64(v: bigint): void {
    this.ensure(8);
    this.pos = this.buf.writeBigUInt64LE(v, this.pos);
  }
  f32(v: number): void {
    this.ensure(4);
    this.pos = this.buf.writeFloatLE(v, this.pos);
  }
  f64(v: number): void {
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }
  str(s: string, what: string): void {
    // Lone surrogates would silently become U+FFFD and not read back equal.
    if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      throw new UsageError("bad_string", `${what} ${JSON.stringify(s.slice(0, 40))} is not well-formed Unicode`);
    }
    const n = Buffer.byteLength(s, "utf8");
    this.u64(BigInt(n));
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, n, "utf8");
  }
  /** Zero-fill up to absolute position `end` (the buffer is zeroed on allocation). */
  pad(end: number): void {
    this.ensure(end - this.pos);
    this.pos = end;
  }
  bytes(): Uint8Array {
    // A plain Uint8Array (not a Buffer), so callers comparing bytes see the type they expect.
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.pos);
  }
}

type NumName = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
const num = (type: NumName) => (value: number): GGUFMetaValue => ({ type, value });
const numArray = (itemType: NumName) => (value: readonly number[]): GGUFMetaValue => ({ type: "array", itemType, value: [...value] });
const big = (type: "u64" | "i64") => (value: bigint | number): GGUFMetaValue => ({ type, value: BigInt(value) });
const bigArray = (itemType: "u64" | "i64") => (value: ReadonlyArray<bigint | number>): GGUFMetaValue => ({
  type: "array", itemType, value: value.map((x) => BigInt(x)),
});

/** Typed metadata value constructors: `meta.u32(5)`, `meta.str("x")`, `meta.strArray([...])`. */
export const meta = {
  u8: num("u8"), i8: num("i8"), u16: num("u16"), i16: num("i16"), u32: num("u32"), i32: num("i32"), f32: num("f32"), f64: num("f64"),
  u64: big("u64"), i64: big("i64"),
  bool: (value: boolean): GGUFMetaValue => ({ type: "bool", value }),
  str: (value: string): GGUFMetaValue => ({ type: "string", value }),
  u8Array: numArray("u8"), i8Array: numArray("i8"), u16Array: numArray("u16"), i16Array: numArray("i16"),
  u32Array: numArray("u32"), i32Array: numArray("i32"), f32Array: numArray("f32"), f64Array: numArray("f64"),
  u64Array: bigArray("u64"), i64Array: bigArray("i64"),
  boolArray: (value: readonly boolean[]): GGUFMetaValue => ({ type: "array", itemType: "bool", value: [...value] }),
  strArray: (value: readonly string[]): GGUFMetaValue => ({ type: "array", itemType: "string", value: [...value] }),
  /** Array whose items are arrays (each built with the constructors above). */
  arrayArray: (value: readonly GGUFMetaValue[]): GGUFMetaValue => ({ type: "array", itemType: "array", value: [...value] }),
};

/** Metadata map from a record, keeping insertion order: `metaMap({ "general.architecture": meta.str("qwen3moe") })`. */
export function metaMap(entries: Record<string, GGUFMetaValue>): GGUFMetadata {
  return new Map(Object.entries(entries));
}
