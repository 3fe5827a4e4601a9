import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BYTE_TO_UNICODE,
  bytesToUnicode,
  textToByteLevel,
  unicodeToByte,
  unicodeToBytes,
} from "../../src/tokenizer/index.js";

test("byte-level map is a bijection onto 256 single characters", () => {
  assert.equal(BYTE_TO_UNICODE.length, 256);
  const seen = new Set<string>();
  for (let b = 0; b < 256; b++) {
    const c = BYTE_TO_UNICODE[b];
    assert.equal(c.length, 1);
    assert.ok(!seen.has(c));
    seen.add(c);
    assert.equal(unicodeToByte(c.charCodeAt(0)), b);
  }
});

test("byte-level map matches GPT-2's bytes_to_unicode", () => {
  assert.equal(BYTE_TO_UNICODE[0x20], "Ġ"); // U+0120
  assert.equal(BYTE_TO_UNICODE[0x0a], "Ċ"); // U+010A
  assert.equal(BYTE_TO_UNICODE[0x09], "ĉ");
  assert.equal(BYTE_TO_UNICODE[0x00], "Ā"); // U+0100
  assert.equal(BYTE_TO_UNICODE[0x7f], "ġ"); // 0x7F is the 34th unprintable byte -> U+0121
  assert.equal(BYTE_TO_UNICODE[0xad], "Ń"); // soft hyphen, the last unprintable -> U+0143
  assert.equal(BYTE_TO_UNICODE[0x41], "A");
  assert.equal(BYTE_TO_UNICODE[0xe9], "é");
  assert.equal(unicodeToByte("a".charCodeAt(0)), 0x61);
  assert.equal(unicodeToByte(0x20), -1); // a raw space is not a byte-level character
  assert.equal(unicodeToByte(0x144), -1);
});

test("text round-trips through the byte-level form", () => {
  for (const s of ["hello world", "héllo\n\t", "日本語", "👨‍👩‍👧", "\x00\x7f\u0085"]) {
    const bl = textToByteLevel(s);
    assert.equal(new TextDecoder().decode(unicodeToBytes(bl)), s);
  }
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(unicodeToBytes(bytesToUnicode(all)), all);
});

test("characters outside the byte-level alphabet decode to their own UTF-8", () => {
  assert.deepEqual(unicodeToBytes("a 日"), Uint8Array.from([0x61, 0x20, 0xe6, 0x97, 0xa5]));
  assert.deepEqual(unicodeToBytes("😀"), Uint8Array.from([0xf0, 0x9f, 0x98, 0x80]));
});
