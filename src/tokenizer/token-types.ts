// GGUF token types and llama.cpp's token attribute flags.

/** tokenizer.ggml.token_type values. */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** llama.cpp's llama_token_attr bit flags. */
export const TokenAttr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  NORMALIZED: 1 << 6,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
  SINGLE_WORD: 1 << 9,
} as const;

/** The attribute a token type maps to (llama.cpp: token_to_attr). */
export function attrOfType(t: number): number {
  switch (t) {
    case TokenType.NORMAL: return TokenAttr.NORMAL;
    case TokenType.UNKNOWN: return TokenAttr.UNKNOWN;
    case TokenType.CONTROL: return TokenAttr.CONTROL;
    case TokenType.USER_DEFINED: return TokenAttr.USER_DEFINED;
    case TokenType.UNUSED: return TokenAttr.UNUSED;
    case TokenType.BYTE: return TokenAttr.BYTE;
    default: return TokenAttr.UNDEFINED;
  }
}
