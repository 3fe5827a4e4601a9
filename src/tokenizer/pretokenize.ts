// Pre-tokenizers of GGUF "gpt2" (byte-level BPE) vocabularies, chosen by tokenizer.ggml.pre, as
// llama.cpp runs them (llama-vocab.cpp llm_tokenizer_bpe + unicode.cpp unicode_regex_split):
// - a list of regexes applied in turn; each splits every piece left by the previous one into its
//   matches and the text between them (HF's Sequence of Split with behavior "Isolated");
// - the regexes are llama.cpp's adaptations of the tokenizer.json patterns: JS has no inline
//   (?i:...), so contractions are expanded ASCII-case-insensitively ('[sS]|'[tT]|...);
// - `\s` is Unicode White_Space, as in llama.cpp's tables and the Rust/Oniguruma regex behind HF
//   tokenizers. JS's own `\s` differs (it includes U+FEFF and misses U+0085), so we spell it
//   \p{White_Space}. A regex without a Unicode category runs in llama.cpp as std::wregex on text
//   whose non-ASCII whitespace was replaced by U+000B, so such whitespace matches `\s` only, never a
//   literal character of a class ("wsAsVT" below does the same);
// - the unicode categories (\p{L}, \p{N}, \p{P}, \p{S}, \p{M}) are the Unicode general categories, which
//   is what llama.cpp's collapsed-text matching amounts to (one category per code point).
// Two families' patterns need Unicode case classes (\p{Lu}, \p{Ll}) that llama.cpp's std::regex cannot
// express: gpt-4o (o200k) and Kimi-K2 (a hand-written splitter in llama.cpp, ported in kimi-k2.ts).
// For them we run the model's own pattern (as tiktoken does) and keep llama.cpp's version for
// { llamaCpp: true }; the two differ on non-ASCII case changes and combining marks.
// Non-ASCII characters of the patterns are written as escapes: an editor's NFC pass would change
// ranges such as U+1FD0-U+1FD3.

import { splitKimiK2 } from "./kimi-k2.js";

const WS = "\\p{White_Space}";
const NWS = "\\P{White_Space}";

/** llama.cpp's regex source with \s / \S spelled as Unicode White_Space, compiled with "gu". */
function re(source: string): RegExp {
  return new RegExp(source.replaceAll("\\s", WS).replaceAll("\\S", NWS), "gu");
}

const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/** Qwen2's split pattern (tokenizer.json: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+). */
export const QWEN2_SPLIT_PATTERN = re(
  `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
).source;

/** Qwen3.5: Qwen2's pattern with combining marks (\p{M}) kept inside words. */
const QWEN35 = re(
  `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
);

/** GLM-4 ("glm4" / "chatglm-bpe"; Llama 3's pattern): Qwen2's pattern with digits in runs of up to three. */
const LLAMA3 = re(
  `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
);

/** GPT-2 (OLMo's "olmo"): no contraction case-folding, digits in runs, one optional leading space. */
const GPT2 = re(`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)`);

/**
 * DeepSeek-V3 ("deepseek-v3"): three splits in turn, digits in runs of up to three, CJK/kana runs, then
 * words that may start with one ASCII punctuation character.
 */
const DEEPSEEK_V3 = [
  re("\\p{N}{1,3}"),
  re("[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+"),
  re(
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ),
];

/** DeepSeek LLM / DeepSeek-V2 ("deepseek-llm"): five splits; the first four match literal characters (wsAsVT). */
const DEEPSEEK_LLM = [
  re("[\\r\\n]"),
  re(
    "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377" +
      "\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5" +
      "\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D" +
      "\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4" +
      "\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D" +
      "\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4" +
      "\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06" +
      "\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}" +
      "\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+",
  ),
  re("\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+"),
  re("\\s+$"),
  re("[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+"),
  re("\\p{N}+"),
];
const DEEPSEEK_LLM_VT = [true, true, true, true, true, false];

/** DeepSeek Coder ("deepseek-coder"): five splits, letters and punctuation runs with one optional space, digits one by one. */
const DEEPSEEK_CODER = [
  re("[\\r\\n]"),
  re("\\s?\\p{L}+"),
  re("\\s?\\p{P}+"),
  re("[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+"),
  re("\\p{N}"),
];
const DEEPSEEK_CODER_VT = [true, false, false, true, false];

/**
 * GPT-4o / gpt-oss ("gpt-4o"): tiktoken's o200k pattern
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|...)?
 *   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * (Unicode case-insensitive: 's also matches 'ſ, U+017F).
 */
const UPPER = "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]";
const LOWER = "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]";
const CONTRACTIONS_I = "(?:'[sS\\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const GPT4O = re(
  `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+${CONTRACTIONS_I}?|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*${CONTRACTIONS_I}?` +
    `|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
);

/**
 * llama.cpp's adaptation of the o200k pattern (its std::regex has no \p{Lu}/\p{Ll}): "upper" and
 * "lower" case are told apart for ASCII only, any other letter counts as both, and marks are not letters.
 * It differs from tiktoken on non-ASCII case changes and on combining marks (Hindi, Thai, decomposed
 * accents); used with { llamaCpp: true }.
 */
const GPT4O_LLAMA = re(
  `[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])*(?:(?=\\p{L})[^A-Z])+${CONTRACTIONS}?` +
    `|[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])+(?:(?=\\p{L})[^A-Z])*${CONTRACTIONS}?` +
    `|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
);

/**
 * Kimi-K2 ("kimi-k2"): tiktoken's pattern from tokenization_kimi.py, the o200k one with Han runs taken
 * first and kept out of words ([...&&[^\p{Han}]], written with the `v` flag's class subtraction), and
 * [\r\n]* after punctuation runs.
 */
const NOT_HAN = (cls: string): string => `[${cls}--\\p{sc=Han}]`;
const KIMI_UPPER = NOT_HAN(UPPER);
const KIMI_LOWER = NOT_HAN(LOWER);
const KIMI = new RegExp(
  (
    `\\p{sc=Han}+|[^\\r\\n\\p{L}\\p{N}]?${KIMI_UPPER}*${KIMI_LOWER}+${CONTRACTIONS_I}?|[^\\r\\n\\p{L}\\p{N}]?${KIMI_UPPER}+${KIMI_LOWER}*${CONTRACTIONS_I}?` +
    `|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`
  ).replaceAll("\\s", WS).replaceAll("\\S", NWS),
  "gv",
);

/** Non-ASCII White_Space (all in the BMP, so replacing one keeps string offsets). */
const NON_ASCII_WS = /[\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]/g;

/** Split each piece into matches of `regex` and the text between them. */
function splitBy(pieces: string[], regex: RegExp, wsAsVT = false): string[] {
  const out: string[] = [];
  for (const piece of pieces) {
    const subject = wsAsVT ? piece.replace(NON_ASCII_WS, "\u000B") : piece;
    regex.lastIndex = 0;
    let last = 0;
    let m: RegExpExecArray | null;
    while ((m = regex.exec(subject)) !== null) {
      const len = m[0].length;
      if (len === 0) {
        // None of the patterns can match empty; guard against an endless loop anyway.
        regex.lastIndex++;
        continue;
      }
      if (m.index > last) out.push(piece.slice(last, m.index));
      out.push(piece.slice(m.index, m.index + len));
      last = m.index + len;
    }
    if (last < piece.length) out.push(piece.slice(last));
  }
  return out;
}

export interface PreTokenizer {
  /** The llama.cpp pre-tokenizer type (LLAMA_VOCAB_PRE_TYPE_*) the name maps to, lower case. */
  readonly type: string;
  /** Split raw text (no special tokens) into the pieces BPE runs on. */
  split(text: string): string[];
  /** The model's tokenizer.json has an NFC normalizer (llama.cpp does not normalise). */
  readonly nfc: boolean;
}

interface Spec {
  /** The model's own pre-tokenizer (tokenizer.json / tiktoken pattern). */
  split(text: string): string[];
  /** llama.cpp's, where it differs from the model's. */
  llamaCpp?: (text: string) => string[];
  nfc: boolean;
}

const single = (regex: RegExp) => (text: string) => splitBy([text], regex);

const TYPES: Record<string, Spec> = {
  qwen2: { split: single(new RegExp(QWEN2_SPLIT_PATTERN, "gu")), nfc: true },
  // No NFC for Qwen3.5: the HF tokenizer keeps decomposed marks (llama.cpp's qwen35 test vectors,
  // written by transformers for Qwen/Qwen3.5-9B-Instruct, tokenize "e\u0301" as two tokens).
  qwen35: { split: single(QWEN35), nfc: false },
  chatglm4: { split: single(LLAMA3), nfc: false },
  gpt2: { split: single(GPT2), nfc: false },
  deepseek3_llm: { split: (t) => DEEPSEEK_V3.reduce((p, r) => splitBy(p, r), [t]), nfc: false },
  deepseek_llm: { split: (t) => DEEPSEEK_LLM.reduce((p, r, i) => splitBy(p, r, DEEPSEEK_LLM_VT[i]), [t]), nfc: false },
  deepseek_coder: { split: (t) => DEEPSEEK_CODER.reduce((p, r, i) => splitBy(p, r, DEEPSEEK_CODER_VT[i]), [t]), nfc: false },
  gpt4o: { split: single(GPT4O), llamaCpp: single(GPT4O_LLAMA), nfc: false },
  kimi_k2: { split: single(KIMI), llamaCpp: splitKimiK2, nfc: false },
};

/** tokenizer.ggml.pre values we support, with the llama.cpp pre-tokenizer type each maps to. */
export const PRE_TOKENIZER_NAMES: Readonly<Record<string, string>> = {
  qwen2: "qwen2",
  "deepseek-r1-qwen": "qwen2",
  kormo: "qwen2",
  f2llmv2: "qwen2",
  megrez: "qwen2",
  qwen35: "qwen35",
  "deepseek-v3": "deepseek3_llm",
  "hunyuan-dense": "deepseek3_llm",
  "joyai-llm": "deepseek3_llm",
  hy_v4: "deepseek3_llm",
  "deepseek-llm": "deepseek_llm",
  "deepseek-coder": "deepseek_coder",
  glm4: "chatglm4",
  "chatglm-bpe": "chatglm4",
  "gpt-4o": "gpt4o",
  llama4: "gpt4o",
  "kimi-k2": "kimi_k2",
  olmo: "gpt2",
  "gpt-2": "gpt2",
};

/**
 * The pre-tokenizer a tokenizer.ggml.pre value selects, or undefined when we do not support it. With
 * `llamaCpp`, llama.cpp's own splitter where it differs from the model's (gpt-4o, kimi-k2).
 */
export function preTokenizer(pre: string, opts: { llamaCpp?: boolean } = {}): PreTokenizer | undefined {
  const type = Object.hasOwn(PRE_TOKENIZER_NAMES, pre) ? PRE_TOKENIZER_NAMES[pre] : undefined;
  if (type === undefined) return undefined;
  const spec = TYPES[type];
  return { type, split: (opts.llamaCpp ? spec.llamaCpp : undefined) ?? spec.split, nfc: spec.nfc };
}

const QWEN2 = TYPES.qwen2;

/** Split text into pre-tokens with the Qwen2 regex (no normalization). */
export function pretokenizeQwen2(text: string): string[] {
  return QWEN2.split(text);
}

/**
 * The HF tokenizer.json for Qwen2/Qwen3 declares an NFC normalizer that runs on each text segment
 * between added tokens, before pre-tokenization. llama.cpp applies no normalization for BPE vocabs.
 */
export function normalizeNFC(text: string): string {
  return text.normalize("NFC");
}
