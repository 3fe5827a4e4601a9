// Kimi-K2's pre-tokenizer ("kimi-k2"), ported from llama.cpp's hand-written splitter
// (unicode.cpp unicode_regex_split_custom_kimi_k2), which stands in for tiktoken's pattern
//   [\p{Han}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|...)?
//   |[^\r\n\p{L}\p{N}]?[\p{Lu}...]+[\p{Ll}...]*(?i:'s|...)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Like llama.cpp, a word is any run of non-Han letters (no upper/lower distinction, marks not letters).

const LETTER = /\p{L}/u;
const NUMBER = /\p{N}/u;
const WHITESPACE = /\p{White_Space}/u;

/** llama.cpp's unicode_cpt_is_han: CJK ideograph blocks. */
function isHan(c: number): boolean {
  return (
    (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) || (c >= 0x20000 && c <= 0x2a6df) ||
    (c >= 0x2a700 && c <= 0x2b73f) || (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b820 && c <= 0x2ceaf) ||
    (c >= 0x2ceb0 && c <= 0x2ebef) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f)
  );
}

const F_LETTER = 1;
const F_NUMBER = 2;
const F_WS = 4;
const F_HAN = 8;
/** Any code point in range (llama.cpp's flags are never all zero inside the text). */
const F_IN = 16;

export function splitKimiK2(text: string): string[] {
  const cps = Array.from(text);
  const n = cps.length;
  const code = new Int32Array(n);
  const flags = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const ch = cps[i];
    const c = ch.codePointAt(0)!;
    code[i] = c;
    let f = F_IN;
    if (isHan(c)) f |= F_HAN;
    if (LETTER.test(ch)) f |= F_LETTER;
    else if (NUMBER.test(ch)) f |= F_NUMBER;
    if (WHITESPACE.test(ch)) f |= F_WS;
    flags[i] = f;
  }
  const fl = (p: number): number => (p < n ? flags[p] : 0);
  const cp = (p: number): number => (p < n ? code[p] : -1);
  const word = (p: number): boolean => (fl(p) & (F_LETTER | F_HAN)) === F_LETTER;
  const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 32 : c);

  const out: string[] = [];
  let prevEnd = 0;
  const add = (end: number): void => {
    if (end > prevEnd) out.push(cps.slice(prevEnd, end).join(""));
    prevEnd = end;
  };

  for (let pos = 0; pos < n; ) {
    const c = code[pos];
    const f = flags[pos];
    // [\p{Han}]+
    if (f & F_HAN) {
      while (fl(pos) & F_HAN) pos++;
      add(pos);
      continue;
    }
    // one optional leading [^\r\n\p{L}\p{N}], then a run of non-Han letters, then a contraction
    const canLead = !(c === 0x0d || c === 0x0a || f & (F_LETTER | F_NUMBER));
    if (word(pos) || (canLead && word(pos + 1))) {
      if (canLead) pos++;
      while (word(pos)) pos++;
      if (cp(pos) === 0x27 && pos + 1 < n) {
        const a = lower(cp(pos + 1));
        if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) pos += 2; // s t m d
        else if (pos + 2 < n) {
          const b = lower(cp(pos + 2));
          if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) pos += 3; // re ve ll
        }
      }
      add(pos);
      continue;
    }
    // \p{N}{1,3}
    if (f & F_NUMBER) {
      let ini = pos;
      while (fl(pos) & F_NUMBER) {
        if (++pos - ini >= 3) {
          add(pos);
          ini = pos;
        }
      }
      add(pos);
      continue;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    let f2 = c === 0x20 ? fl(pos + 1) : f;
    const other = (x: number): boolean => !(x & (F_WS | F_LETTER | F_NUMBER)) && (x & F_IN) !== 0;
    if (other(f2)) {
      if (c === 0x20) pos++;
      while (other(f2)) f2 = fl(++pos);
      while (cp(pos) === 0x0d || cp(pos) === 0x0a) pos++;
      add(pos);
      continue;
    }
    let nws = 0;
    let lastNl = 0;
    while (fl(pos + nws) & F_WS) {
      const w = cp(pos + nws);
      if (w === 0x0d || w === 0x0a) lastNl = pos + nws + 1;
      nws++;
    }
    // \s*[\r\n]+
    if (lastNl > 0) {
      pos = lastNl;
      add(pos);
      continue;
    }
    // \s+(?!\S)
    if (nws > 1 && pos + nws < n) {
      pos += nws - 1;
      add(pos);
      continue;
    }
    // \s+
    if (nws > 0) {
      pos += nws;
      add(pos);
      continue;
    }
    add(++pos);
  }
  return out;
}
