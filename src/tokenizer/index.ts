// Tokenizer for GGUF vocabularies: byte-level BPE ("gpt2", pre-tokenized as tokenizer.ggml.pre selects)
// and SentencePiece ("llama").
export {
  Tokenizer,
  type TokenizerOptions,
  type EncodeOptions,
  type DecodeOptions,
} from "./tokenizer.js";
export { StreamDecoder } from "./stream-decoder.js";
export { TokenType, TokenAttr } from "./token-types.js";
export { TokenizerKeys } from "./metadata.js";
export { BytePairEncoder, type BpeStats } from "./bpe.js";
export { BYTE_TO_UNICODE, bytesToUnicode, unicodeToByte, unicodeToBytes, textToByteLevel } from "./byte-level.js";
export { QWEN2_SPLIT_PATTERN, PRE_TOKENIZER_NAMES, preTokenizer, pretokenizeQwen2, normalizeNFC, type PreTokenizer } from "./pretokenize.js";
export {
  qwen3TokenizerMetadata,
  qwen3TokenizerFiles,
  doesTokenLookSpecial,
  QWEN3_VOCAB_SIZE,
} from "./qwen3-vocab.js";
