// Typed reads of tokenizer metadata keys: a missing required key or a value of the wrong type is a ModelError
// naming the key and what it holds.
import type { GGUFMetadata, GGUFMetaValue } from "../format/gguf/types.js";
import { ModelError } from "../util/errors.js";

/** GGUF keys read by the tokenizer. */
export const TokenizerKeys = {
  model: "tokenizer.ggml.model",
  pre: "tokenizer.ggml.pre",
  tokens: "tokenizer.ggml.tokens",
  tokenType: "tokenizer.ggml.token_type",
  merges: "tokenizer.ggml.merges",
  scores: "tokenizer.ggml.scores",
  addSpacePrefix: "tokenizer.ggml.add_space_prefix",
  bosId: "tokenizer.ggml.bos_token_id",
  eosId: "tokenizer.ggml.eos_token_id",
  eotId: "tokenizer.ggml.eot_token_id",
  eomId: "tokenizer.ggml.eom_token_id",
  unkId: "tokenizer.ggml.unknown_token_id",
  sepId: "tokenizer.ggml.seperator_token_id",
  padId: "tokenizer.ggml.padding_token_id",
  maskId: "tokenizer.ggml.mask_token_id",
  fimPreId: "tokenizer.ggml.fim_pre_token_id",
  fimSufId: "tokenizer.ggml.fim_suf_token_id",
  fimMidId: "tokenizer.ggml.fim_mid_token_id",
  fimPadId: "tokenizer.ggml.fim_pad_token_id",
  fimRepId: "tokenizer.ggml.fim_rep_token_id",
  fimSepId: "tokenizer.ggml.fim_sep_token_id",
  addBos: "tokenizer.ggml.add_bos_token",
  addEos: "tokenizer.ggml.add_eos_token",
  chatTemplate: "tokenizer.chat_template",
} as const;

const INT_TYPES = new Set(["u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64"]);

function describe(v: GGUFMetaValue): string {
  return v.type === "array" ? `array of ${v.itemType}` : v.type;
}

function badType(key: string, v: GGUFMetaValue, expected: string): ModelError {
  return new ModelError("TOKENIZER_BAD_METADATA", `metadata key ${key} has type ${describe(v)}, expected ${expected}`);
}

export function missing(key: string): ModelError {
  return new ModelError("TOKENIZER_MISSING_METADATA", `metadata key ${key} is missing`);
}

export function getString(md: GGUFMetadata, key: string, required: true): string;
export function getString(md: GGUFMetadata, key: string, required: false): string | undefined;
export function getString(md: GGUFMetadata, key: string, required: boolean): string | undefined {
  const v = md.get(key);
  if (v === undefined) {
    if (required) throw missing(key);
    return undefined;
  }
  if (v.type !== "string") throw badType(key, v, "string");
  return v.value;
}

export function getStringArray(md: GGUFMetadata, key: string): string[] {
  const v = md.get(key);
  if (v === undefined) throw missing(key);
  if (v.type !== "array" || v.itemType !== "string") throw badType(key, v, "array of string");
  return v.value;
}

export function getIntArray(md: GGUFMetadata, key: string): number[] | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (v.type !== "array" || !INT_TYPES.has(v.itemType)) throw badType(key, v, "array of i32");
  if (v.itemType === "u64" || v.itemType === "i64") return (v.value as bigint[]).map((x) => Number(x));
  return v.value as number[];
}

export function getFloatArray(md: GGUFMetadata, key: string): number[] {
  const v = md.get(key);
  if (v === undefined) throw missing(key);
  if (v.type !== "array" || (v.itemType !== "f32" && v.itemType !== "f64")) throw badType(key, v, "array of f32");
  return v.value as number[];
}

export function getUint(md: GGUFMetadata, key: string): number | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (!INT_TYPES.has(v.type)) throw badType(key, v, "u32");
  const n = Number(v.value as number | bigint);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new ModelError("TOKENIZER_BAD_METADATA", `metadata key ${key} = ${String(v.value)} is not a valid token id`);
  }
  return n;
}

export function getBool(md: GGUFMetadata, key: string): boolean | undefined {
  const v = md.get(key);
  if (v === undefined) return undefined;
  if (v.type !== "bool") throw badType(key, v, "bool");
  return v.value;
}

// ---------------------------------------------------------------------------------------------
// llama.cpp's text-based detection of special tokens (llama-vocab.cpp, llama_vocab::impl::load)

// Candidate texts, in llama.cpp's order; the first one present in the vocabulary is taken.
