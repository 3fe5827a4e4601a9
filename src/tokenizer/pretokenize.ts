// Qwen2 pre-tokenizer: the split regex from Qwen's tokenizer.json,
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// written for JavaScript's `u` flag:
// - JS has no inline (?i:...): the contractions are expanded ASCII-case-insensitively, as llama.cpp
//   does for `tokenizer.ggml.pre = "qwen2"` ('[sS]|'[tT]|'[rR][eE]|...).
// - `\s` is Unicode White_Space, as in the Rust/Oniguruma regex behind HF tokenizers and in
//   llama.cpp's unicode tables. JS's own `\s` differs (it includes U+FEFF and misses U+0085), so we
//   spell it \p{White_Space} and `\S` as \P{White_Space}.
// Matches are emitted in order; any text between matches (none is possible with this regex, every
// character is matched by some branch) would be emitted as its own piece, as HF's "Isolated" split
// and llama.cpp's regex splitter both do.

const WS = "\\p{White_Space}";
const NWS = "\\P{White_Space}";

/** The Qwen2 split pattern as a JavaScript regex source (use with flags "gu"). */
export const QWEN2_SPLIT_PATTERN =
  "'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])" +
  "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+" +
  "|\\p{N}" +
  `| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*` +
  `|${WS}*[\\r\\n]+` +
  `|${WS}+(?!${NWS})` +
  `|${WS}+`;

const QWEN2_SPLIT = new RegExp(QWEN2_SPLIT_PATTERN, "gu");

/** Split text into pre-tokens with the Qwen2 regex (no normalization; see `normalizeText`). */
export function pretokenizeQwen2(text: string): string[] {
  const out: string[] = [];
  const re = QWEN2_SPLIT;
  re.lastIndex = 0;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const start = m.index;
    const s = m[0];
    if (start > last) out.push(text.slice(last, start));
    if (s.length === 0) {
      // Cannot happen with this pattern; guard against an endless loop anyway.
      re.lastIndex++;
      continue;
    }
    out.push(s);
    last = start + s.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/**
 * The HF tokenizer.json for Qwen2/Qwen3 declares an NFC normalizer that runs on each text segment
 * between added tokens, before pre-tokenization. llama.cpp applies no normalization for BPE vocabs.
 */
export function normalizeNFC(text: string): string {
  return text.normalize("NFC");
}
