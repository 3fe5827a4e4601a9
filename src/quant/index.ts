// Registry of the quant block types moestream can decode and encode, keyed by ggml type id.
import type { QuantFormat } from "./types.js";
import { F32 } from "./f32.js";
import { F16 } from "./f16.js";
import { BF16 } from "./bf16.js";
import { Q8_0 } from "./q8_0.js";
import { Q4_0 } from "./q4_0.js";
import { Q4_1 } from "./q4_1.js";
import { Q5_0 } from "./q5_0.js";
import { Q5_1 } from "./q5_1.js";
import { Q2_K } from "./q2_k.js";
import { Q3_K } from "./q3_k.js";
import { Q4_K } from "./q4_k.js";
import { Q5_K } from "./q5_k.js";
import { Q6_K } from "./q6_k.js";
import { MXFP4 } from "./mxfp4.js";
import { IQ_FORMATS } from "./iq.js";

export type { QuantFormat } from "./types.js";
export { F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, MXFP4 };
export * from "./iq.js";

/** Every supported format, in ggml type-id order. */
export const QUANT_FORMATS: readonly QuantFormat[] = Object.freeze(
  [F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, BF16, MXFP4, ...IQ_FORMATS].sort((a, b) => a.type - b.type),
);

const BY_TYPE = new Map<number, QuantFormat>(QUANT_FORMATS.map((f) => [f.type, f]));
const BY_NAME = new Map<string, QuantFormat>(QUANT_FORMATS.map((f) => [f.name, f]));

/** ggml's names for its type ids (for error messages about types we do not implement). */
const GGML_TYPE_NAMES: Record<number, string> = {
  0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
  10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
  16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS",
  24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16",
  34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
};

function supportedList(): string {
  return QUANT_FORMATS.map((f) => `${f.name} (${f.type})`).join(", ");
}

/** ggml's name for a type id, or "unknown" (for messages). */
export function ggmlTypeName(type: number): string {
  return GGML_TYPE_NAMES[type] ?? "unknown";
}

/** The format for a ggml type id; throws naming the id and its ggml name if moestream does not support it. */
export function quantFormat(type: number): QuantFormat {
  const f = BY_TYPE.get(type);
  if (f === undefined) {
    throw new Error(`unsupported ggml tensor type ${type} (${ggmlTypeName(type)}); supported: ${supportedList()}`);
  }
  return f;
}

/** The format with ggml's name (case-insensitive, e.g. "Q4_K", "q4_k"); throws if unsupported. */
export function quantByName(name: string): QuantFormat {
  const f = BY_NAME.get(name.toUpperCase());
  if (f === undefined) throw new Error(`unsupported quant type "${name}"; supported: ${supportedList()}`);
  return f;
}

/** Bytes of a row of n values of the given type; throws if n is not a whole number of blocks. */
export function rowBytes(type: number, n: number): number {
  const f = quantFormat(type);
  if (!Number.isInteger(n) || n < 0 || n % f.blockSize !== 0) {
    throw new Error(`${f.name}: row length ${n} is not a multiple of the block size ${f.blockSize}`);
  }
  return (n / f.blockSize) * f.bytesPerBlock;
}
