// GGUF reader (versions 2 and 3): parses the header by positioned reads, validates every tensor
// against the file, and never reads tensor data until asked. Spec: ggml/docs/gguf.md.
import { FormatError, ModelError, UsageError } from "../../util/errors.js";
import { FileSource, type ByteSource } from "./byte-source.js";
import { HeaderCursor } from "./cursor.js";
import { ggmlTypeInfo, ggmlTypeName, tensorByteLength } from "./ggml-types.js";
import type { GGUFFile, GGUFMetaValue, GGUFMetadata, GGUFScalarTypeName, GGUFTensorInfo } from "./types.js";

export { getMeta, getTensor, metaBool, metaNumber, metaNumberArray, metaString, metaStringArray } from "./accessors.js";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

// Limits that no real file comes near; they keep a corrupt count from allocating gigabytes.
const MAX_KEY_BYTES = 1 << 16;
const MAX_STRING_BYTES = 64 << 20;
const MAX_ARRAY_LENGTH = 1 << 24;
const MAX_ARRAY_DEPTH = 8;
const MAX_DIMS = 4; // GGML_MAX_DIMS

/** Wire value type id -> our name (9, array, is handled apart). */
const TYPE_NAMES: Record<number, GGUFScalarTypeName> = {
  0: "u8", 1: "i8", 2: "u16", 3: "i16", 4: "u32", 5: "i32", 6: "f32", 7: "bool", 8: "string", 10: "u64", 11: "i64", 12: "f64",
};
const ARRAY = 9;
/** Fewest bytes one value of each type takes on the wire, to bound counts before allocating. */
const MIN_WIRE_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8 };
// Smallest kv: 8 (key length) + 1 (key byte) + 4 (type) + 1 (u8 value). Smallest tensor info: 8 + 4 + 4 + 8.
const MIN_KV_BYTES = 14;
const MIN_TENSOR_INFO_BYTES = 24;

/** Parse the header of a GGUF file from any positioned byte source. */
export async function readGGUF(source: ByteSource): Promise<GGUFFile> {
  const c = new HeaderCursor(source);
  await c.fill(4, "magic");
  if (c.u32() !== GGUF_MAGIC) c.fail("bad_magic", "not a GGUF file (magic is not 'GGUF')", 0);

  await c.fill(4 + 8 + 8, "header");
  const version = c.u32();
  if (version !== 2 && version !== 3) {
    const why = version === 1 ? "GGUF v1 is no longer supported" : (version & 0xffff) === 0 ? "big-endian GGUF is not supported" : "only versions 2 and 3 are supported";
    c.fail("unsupported_version", `GGUF version ${version}: ${why}`, 4);
  }
  const tensorCount = c.u64Safe("tensor count");
  const kvCount = c.u64Safe("metadata count");
  if (tensorCount * MIN_TENSOR_INFO_BYTES > c.remaining()) {
    c.fail("implausible_count", `tensor count ${tensorCount} cannot fit in the ${c.remaining()} bytes left`, 8);
  }
  if (kvCount * MIN_KV_BYTES > c.remaining()) {
    c.fail("implausible_count", `metadata count ${kvCount} cannot fit in the ${c.remaining()} bytes left`, 16);
  }

  const metadata: GGUFMetadata = new Map();
  const valueOffsets = new Map<string, number>();
  for (let i = 0; i < kvCount; i++) {
    const keyAt = c.pos;
    const key = await c.string("metadata key", MAX_KEY_BYTES);
    if (key.length === 0) c.fail("bad_string", `metadata key ${i} is empty`, keyAt);
    if (metadata.has(key)) c.fail("duplicate_key", `duplicate metadata key "${key}"`, keyAt);
    await c.fill(4, `type of "${key}"`);
    const typeAt = c.pos;
    const type = c.u32();
    valueOffsets.set(key, typeAt);
    metadata.set(key, await readValue(c, type, typeAt, 0, `"${key}"`));
  }

  const alignment = readAlignment(c, metadata, valueOffsets.get("general.alignment"));

  if (tensorCount * MIN_TENSOR_INFO_BYTES > c.remaining()) {
    c.fail("implausible_count", `tensor count ${tensorCount} cannot fit in the ${c.remaining()} bytes left after metadata`, 8);
  }
  const tensors: GGUFTensorInfo[] = [];
  const offsetFieldAt: number[] = []; // header position of each tensor's offset field, for errors
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const infoAt = c.pos;
    const name = await c.string("tensor name", MAX_KEY_BYTES);
    if (names.has(name)) c.fail("duplicate_tensor", `duplicate tensor name "${name}"`, infoAt);
    names.add(name);
    await c.fill(4, `dimension count of tensor "${name}"`);
    const nDims = c.u32();
    if (nDims > MAX_DIMS) c.fail("bad_shape", `tensor "${name}" has ${nDims} dimensions (max ${MAX_DIMS})`, c.pos - 4);
    await c.fill(8 * nDims + 4 + 8, `info of tensor "${name}"`);
    const shape: number[] = [];
    for (let d = 0; d < nDims; d++) shape.push(c.u64Safe(`dimension ${d} of tensor "${name}"`, "bad_shape"));
    const typeAt = c.pos;
    const type = c.u32();
    if (!ggmlTypeInfo(type)) c.fail("unknown_tensor_type", `tensor "${name}" has unknown ggml type ${type}`, typeAt);
    let byteLength: number;
    try {
      byteLength = tensorByteLength(type, shape);
    } catch (e) {
      if (e instanceof ModelError) c.fail(e.code, `tensor "${name}": ${e.message}`, infoAt);
      throw e;
    }
    const offsetAt = c.pos;
    const relOffset = c.u64Safe(`data offset of tensor "${name}"`, "tensor_out_of_bounds");
    if (relOffset % alignment !== 0) {
      c.fail("tensor_misaligned", `tensor "${name}" data offset ${relOffset} is not a multiple of the alignment ${alignment}`, offsetAt);
    }
    tensors.push({ name, shape, type, relOffset, offset: 0, byteLength });
    offsetFieldAt.push(offsetAt);
  }

  const dataOffset = alignUp(c.pos, alignment);
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    t.offset = dataOffset + t.relOffset;
    if (t.offset + t.byteLength > source.size) {
      c.fail(
        "tensor_out_of_bounds",
        `tensor "${t.name}" (${ggmlTypeName(t.type)} [${t.shape.join(", ")}], ${t.byteLength} bytes at ${t.offset}) ends past the end of the file (${source.size} bytes)`,
        offsetFieldAt[i],
      );
    }
  }
  checkNoOverlap(c, tensors, offsetFieldAt);
  return { version: version as 2 | 3, metadata, tensors, alignment, dataOffset, source };
}

/** Open a file and parse its header; the returned file keeps the handle open (close `file.source`). */
export async function openGGUF(path: string): Promise<GGUFFile> {
  const src = await FileSource.open(path);
  try {
    return await readGGUF(src);
  } catch (e) {
    await src.close();
    throw e;
  }
}

/** Read one tensor's bytes (into dst when given); FormatError "truncated" if the source is short. */
export async function readTensorBytes(file: GGUFFile, tensor: GGUFTensorInfo, dst?: Uint8Array): Promise<Uint8Array> {
  if (dst && dst.byteLength < tensor.byteLength) {
    throw new UsageError("bad_buffer", `buffer of ${dst.byteLength} bytes is too small for tensor "${tensor.name}" (${tensor.byteLength} bytes)`);
  }
  const out = await file.source.read(tensor.offset, tensor.byteLength, dst);
  if (out.byteLength !== tensor.byteLength) {
    throw new FormatError("truncated", file.source.name, tensor.offset, `tensor "${tensor.name}": got ${out.byteLength} of ${tensor.byteLength} bytes`);
  }
  return out;
}

/**
 * The data region is tiled as GGUF writers lay it out (ggml's gguf.cpp, gguf-py): each tensor's bytes, padding
 * to the alignment, the next tensor; the file ends with the last one's padding. `alignment` or more bytes that
 * no tensor claims mean a tensor's type or shape disagrees with the bytes written for it (a type changed in the
 * header) or a tensor's info entry is gone: FormatError naming the tensor before the gap. readGGUF itself
 * accepts such files (a reader need not refuse them); loading a model does not.
 */
export function checkTensorLayout(file: GGUFFile): void {
  const order = file.tensors.filter((t) => t.byteLength > 0).sort((a, b) => a.offset - b.offset);
  const name = file.source.name;
  const show = (t: GGUFTensorInfo) => `tensor "${t.name}" (${ggmlTypeName(t.type)} [${t.shape.join(", ")}], ${t.byteLength} bytes at ${t.offset})`;
  let at = file.dataOffset;
  let prev: GGUFTensorInfo | undefined;
  for (const t of [...order, undefined]) {
    const next = t ? t.offset : file.source.size;
    if (next - at >= file.alignment) {
      const gap = `${next - at} bytes that no tensor claims ${t ? `before tensor "${t.name}"` : "before the end of the file"}`;
      throw new FormatError("tensor_size_mismatch", name, at, prev
        ? `${show(prev)} is followed by ${gap}: its type or shape disagrees with the data written for it (or a tensor's info entry is missing)`
        : `the data region starts with ${gap} (a tensor's info entry is missing?)`);
    }
    if (t) at = t.offset + t.byteLength;
    prev = t;
  }
}

export function alignUp(n: number, alignment: number): number {
  const r = n % alignment;
  return r === 0 ? n : n + alignment - r;
}

async function readValue(c: HeaderCursor, type: number, typeAt: number, depth: number, what: string): Promise<GGUFMetaValue> {
  if (type === ARRAY) return readArray(c, typeAt, depth, what);
  const name = TYPE_NAMES[type];
  if (name === undefined) c.fail("bad_value_type", `${what} has unknown value type ${type}`, typeAt);
  if (name === "string") return { type: "string", value: await c.string(what, MAX_STRING_BYTES) };
  const size = MIN_WIRE_BYTES[type];
  if (c.avail() < size) await c.fill(size, what);
  return readScalar(c, name) as GGUFMetaValue;
}

/** Fixed-width scalar readers; the bytes must be buffered. */
const SCALAR_READERS: Record<GGUFScalarTypeName, (c: HeaderCursor) => number | bigint | boolean> = {
  u8: (c) => c.u8(), i8: (c) => c.i8(), u16: (c) => c.u16(), i16: (c) => c.i16(), u32: (c) => c.u32(), i32: (c) => c.i32(),
  f32: (c) => c.f32(), f64: (c) => c.f64(), u64: (c) => c.u64(), i64: (c) => c.i64(), bool: (c) => c.u8() !== 0,
  string: () => {
    throw new Error("internal: strings are not fixed-width");
  },
};

function readScalar(c: HeaderCursor, name: GGUFScalarTypeName): { type: GGUFScalarTypeName; value: number | bigint | boolean } {
  return { type: name, value: SCALAR_READERS[name](c) };
}

async function readArray(c: HeaderCursor, typeAt: number, depth: number, what: string): Promise<GGUFMetaValue> {
  if (depth >= MAX_ARRAY_DEPTH) c.fail("bad_value_type", `${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`, typeAt);
  await c.fill(12, `${what} array header`);
  const itemTypeAt = c.pos;
  const itemType = c.u32();
  if (itemType !== ARRAY && TYPE_NAMES[itemType] === undefined) {
    c.fail("bad_value_type", `${what} is an array of unknown value type ${itemType}`, itemTypeAt);
  }
  const count = c.u64Safe(`${what} array length`);
  const minBytes = MIN_WIRE_BYTES[itemType];
  if (count > MAX_ARRAY_LENGTH || count * minBytes > c.remaining()) {
    c.fail("implausible_count", `${what} array length ${count} cannot fit in the ${c.remaining()} bytes left (or exceeds ${MAX_ARRAY_LENGTH})`, itemTypeAt + 4);
  }
  if (itemType === ARRAY) {
    const items: GGUFMetaValue[] = [];
    for (let i = 0; i < count; i++) {
      const at = c.pos;
      items.push(await readArray(c, at, depth + 1, `${what}[${i}]`));
    }
    return { type: "array", itemType: "array", value: items };
  }
  const name = TYPE_NAMES[itemType];
  if (name === "string") {
    const items = new Array<string>(count);
    for (let i = 0; i < count; i++) items[i] = c.tryString(MAX_STRING_BYTES) ?? (await c.string(`${what}[${i}]`, MAX_STRING_BYTES));
    return { type: "array", itemType: "string", value: items };
  }
  const items = new Array<number | bigint | boolean>(count);
  const next = SCALAR_READERS[name];
  for (let i = 0; i < count; i++) {
    if (c.avail() < minBytes) await c.fill(minBytes, what);
    items[i] = next(c);
  }
  return { type: "array", itemType: name, value: items } as GGUFMetaValue;
}

function readAlignment(c: HeaderCursor, md: GGUFMetadata, at: number | undefined): number {
  const v = md.get("general.alignment");
  if (v === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (v.type !== "u32") c.fail("bad_alignment", `general.alignment must be a u32, found ${v.type}`, at);
  const a = v.value;
  if (a === 0 || (a & (a - 1)) !== 0) c.fail("bad_alignment", `general.alignment ${a} is not a power of two`, at);
  return a;
}

/** Tensors may come in any order but must not share bytes. Zero-byte tensors overlap nothing. */
function checkNoOverlap(c: HeaderCursor, tensors: GGUFTensorInfo[], fieldAt: number[]): void {
  const order = tensors.map((_, i) => i).filter((i) => tensors[i].byteLength > 0);
  order.sort((a, b) => tensors[a].relOffset - tensors[b].relOffset);
  let end = 0;
  let prev = -1;
  for (const i of order) {
    const t = tensors[i];
    if (prev >= 0 && t.relOffset < end) {
      c.fail("tensor_overlap", `tensor "${t.name}" at data offset ${t.relOffset} overlaps tensor "${tensors[prev].name}" (ends at ${end})`, fieldAt[i]);
    }
    end = t.relOffset + t.byteLength;
    prev = i;
  }
}
