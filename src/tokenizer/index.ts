// Byte-level BPE tokenizer for GGUF "gpt2" vocabularies with the Qwen2 pre-tokenizer (Qwen3).
export {
  Tokenizer,
  QWEN2_PRE_NAMES,
  type TokenizerOptions,
  type EncodeOptions,
  type DecodeOptions,
} from "./tokenizer.js";
export { StreamDecoder } from "./stream-decoder.js";
export { TokenType, TokenAttr } from "./token-types.js";
export { TokenizerKeys } from "./metadata.js";
export { BytePairEncoder, type BpeStats } from "./bpe.js";
export { BYTE_TO_UNICODE, bytesToUnicode, unicodeToByte, unicodeToBytes, textToByteLevel } from "./byte-level.js";
export { QWEN2_SPLIT_PATTERN, pretokenizeQwen2, normalizeNFC } from "./pretokenize.js";
export {
  qwen3TokenizerMetadata,
  qwen3TokenizerFiles,
  doesTokenLookSpecial,
  QWEN3_VOCAB_SIZE,
} from "./qwen3-vocab.js";
