import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Q8_0 } from "../../src/quant/q8_0.js";
import { f16ToF32 } from "../../src/util/f16.js";
import { gaussianRow, mixedScaleRow, specialBlocks, toHex } from "./data.js";
import { GOLDEN } from "./golden.js";

function encode(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / 32) * 34);
  Q8_0.quantizeRow(x, out, x.length);
  return out;
}
function decode(q: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  Q8_0.dequantRow(q, out, n);
  return out;
}
const i8 = (v: number) => v & 0xff;

test("Q8_0: layout constants", () => {
  assert.equal(Q8_0.type, 8);
  assert.equal(Q8_0.name, "Q8_0");
  assert.equal(Q8_0.blockSize, 32);
  assert.equal(Q8_0.bytesPerBlock, 34);
});

test("Q8_0: hand-computed block with d = 1 (roundf: halves away from zero)", () => {
  // amax = 127 -> d = 127/127 = 1 (f16 0x3c00), id = 1, q = roundf(x).
  const x = new Float32Array(32);
  x.set([127, -127, 63.5, -63.5, 2.5, -2.5, 0.5, -0.5, 1.4, -1.6, 0, 100.49]);
  const want = new Uint8Array(34);
  want.set([0x00, 0x3c]); // d = 1.0 as f16, little-endian
  want.set([127, -127, 64, -64, 3, -3, 1, -1, 1, -2, 0, 100].map(i8), 2);
  assert.equal(toHex(encode(x)), toHex(want));
  const back = decode(want, 32);
  assert.deepEqual(Array.from(back.subarray(0, 12)), [127, -127, 64, -64, 3, -3, 1, -1, 1, -2, 0, 100]);
});

test("Q8_0: hand-computed ramp block", () => {
  // x = k for k = -16..15, except k = +-8 replaced by +-0.25 (keeps clear of .5 ties).
  // amax = 16 -> d = 16/127 = 0.1259842..., stored as f16: 0.1259842/2^-3 = 1.00787 -> mantissa 8.06 -> 8: 0x3008.
  // id = 1/d = 7.9375, q = round(7.9375 k) = 8k - k/16 rounded: 8k for |k| <= 7, 8k-1 for k = 9..15,
  // 8k+1 for k = -16..-9; and round(+-0.25 * 7.9375) = +-2.
  const x = new Float32Array(32);
  const q: number[] = [];
  for (let j = 0; j < 32; j++) {
    const k = j - 16;
    if (k === 8 || k === -8) {
      x[j] = k > 0 ? 0.25 : -0.25;
      q.push(k > 0 ? 2 : -2);
    } else {
      x[j] = k;
      q.push(k >= 9 ? 8 * k - 1 : k <= -9 ? 8 * k + 1 : 8 * k);
    }
  }
  assert.equal(q[0], -127);
  const want = new Uint8Array(34);
  want.set([0x08, 0x30]);
  want.set(q.map(i8), 2);
  assert.equal(toHex(encode(x)), toHex(want));
  const d = f16ToF32(0x3008);
  assert.equal(d, 0.1259765625);
  assert.deepEqual(Array.from(decode(want, 32)), q.map((v) => Math.fround(v * d)));
});

test("Q8_0: all-zero block encodes to zero bytes and decodes to zeros", () => {
  const q = encode(new Float32Array(64));
  assert.ok(q.every((b) => b === 0));
  assert.ok(decode(q, 64).every((v) => v === 0));
});

test("Q8_0: matches ggml's quantize_row_q8_0_ref on golden inputs", () => {
  for (const [name, x] of specialBlocks()) assert.equal(toHex(encode(x)), GOLDEN.Q8_0[name], name);
  const sha = createHash("sha256").update(encode(mixedScaleRow())).digest("hex");
  assert.equal(sha, GOLDEN.Q8_0.mixedSha256);
});

test("Q8_0: round-trip error on gaussian data (normalised MSE < 4e-5, measured ~2.7e-5)", () => {
  const x = gaussianRow(32 * 4096, 1, 0.05);
  const y = decode(encode(x), x.length);
  let e = 0;
  let t = 0;
  for (let i = 0; i < x.length; i++) {
    e += (x[i] - y[i]) ** 2;
    t += x[i] ** 2;
  }
  assert.ok(e / t < 4e-5, `nmse ${e / t}`);
  assert.ok(e / t > 1e-6, `nmse ${e / t} implausibly small`);
  // Per-value bound: |x - y| <= d/2 + f16 rounding of d (relative 2^-11) * 127.
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = amax / 127;
    for (let j = 0; j < 32; j++) assert.ok(Math.abs(x[b + j] - y[b + j]) <= d * 0.5 + amax * 2 ** -11 + 1e-12);
  }
});

test("Q8_0: re-quantizing decoded values reproduces them exactly", () => {
  const x = gaussianRow(32 * 1024, 2, 0.1);
  const q = encode(x);
  const y = decode(q, x.length);
  const q2 = encode(y);
  assert.deepEqual(decode(q2, x.length), y);
  assert.equal(toHex(q2), toHex(q));
});

test("Q8_0: edge rows", () => {
  // constant: every q = 127, value = 127 * f16(c/127) ~ c within f16 precision
  const c = new Float32Array(32).fill(-3.25);
  const y = decode(encode(c), 32);
  for (const v of y) assert.ok(Math.abs(v + 3.25) <= 3.25 * 2 ** -10, `${v}`);
  // one large outlier: it survives with relative error <= 2^-10; small values flush to ~0
  const o = gaussianRow(32, 3, 1e-3);
  o[5] = 500;
  const yo = decode(encode(o), 32);
  assert.ok(Math.abs(yo[5] - 500) <= 500 * 2 ** -10);
  for (let j = 0; j < 32; j++) if (j !== 5) assert.ok(Math.abs(yo[j] - o[j]) <= 500 / 127 / 2 + 1e-9);
  // negative-only: decoded values are all <= 0
  const neg = new Float32Array(32).map((_, j) => -1 - j * 0.1);
  const yn = decode(encode(neg), 32);
  for (let j = 0; j < 32; j++) assert.ok(yn[j] < 0 && Math.abs(yn[j] - neg[j]) < 4.1 / 127);
});

test("Q8_0: dot equals the f64 sum of dequantized values times x", () => {
  const w = gaussianRow(32 * 64, 4, 0.02);
  const x = gaussianRow(32 * 64, 5, 1);
  const q = encode(w);
  const y = decode(q, w.length);
  let want = 0;
  for (let i = 0; i < w.length; i++) want += y[i] * x[i];
  assert.ok(Math.abs(Q8_0.dot(q, x, w.length) - want) <= 1e-12 * Math.max(1, Math.abs(want)));
});

test("Q8_0: works on subarrays at odd byte offsets; rejects partial blocks", () => {
  const x = gaussianRow(64, 6);
  const q = encode(x);
  const buf = new Uint8Array(q.length + 3);
  buf.set(q, 3);
  const y = new Float32Array(64);
  Q8_0.dequantRow(buf.subarray(3), y, 64);
  assert.deepEqual(y, decode(q, 64));
  const dst = new Uint8Array(q.length + 1);
  Q8_0.quantizeRow(x, dst.subarray(1), 64);
  assert.equal(toHex(dst.subarray(1)), toHex(q));
  assert.throws(() => Q8_0.quantizeRow(x, dst, 40), /multiple of 32/);
});
