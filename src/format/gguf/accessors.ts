// Typed metadata and tensor lookups: each names the key (and the file) when it is missing or of the wrong type.
import { ModelError } from "../../util/errors.js";
import type { GGUFFile, GGUFMetaValue, GGUFMetadata, GGUFTensorInfo } from "./types.js";

/** Metadata map, or a parsed file (then its path is named in errors). */
export type MetaSource = GGUFMetadata | GGUFFile;

export interface MetaOptions<T> {
  /** Returned when the key is absent; without it the key is required. */
  default?: T;
  /** File named in error messages (taken from the file itself when a GGUFFile is passed). */
  file?: string;
}

const NUMERIC = new Set(["u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64", "u64", "i64"]);

function mapOf(src: MetaSource): GGUFMetadata {
  return src instanceof Map ? src : src.metadata;
}

function where(src: MetaSource, opts: { file?: string } | undefined): string {
  const file = opts?.file ?? (src instanceof Map ? undefined : src.source.name);
  return file === undefined ? "" : ` in ${file}`;
}

function describe(v: GGUFMetaValue): string {
  return v.type === "array" ? `array of ${v.itemType}` : v.type;
}

export function getMeta(md: MetaSource, key: string): GGUFMetaValue | undefined {
  return mapOf(md).get(key);
}

/** The value for `key`, or the default; ModelError "missing_key" when required and absent. */
function lookup<T>(md: MetaSource, key: string, opts: MetaOptions<T> | undefined): GGUFMetaValue | { fallback: T } {
  const v = mapOf(md).get(key);
  if (v !== undefined) return v;
  if (opts?.default !== undefined) return { fallback: opts.default };
  throw new ModelError("missing_key", `missing metadata key "${key}"${where(md, opts)}`);
}

function badType(md: MetaSource, key: string, want: string, v: GGUFMetaValue, opts: { file?: string } | undefined): never {
  throw new ModelError("bad_key_type", `metadata key "${key}"${where(md, opts)} should be ${want}, found ${describe(v)}`);
}

function toNumber(md: MetaSource, key: string, x: number | bigint, opts: { file?: string } | undefined): number {
  if (typeof x === "number") return x;
  if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new ModelError("bad_key_type", `metadata key "${key}"${where(md, opts)} holds ${x}, beyond the range of a safe integer`);
  }
  return Number(x);
}

export function metaString(md: MetaSource, key: string, opts?: MetaOptions<string>): string {
  const v = lookup(md, key, opts);
  if ("fallback" in v) return v.fallback;
  if (v.type !== "string") badType(md, key, "a string", v, opts);
  return v.value;
}

/** Any numeric type; u64/i64 are converted when they are safe integers. */
export function metaNumber(md: MetaSource, key: string, opts?: MetaOptions<number>): number {
  const v = lookup(md, key, opts);
  if ("fallback" in v) return v.fallback;
  if (v.type === "array" || !NUMERIC.has(v.type)) badType(md, key, "a number", v, opts);
  return toNumber(md, key, v.value as number | bigint, opts);
}

export function metaBool(md: MetaSource, key: string, opts?: MetaOptions<boolean>): boolean {
  const v = lookup(md, key, opts);
  if ("fallback" in v) return v.fallback;
  if (v.type !== "bool") badType(md, key, "a bool", v, opts);
  return v.value;
}

export function metaStringArray(md: MetaSource, key: string, opts?: MetaOptions<string[]>): string[] {
  const v = lookup(md, key, opts);
  if ("fallback" in v) return v.fallback;
  if (v.type !== "array" || v.itemType !== "string") badType(md, key, "an array of strings", v, opts);
  return v.value;
}

/** Array of any numeric type, as numbers (u64/i64 items must be safe integers). */
export function metaNumberArray(md: MetaSource, key: string, opts?: MetaOptions<number[]>): number[] {
  const v = lookup(md, key, opts);
  if ("fallback" in v) return v.fallback;
  if (v.type !== "array" || !NUMERIC.has(v.itemType)) badType(md, key, "an array of numbers", v, opts);
  if (v.itemType === "u64" || v.itemType === "i64") return v.value.map((x) => toNumber(md, key, x, opts));
  return v.value as number[];
}

const byName = new WeakMap<GGUFFile, Map<string, GGUFTensorInfo>>();

/** The tensor called `name`; ModelError "missing_tensor" naming the file when absent. */
export function getTensor(file: GGUFFile, name: string): GGUFTensorInfo {
  let index = byName.get(file);
  // Built once per file: a model looks up every one of its (thousands of) tensors by name.
  if (!index || index.size !== file.tensors.length) {
    index = new Map(file.tensors.map((x) => [x.name, x]));
    byName.set(file, index);
  }
  const t = index.get(name);
  if (!t) throw new ModelError("missing_tensor", `missing tensor "${name}" in ${file.source.name}`);
  return t;
}
