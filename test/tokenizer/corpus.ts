// A varied text corpus for tokenizer parity tests.
import { rng } from "./helpers.js";

export const CORPUS: Record<string, string> = {
  prose:
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness. " +
    "The Mixture-of-Experts (MoE) architecture routes each token to a few experts; only 3B of 30B parameters are active.",
  contractions: "DON'T do that. I'Ll go. You're here, WE'VE won, she'd know, It's fine, 'S 'T 'RE 'VE 'M 'LL 'D 'x O'Neil's",
  contractionsMixed: "i'M I'm i'lL Y'ALL ca'n't ''s '''t",
  numbers: "1234567890 3.14159 1,000,000 -42 +7e-10 0x1F ٣٤٥ ½ ² ⅷ 𝟙𝟚𝟛",
  nfcCombining: "e\u0301 Cafe\u0301 A\u030A \u212B n\u0303o\u0308 \u1100\u1161\u11A8 \uFB01",
  nfcPrecomposed: "é Café Å ñö 각",
  chinese: "我想在apple工作1314151天～机器学习模型的推理速度非常重要。",
  japanese: "日本語のテキストをトークン化します。ｶﾀｶﾅ 半角 ひらがな",
  korean: "안녕하세요, 세계! 한국어 텍스트입니다.",
  arabic: "مرحبا بالعالم، هذا نص عربي مع أرقام ١٢٣.",
  hebrewThaiHindi: "שלום עולם ภาษาไทย नमस्ते दुनिया",
  russian: "нещо на Български и Русский язык",
  emoji: "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇺🇸 ❤️ 🚀 (normal) 😶‍🌫️ ✅ 🦙🦙",
  code:
    "def fib(n):\n\tif n < 2:\n\t\treturn n\n\treturn fib(n - 1) + fib(n - 2)\n\n" +
    "function add(a, b) {\n    return a + b; // sum\n}\n\nconst x = {\"k\": [1, 2, 3]};\n" +
    "#include <stdio.h>\nint main(void){printf(\"%d\\n\", 42);}\n",
  whitespace: "   \n\n\n \n a  b   c    \t\t \t\n\r\n\r\r\n  trailing   ",
  whitespaceOnly1: "   ",
  whitespaceOnly2: "\n\n\n",
  whitespaceOnly3: " \n ",
  unicodeSpaces: "a\u00A0b\u3000c\u2028d\u2029e\u2003f\u205Fg\u1680h \u00A0 i",
  controlChars: "\x00\x01\x02\x1b[31mred\x1b[0m\x7f\x08\x0b\x0c bell\x07 \u200b zero\u200bwidth \u200d\u200c",
  nel: "a\u0085b  \u0085 x \u0085\u0085",
  bom: "\uFEFFstart x \uFEFF y\uFEFF",
  specialTokens: "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
  specialAdjacent: "<|im_start|><|im_end|><|endoftext|>x<|endoftext|>",
  think: "<think>\nLet me reason step by step.\n</think>\n\nThe answer is 42.",
  toolCall: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><tool_response>ok</tool_response>",
  fim: "<|fim_prefix|>def f(<|fim_suffix|>):<|fim_middle|>x<|repo_name|>r<|file_sep|>",
  partialSpecial: "<|im_start <|im_end| <think </think <|endoftext",
  punctuation: "''''''```````\"\"\"\"......!!!!!!?????? ------======= (a) [b] {c} <d> @e #f $g %h ^i &j *k",
  mixedScripts: "Hello世界مرحباПривет123abc😀x",
  urls: "https://example.com/path?q=1&r=2#frag mailto:a@b.c C:\\Users\\x\\file.txt",
  long: "word ".repeat(2000),
};

/** 4 KB of bytes 0..255 read as Latin-1 characters. */
export function latin1Random(seed = 1, length = 4096): string {
  const r = rng(seed);
  let s = "";
  for (let i = 0; i < length; i++) s += String.fromCharCode(Math.floor(r() * 256));
  return s;
}

const POOL = [
  "a", "Z", "é", "e\u0301", "ß", "İ", "ſ", "ǅ", "0", "9", "٣", "½", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00A0", "\u3000",
  "'", "'s", "'T", "'ll", "'RE", ".", ",", "!", "?", "-", "_", "(", ")", "{", "}", "<", ">", "/", "\\", "\"", "`",
  "日", "本", "の", "한", "ب", "ש", "ก", "न", "्", "\u0301", "\u200d", "\u200b", "👍", "🏽", "🇺", "🇸", "❤", "\uFE0F",
  "\x00", "\x1b", "\x7f", "\u0085", "\uFEFF", "$", "€", "+", "=", "|", "~", "^",
  "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<|endoftext|>",
];

/**
 * Fragments the other families' pre-tokenizers tell apart: digit runs, contractions after words, case
 * changes in and out of ASCII, combining marks, CJK / kana / hangul runs, full-width and CJK punctuation,
 * the characters DeepSeek's literal classes list, DeepSeek-V3 / GLM / Kimi special tokens.
 */
export const FAMILIES_POOL = [
  ...POOL, "12", "345", "6789", "2024", " 7", "don", "'t", "it's", "THEY'RE", "İ", "Ω", "ÉCOLE", "école", "naïve", "ΣΊΣΥΦΟΣ",
  "Привет", "приВет", "é", "ä", "कि", "漢字", "中文", "かな", "カナ", "ｶﾅ", "한글", "’", "“", "—", "…", "。", "，", "、",
  "！", "Ｆｕｌｌ", "µ", "ℝ", "\u212A", "\u1FD3", "\u2126", "𝟙", "①", "Ⅻ", "𐐀", "/", "//", "'", "<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>",
  "[gMASK]", "<sop>", "<|user|>", "<|im_middle|>",
];

/** Random strings over a pool of characters and fragments from every class the regex cares about. */
export function fuzzStrings(seed: number, count: number, maxParts = 24, pool: readonly string[] = POOL): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(r() * maxParts);
    let s = "";
    for (let j = 0; j < n; j++) s += pool[Math.floor(r() * pool.length)];
    out.push(s);
  }
  return out;
}
