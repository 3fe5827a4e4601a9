import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Q4_K } from "../../src/quant/q4_k.js";
import { Q6_K } from "../../src/quant/q6_k.js";
import type { QuantFormat } from "../../src/quant/types.js";
import { gaussianRow, mixedScaleRow, specialBlocks, toHex } from "./data.js";
import { GOLDEN } from "./golden.js";

const fr = Math.fround;

function encode(f: QuantFormat, x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / f.blockSize) * f.bytesPerBlock);
  f.quantizeRow(x, out, x.length);
  return out;
}
function decode(f: QuantFormat, q: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  f.dequantRow(q, out, n);
  return out;
}
function nmse(x: Float32Array, y: Float32Array): number {
  let e = 0;
  let t = 0;
  for (let i = 0; i < x.length; i++) {
    e += (x[i] - y[i]) ** 2;
    t += x[i] ** 2;
  }
  return e / t;
}

test("K-quant layout constants and byte sizes", () => {
  assert.deepEqual([Q4_K.type, Q4_K.name, Q4_K.blockSize, Q4_K.bytesPerBlock], [12, "Q4_K", 256, 144]);
  assert.deepEqual([Q6_K.type, Q6_K.name, Q6_K.blockSize, Q6_K.bytesPerBlock], [14, "Q6_K", 256, 210]);
  // 2 f16 + 12 scale bytes + 128 nibble bytes; 128 ql + 64 qh + 16 scales + f16 d
  assert.equal(2 + 2 + 12 + 256 / 2, 144);
  assert.equal(256 / 2 + 256 / 4 + 256 / 16 + 2, 210);
  assert.equal(encode(Q4_K, new Float32Array(512)).length, 288);
  assert.equal(encode(Q6_K, new Float32Array(512)).length, 420);
});

test("Q4_K: dequantizes a hand-built block per the block_q4_K layout", () => {
  const sc = [1, 2, 3, 4, 33, 40, 50, 63];
  const m = [0, 5, 10, 63, 32, 17, 48, 1];
  const q = (i: number) => (i * 7) % 16;
  const b = new Uint8Array(144);
  b.set([0x00, 0x3c, 0x00, 0x38]); // d = 1.0, dmin = 0.5
  // 12 scale bytes: 0..3 low 6 bits of sc[0..3] + top 2 bits of sc[4..7]; 4..7 same for mins;
  // 8..11 low nibble of sc[4..7] | low nibble of m[4..7] << 4.
  for (let j = 0; j < 4; j++) {
    b[4 + j] = sc[j] | ((sc[j + 4] >> 4) << 6);
    b[8 + j] = m[j] | ((m[j + 4] >> 4) << 6);
    b[12 + j] = (sc[j + 4] & 15) | ((m[j + 4] & 15) << 4);
  }
  // 128 bytes: chunk c (0..3) of 32 bytes holds values 64c..64c+31 in low nibbles, 64c+32..64c+63 in high.
  for (let c = 0; c < 4; c++) for (let l = 0; l < 32; l++) b[16 + 32 * c + l] = q(64 * c + l) | (q(64 * c + 32 + l) << 4);
  const y = decode(Q4_K, b, 256);
  for (let i = 0; i < 256; i++) {
    const j = i >> 5;
    assert.equal(y[i], fr(fr(1 * sc[j]) * q(i) - fr(0.5 * m[j])), `value ${i}`);
  }
});

test("Q6_K: dequantizes a hand-built block per the block_q6_K layout", () => {
  const s = Array.from({ length: 16 }, (_, j) => [1, -1, 2, -2, 7, -7, 31, -31, 64, -64, 100, -100, 126, 3, 127, -128][j]);
  const q = (i: number) => (i * 13 + 5) % 64;
  const b = new Uint8Array(210);
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const [a, c, e, g] = [q(128 * h + l), q(128 * h + 32 + l), q(128 * h + 64 + l), q(128 * h + 96 + l)];
      b[64 * h + l] = (a & 15) | ((e & 15) << 4);
      b[64 * h + 32 + l] = (c & 15) | ((g & 15) << 4);
      b[128 + 32 * h + l] = (a >> 4) | ((c >> 4) << 2) | ((e >> 4) << 4) | ((g >> 4) << 6);
    }
  }
  for (let j = 0; j < 16; j++) b[192 + j] = s[j] & 0xff;
  b.set([0x00, 0x38], 208); // d = 0.5
  const y = decode(Q6_K, b, 256);
  for (let i = 0; i < 256; i++) assert.equal(y[i], fr(fr(0.5 * s[i >> 4]) * (q(i) - 32)), `value ${i}`);
});

test("Q4_K: hand-derived encoding of a constant block", () => {
  // x = 0.5: min is clamped to 0, iscale = 15/0.5 = 30, every l = 15 with zero error, so scale = 1/30, min = 0.
  // Super-block: d = f16((1/30)/63) = f16(5.291e-4) = 2^-11 * 1.0836 -> mantissa 85.6 -> 86: 0x1056; dmin = 0.
  // Every 6-bit scale = 63, every min = 0; every nibble re-quantizes to round(0.5/(d*63)) = 15.
  const want = new Uint8Array(144);
  want.set([0x56, 0x10, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x0f, 0x0f, 0x0f, 0x0f]);
  want.fill(0xff, 16);
  const q = encode(Q4_K, new Float32Array(256).fill(0.5));
  assert.equal(toHex(q), toHex(want));
  for (const v of decode(Q4_K, q, 256)) assert.ok(Math.abs(v - 0.5) < 0.5 * 1e-3);
});

test("Q6_K: hand-derived encoding of a constant block", () => {
  // x = 0.5 in every sub-block of 16: max = 0.5, iscale = -32/0.5 = -64, every l = -32 (q = 0); with w = x^2
  // the least-squares scale is sum(w x l)/sum(w l^2) = -1/64, and no other trial scale does better.
  // Super-block: iscale = -128/(-1/64) = 8192, d = f16(1/8192) = 0x0800, each scale = round(8192 * -1/64) = -128.
  // Re-quantization: round(0.5/(2^-13 * -128)) = -32 -> q = 0, so ql = qh = 0. Decodes exactly to 0.5.
  const want = new Uint8Array(210);
  want.fill(0x80, 192, 208);
  want.set([0x00, 0x08], 208);
  const q = encode(Q6_K, new Float32Array(256).fill(0.5));
  assert.equal(toHex(q), toHex(want));
  assert.ok(decode(Q6_K, q, 256).every((v) => v === 0.5));
});

const cases: Array<[QuantFormat, number, number]> = [
  // format, nmse bound on gaussian data (measured: Q4_K 4.99e-3, Q6_K 3.07e-4), min fraction of blocks
  // for which re-quantizing the decoded values reproduces them exactly (measured 4095/4096, 4094/4096).
  [Q4_K, 6e-3, 0.99],
  [Q6_K, 4e-4, 0.99],
];

for (const [f, bound, idemFrac] of cases) {
  test(`${f.name}: matches ggml's quantize_row_${f.name}_ref on golden inputs`, () => {
    for (const [name, x] of specialBlocks()) assert.equal(toHex(encode(f, x)), GOLDEN[f.name][name], name);
    const sha = createHash("sha256").update(encode(f, mixedScaleRow())).digest("hex");
    assert.equal(sha, GOLDEN[f.name].mixedSha256);
  });

  test(`${f.name}: round-trip error on gaussian data (normalised MSE < ${bound})`, () => {
    for (const scale of [1, 0.02]) {
      const x = gaussianRow(256 * 512, 11, scale);
      const e = nmse(x, decode(f, encode(f, x), x.length));
      assert.ok(e < bound, `scale ${scale}: nmse ${e}`);
      assert.ok(e > bound / 20, `scale ${scale}: nmse ${e} implausibly small`);
    }
  });

  test(`${f.name}: re-quantizing decoded values reproduces them (in >= ${idemFrac * 100}% of blocks)`, () => {
    const x = gaussianRow(256 * 1024, 12, 0.05);
    const y = decode(f, encode(f, x), x.length);
    const y2 = decode(f, encode(f, y), x.length);
    let same = 0;
    let e = 0;
    let t = 0;
    for (let b = 0; b < x.length; b += 256) {
      let ok = true;
      for (let i = b; i < b + 256; i++) {
        if (y[i] !== y2[i]) ok = false;
        e += (y[i] - y2[i]) ** 2;
        t += y[i] ** 2;
      }
      if (ok) same++;
    }
    assert.ok(same >= idemFrac * (x.length / 256), `${same} of ${x.length / 256} blocks reproduced`);
    assert.ok(e / t < 1e-5, `re-quantization drift ${e / t}`);
  });

  test(`${f.name}: edge rows`, () => {
    const blocks = new Map(specialBlocks());
    // all zeros: all-zero bytes, decodes to zeros
    const z = encode(f, blocks.get("zeros")!);
    assert.ok(z.every((b) => b === 0));
    assert.ok(decode(f, z, 256).every((v) => v === 0));
    // negative-only: decodes to non-positive values within 4% of the block's range
    const neg = blocks.get("negative-only")!;
    const yn = decode(f, encode(f, neg), 256);
    const amax = neg.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    for (let i = 0; i < 256; i++) {
      assert.ok(yn[i] <= 0, `value ${i} = ${yn[i]}`);
      assert.ok(Math.abs(yn[i] - neg[i]) <= 0.04 * amax);
    }
    // one large outlier among small values: the outlier survives within 0.1%
    const o = blocks.get("outlier")!;
    const yo = decode(f, encode(f, o), 256);
    assert.ok(Math.abs(yo[37] - 10) <= 0.01, `outlier decoded as ${yo[37]}`);
    // constant row: decodes to within 0.1%
    const c = new Float32Array(512).fill(-1.75);
    for (const v of decode(f, encode(f, c), 512)) assert.ok(Math.abs(v + 1.75) <= 1.75e-3, `${v}`);
  });

  test(`${f.name}: dot equals the f64 sum of dequantized values times x`, () => {
    const w = gaussianRow(256 * 8, 21, 0.02);
    const x = gaussianRow(256 * 8, 22, 1);
    const q = encode(f, w);
    const y = decode(f, q, w.length);
    let want = 0;
    for (let i = 0; i < w.length; i++) want += y[i] * x[i];
    assert.ok(Math.abs(f.dot(q, x, w.length) - want) <= 1e-12 * Math.max(1, Math.abs(want)));
  });

  test(`${f.name}: row offsets, block independence, partial blocks rejected`, () => {
    const x = gaussianRow(512, 31, 0.1);
    const q = encode(f, x);
    // each super-block encodes independently of its neighbours (and of earlier calls' scratch state)
    assert.equal(toHex(encode(f, x.subarray(256))), toHex(q.subarray(f.bytesPerBlock)));
    assert.equal(toHex(encode(f, x)), toHex(q));
    const buf = new Uint8Array(q.length + 5);
    buf.set(q, 5);
    assert.deepEqual(decode(f, buf.subarray(5), 512), decode(f, q, 512));
    assert.throws(() => f.quantizeRow(x, buf, 300), /multiple of 256/);
  });
}
