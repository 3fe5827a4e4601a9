// GPT-2 byte-level mapping: every byte 0..255 is shown as one printable Unicode character, so a
// byte-level BPE vocabulary can be stored as ordinary strings. The printable bytes "!".."~",
// "¡".."¬", "®".."ÿ" map to themselves; the other 68 bytes map, in increasing order, to
// U+0100, U+0101, ... (so " " is "Ġ" U+0120 and "\n" is "Ċ" U+010A).

function buildTables(): { byteToChar: string[]; charToByte: Int16Array } {
  const byteToCode = new Int32Array(256).fill(-1);
  for (let b = 0x21; b <= 0x7e; b++) byteToCode[b] = b;
  for (let b = 0xa1; b <= 0xac; b++) byteToCode[b] = b;
  for (let b = 0xae; b <= 0xff; b++) byteToCode[b] = b;
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (byteToCode[b] < 0) byteToCode[b] = 256 + n++;
  }
  const byteToChar: string[] = new Array(256);
  // Every mapped code point is below 256 + 68 = 324.
  const charToByte = new Int16Array(324).fill(-1);
  for (let b = 0; b < 256; b++) {
    byteToChar[b] = String.fromCharCode(byteToCode[b]);
    charToByte[byteToCode[b]] = b;
  }
  return { byteToChar, charToByte };
}

const TABLES = buildTables();

/** byte -> its one-character byte-level form. */
export const BYTE_TO_UNICODE: readonly string[] = TABLES.byteToChar;

/** The byte a byte-level character stands for, or -1 if `code` is not a byte-level character. */
export function unicodeToByte(code: number): number {
  return code >= 0 && code < TABLES.charToByte.length ? TABLES.charToByte[code] : -1;
}

/** Byte-level string of raw bytes (one character per byte). */
export function bytesToUnicode(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += TABLES.byteToChar[bytes[i]];
  return s;
}

const utf8Encoder = new TextEncoder();

/** Byte-level form of a text's UTF-8 encoding (lone surrogates encode as U+FFFD). */
export function textToByteLevel(text: string): string {
  return bytesToUnicode(utf8Encoder.encode(text));
}

/**
 * Raw bytes of a byte-level string. A character that is not a byte-level character (cannot occur
 * in a well-formed byte-level vocabulary) contributes its own UTF-8 encoding.
 */
export function unicodeToBytes(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const b = c < TABLES.charToByte.length ? TABLES.charToByte[c] : -1;
    if (b >= 0) {
      out.push(b);
      continue;
    }
    // Not a byte-level character: keep its UTF-8 bytes (surrogate pairs taken whole).
    const cp = s.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    if (ch.length === 2) i++;
    for (const x of utf8Encoder.encode(ch)) out.push(x);
  }
  return Uint8Array.from(out);
}
