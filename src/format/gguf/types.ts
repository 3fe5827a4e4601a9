// GGUF data model shared by the reader and the writer. Shapes are in ggml order: shape[0] is the
// innermost (contiguous) dimension, so a matrix with `rows` rows of `cols` values has shape [cols, rows].
import type { ByteSource } from "./byte-source.js";

/** Metadata value types as numbered in the GGUF spec. */
export enum GGUFValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

export type GGUFScalarTypeName = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64" | "u64" | "i64" | "bool" | "string";

/** One metadata value with its wire type, so a file read and written back keeps its types. */
export type GGUFMetaValue =
  | { type: "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64"; value: number }
  | { type: "u64" | "i64"; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64"; value: number[] }
  | { type: "array"; itemType: "u64" | "i64"; value: bigint[] }
  | { type: "array"; itemType: "bool"; value: boolean[] }
  | { type: "array"; itemType: "string"; value: string[] }
  | { type: "array"; itemType: "array"; value: GGUFMetaValue[] };

export type GGUFMetadata = Map<string, GGUFMetaValue>;

export interface GGUFTensorInfo {
  name: string;
  /** ggml order, innermost first. */
  shape: number[];
  /** ggml type id (see ggml-types.ts). */
  type: number;
  /** Offset relative to the start of the tensor data section (as stored in the file). */
  relOffset: number;
  /** Absolute byte offset in the file (dataOffset + relOffset); may exceed 4 GiB. */
  offset: number;
  /** Bytes of data, from shape and type. */
  byteLength: number;
}

export interface GGUFFile {
  version: 2 | 3;
  metadata: GGUFMetadata;
  tensors: GGUFTensorInfo[];
  /** `general.alignment` or 32. */
  alignment: number;
  /** Absolute offset where the tensor data section starts. */
  dataOffset: number;
  /** Where the bytes come from; tensor data is read from it by positioned reads. */
  source: ByteSource;
}
