// A tiny synthetic GGUF tokenizer: the 256 byte-level characters plus chosen extra tokens and merges.
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import { BYTE_TO_UNICODE, TokenType } from "../../src/tokenizer/index.js";

export interface SmallVocab {
  md: GGUFMetadata;
  id: (text: string) => number;
}

export function smallVocab(
  extra: { text: string; type?: number }[],
  merges: string[],
  keys: Record<string, unknown> = {},
): SmallVocab {
  const tokens = [...BYTE_TO_UNICODE, ...extra.map((e) => e.text)];
  const types = [...BYTE_TO_UNICODE.map(() => TokenType.NORMAL), ...extra.map((e) => e.type ?? TokenType.NORMAL)];
  const md: GGUFMetadata = new Map();
  md.set("tokenizer.ggml.model", { type: "string", value: "gpt2" });
  md.set("tokenizer.ggml.pre", { type: "string", value: "qwen2" });
  md.set("tokenizer.ggml.tokens", { type: "array", itemType: "string", value: tokens });
  md.set("tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: types });
  md.set("tokenizer.ggml.merges", { type: "array", itemType: "string", value: merges });
  for (const [k, v] of Object.entries(keys)) {
    if (typeof v === "number") md.set(k, { type: "u32", value: v });
    else if (typeof v === "boolean") md.set(k, { type: "bool", value: v });
    else if (typeof v === "string") md.set(k, { type: "string", value: v });
  }
  const index = new Map(tokens.map((t, i) => [t, i]));
  return {
    md,
    id: (text) => {
      const i = index.get(text);
      if (i === undefined) throw new Error(`no token ${text}`);
      return i;
    },
  };
}
