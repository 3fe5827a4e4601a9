// ggml tensor types: id, block size and bytes per block, as in llama.cpp's ggml.c type_traits
// (sizes checked against the static_asserts on the block structs in ggml-common.h).
import { ModelError } from "../../util/errors.js";

export interface GGMLTypeInfo {
  /** Id as stored in GGUF tensor infos. */
  readonly id: number;
  /** ggml's name: "F32", "Q4_K", ... */
  readonly name: string;
  /** Values per block (1 for plain scalar types). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly bytesPerBlock: number;
}

const QK_K = 256;

// [name, id, blockSize, bytesPerBlock]; ids 4, 5 and 31..33, 36..38 were removed from ggml.
const TABLE: ReadonlyArray<readonly [string, number, number, number]> = [
  ["F32", 0, 1, 4],
  ["F16", 1, 1, 2],
  ["Q4_0", 2, 32, 2 + 16],
  ["Q4_1", 3, 32, 2 + 2 + 16],
  ["Q5_0", 6, 32, 2 + 4 + 16],
  ["Q5_1", 7, 32, 2 + 2 + 4 + 16],
  ["Q8_0", 8, 32, 2 + 32],
  ["Q8_1", 9, 32, 2 + 2 + 32], // two f16 (d, s); gguf-py's table says f32, ggml's struct does not
  ["Q2_K", 10, QK_K, 2 * 2 + QK_K / 16 + QK_K / 4],
  ["Q3_K", 11, QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  ["Q4_K", 12, QK_K, 2 * 2 + 12 + QK_K / 2],
  ["Q5_K", 13, QK_K, 2 * 2 + 12 + QK_K / 2 + QK_K / 8],
  ["Q6_K", 14, QK_K, 2 + QK_K / 16 + (3 * QK_K) / 4],
  ["Q8_K", 15, QK_K, 4 + QK_K + (QK_K / 16) * 2],
  ["IQ2_XXS", 16, QK_K, 2 + (QK_K / 8) * 2],
  ["IQ2_XS", 17, QK_K, 2 + (QK_K / 8) * 2 + QK_K / 32],
  ["IQ3_XXS", 18, QK_K, 2 + 3 * (QK_K / 8)],
  ["IQ1_S", 19, QK_K, 2 + QK_K / 8 + QK_K / 16],
  ["IQ4_NL", 20, 32, 2 + 16],
  ["IQ3_S", 21, QK_K, 2 + 13 * (QK_K / 32) + QK_K / 64],
  ["IQ2_S", 22, QK_K, 2 + QK_K / 4 + QK_K / 16],
  ["IQ4_XS", 23, QK_K, 2 + 2 + QK_K / 64 + QK_K / 2],
  ["I8", 24, 1, 1],
  ["I16", 25, 1, 2],
  ["I32", 26, 1, 4],
  ["I64", 27, 1, 8],
  ["F64", 28, 1, 8],
  ["IQ1_M", 29, QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32],
  ["BF16", 30, 1, 2],
  ["TQ1_0", 34, QK_K, 2 + QK_K / 64 + (QK_K - (4 * QK_K) / 64) / 5],
  ["TQ2_0", 35, QK_K, 2 + QK_K / 4],
  ["MXFP4", 39, 32, 1 + 16],
  // Newer llama.cpp types, so files using them still parse (we cannot compute with them).
  ["NVFP4", 40, 64, 4 + 32],
  ["Q1_0", 41, 128, 2 + 128 / 8],
  ["Q2_0", 42, 64, 2 + 64 / 4],
];

export const GGML_TYPES: readonly GGMLTypeInfo[] = TABLE.map(([name, id, blockSize, bytesPerBlock]) =>
  Object.freeze({ id, name, blockSize, bytesPerBlock }),
);

const BY_ID = new Map(GGML_TYPES.map((t) => [t.id, t]));
const BY_NAME = new Map(GGML_TYPES.map((t) => [t.name, t]));

/** Type ids by name, for readable code: `GGMLType.Q4_K`. */
export const GGMLType = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35, MXFP4: 39,
  NVFP4: 40, Q1_0: 41, Q2_0: 42,
} as const;

/** The type's traits, or undefined for an id ggml does not define. */
export function ggmlTypeInfo(id: number): GGMLTypeInfo | undefined {
  return BY_ID.get(id);
}

/** ggml's name for a type id; unknown ids render as "unknown(<id>)" so messages stay readable. */
export function ggmlTypeName(id: number): string {
  return BY_ID.get(id)?.name ?? `unknown(${id})`;
}

/** Look a type up by name ("q4_k" and "Q4_K" both work). */
export function ggmlTypeByName(name: string): GGMLTypeInfo | undefined {
  return BY_NAME.get(name.toUpperCase());
}

/**
 * Bytes of a tensor of `type` with `shape` (ggml order, innermost first; [] is a scalar).
 * Throws ModelError "unknown_tensor_type" or "bad_shape" (dims not non-negative safe integers,
 * shape[0] not a multiple of the block size, or a size beyond 2^53).
 */
export function tensorByteLength(type: number, shape: readonly number[]): number {
  const t = BY_ID.get(type);
  if (!t) throw new ModelError("unknown_tensor_type", `unknown ggml tensor type ${type}`);
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ModelError("bad_shape", `bad dimension ${d} in shape [${shape.join(", ")}]`);
  }
  const inner = shape.length > 0 ? shape[0] : 1;
  if (inner % t.blockSize !== 0) {
    throw new ModelError(
      "bad_shape",
      `shape [${shape.join(", ")}]: ${inner} values per row is not a multiple of ${t.name}'s block size ${t.blockSize}`,
    );
  }
  // Operands stay safe integers, so a true product past 2^53 also rounds to >= 2^53: checking after each step is exact enough.
  let bytes = (inner / t.blockSize) * t.bytesPerBlock;
  for (let i = 1; i < shape.length; i++) {
    bytes *= shape[i];
    if (bytes > Number.MAX_SAFE_INTEGER) {
      throw new ModelError("bad_shape", `shape [${shape.join(", ")}] of ${t.name} is too large (over 2^53 bytes)`);
    }
  }
  if (bytes > Number.MAX_SAFE_INTEGER) throw new ModelError("bad_shape", `shape [${shape.join(", ")}] of ${t.name} is too large`);
  return bytes;
}
