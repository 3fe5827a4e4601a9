// HF tokenizer files (tokenizer.json + tokenizer_config.json) turned into the tokenizer metadata llama.cpp's
// convert_hf_to_gguf.py writes for a byte-level BPE vocabulary:
// - Model.get_vocab_base: one token per id in range(vocab_size); ids absent from the HF vocab become
//   "[PAD{id}]" of type UNUSED; added tokens that are `special`, or that look special
//   (does_token_look_special: "<|...|>", "<｜...｜>", "<unused...>", "<pad>", "<mask>", ...), are
//   CONTROL, other added tokens USER_DEFINED (with "▁" turned into " "); the rest NORMAL.
// - gguf.SpecialVocab: merges as "a b" (a space inside a part written as U+0120); bos / eos / pad from
//   tokenizer_config.json's <typ>_token, else config.json's <typ>_token_id; add_bos_token /
//   add_eos_token and chat_template from tokenizer_config.json.

import type { GGUFMetadata } from "../format/gguf/types.js";
import { ModelError } from "../util/errors.js";
import { TokenType } from "./token-types.js";

interface HFAddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
}

export interface HFTokenizerJson {
  added_tokens: HFAddedToken[];
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[] };
}

export interface HFTokenizerConfig {
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  unk_token?: string | { content: string } | null;
  chat_template?: string;
}

export interface HFTokenizerFiles {
  json: HFTokenizerJson;
  config: HFTokenizerConfig;
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

function build(files: HFTokenizerFiles, vocabSize: number, configBosId: number | undefined): Built {
  const { json, config } = files;
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
    throw new ModelError("TOKENIZER_BAD_VOCAB", `vocabSize ${vocabSize} is too small: the tokenizer has token id ${maxId}`);
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
      // (convert re-encodes non-normalized added tokens through the HF tokenizer; for every Qwen3 and
      // DeepSeek-V3 added token that round trip is the identity.)
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
  const bos = within(idOfAdded(tokenContent(config.bos_token))) ?? within(configBosId);
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

/** A tokenizer converter: call it with a vocabulary size for fresh GGUF metadata (the build is cached). */
export type HFTokenizerMetadataFn = (vocabSize?: number) => GGUFMetadata;

/**
 * Tokenizer metadata from HF tokenizer files, key for key as convert_hf_to_gguf.py writes it for a
 * byte-level BPE ("gpt2") vocabulary (in the same order). `pre` is the tokenizer.ggml.pre value
 * convert_hf_to_gguf.py picks for the tokenizer; `configBosId` is config.json's bos_token_id, used when
 * tokenizer_config.json names no BOS token. Each call returns a fresh Map with fresh arrays.
 */
export function hfTokenizerMetadata(
  load: () => HFTokenizerFiles,
  opts: { pre: string; defaultVocabSize: number; configBosId?: number },
): HFTokenizerMetadataFn {
  const builtBySize = new Map<number, Built>();
  let files: HFTokenizerFiles | undefined;
  return (vocabSize = opts.defaultVocabSize) => {
    if (!Number.isInteger(vocabSize) || vocabSize <= 0) {
      throw new ModelError("TOKENIZER_BAD_VOCAB", `vocabSize must be a positive integer, got ${vocabSize}`);
    }
    let b = builtBySize.get(vocabSize);
    if (b === undefined) {
      b = build((files ??= load()), vocabSize, opts.configBosId);
      builtBySize.set(vocabSize, b);
    }
    return toMetadata(b, opts.pre);
  };
}

function toMetadata(b: Built, pre: string): GGUFMetadata {
  const md: GGUFMetadata = new Map();
  md.set("tokenizer.ggml.model", { type: "string", value: "gpt2" });
  md.set("tokenizer.ggml.pre", { type: "string", value: pre });
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
