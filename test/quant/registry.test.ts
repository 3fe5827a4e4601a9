import { test } from "node:test";
import assert from "node:assert/strict";
import { BF16, F16, F32, QUANT_FORMATS, quantByName, quantFormat, rowBytes } from "../../src/quant/index.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../src/util/f16.js";
import { gaussianRow, toHex } from "./data.js";

test("registry: ids, names, block geometry", () => {
  const want: Array<[number, string, number, number]> = [
    [0, "F32", 1, 4],
    [1, "F16", 1, 2],
    [2, "Q4_0", 32, 18],
    [3, "Q4_1", 32, 20],
    [6, "Q5_0", 32, 22],
    [7, "Q5_1", 32, 24],
    [8, "Q8_0", 32, 34],
    [10, "Q2_K", 256, 84],
    [11, "Q3_K", 256, 110],
    [12, "Q4_K", 256, 144],
    [13, "Q5_K", 256, 176],
    [14, "Q6_K", 256, 210],
    [16, "IQ2_XXS", 256, 66],
    [17, "IQ2_XS", 256, 74],
    [18, "IQ3_XXS", 256, 98],
    [19, "IQ1_S", 256, 50],
    [20, "IQ4_NL", 32, 18],
    [21, "IQ3_S", 256, 110],
    [22, "IQ2_S", 256, 82],
    [23, "IQ4_XS", 256, 136],
    [29, "IQ1_M", 256, 56],
    [30, "BF16", 1, 2],
    [39, "MXFP4", 32, 17],
  ];
  assert.deepEqual(
    QUANT_FORMATS.map((f) => [f.type, f.name, f.blockSize, f.bytesPerBlock]),
    want,
  );
  for (const [type, name] of want) {
    assert.equal(quantFormat(type).name, name);
    assert.equal(quantByName(name).type, type);
    assert.equal(quantByName(name.toLowerCase()).type, type);
  }
});

test("registry: unsupported types throw naming the type", () => {
  assert.throws(() => quantFormat(34), /type 34 \(TQ1_0\)/);
  assert.throws(() => quantFormat(9), /type 9 \(Q8_1\)/);
  assert.throws(() => quantFormat(999), /type 999 \(unknown\)/);
  assert.throws(() => quantByName("TQ1_0"), /unsupported quant type "TQ1_0"/);
});

test("rowBytes", () => {
  assert.equal(rowBytes(12, 256), 144);
  assert.equal(rowBytes(14, 4096), 16 * 210);
  assert.equal(rowBytes(8, 32), 34);
  assert.equal(rowBytes(8, 4096), 128 * 34);
  assert.equal(rowBytes(0, 10), 40);
  assert.equal(rowBytes(1, 10), 20);
  assert.equal(rowBytes(30, 7), 14);
  assert.equal(rowBytes(12, 0), 0);
  assert.throws(() => rowBytes(12, 100), /Q4_K: row length 100 is not a multiple of the block size 256/);
  assert.throws(() => rowBytes(8, 33), /multiple/);
  assert.equal(rowBytes(3, 64), 40);
  assert.equal(rowBytes(10, 512), 168);
  assert.throws(() => rowBytes(34, 256), /unsupported/);
});

test("F32: exact round trip, misaligned source, dot", () => {
  const x = gaussianRow(100, 1);
  x[3] = -0;
  x[4] = Infinity;
  const q = new Uint8Array(400);
  F32.quantizeRow(x, q, 100);
  assert.deepEqual(new Float32Array(q.buffer.slice(0)), x);
  const odd = new Uint8Array(401);
  odd.set(q, 1);
  const y = new Float32Array(100);
  F32.dequantRow(odd.subarray(1), y, 100);
  assert.deepEqual(y, x);
  x[4] = 1;
  F32.quantizeRow(x, q, 100);
  const a = gaussianRow(100, 2);
  let want = 0;
  for (let i = 0; i < 100; i++) want += x[i] * a[i];
  assert.equal(F32.dot(q, a, 100), want);
  odd.set(q, 1);
  assert.equal(F32.dot(odd.subarray(1), a, 100), want);
});

test("F16 and BF16 formats: per-value conversion, little-endian, dot", () => {
  const x = gaussianRow(64, 3, 10);
  x[0] = 1;
  for (const [f, conv, back] of [
    [F16, f32ToF16, f16ToF32],
    [BF16, f32ToBf16, bf16ToF32],
  ] as const) {
    const q = new Uint8Array(128);
    f.quantizeRow(x, q, 64);
    for (let i = 0; i < 64; i++) assert.equal(q[2 * i] | (q[2 * i + 1] << 8), conv(x[i]), `${f.name} value ${i}`);
    const y = new Float32Array(64);
    f.dequantRow(q, y, 64);
    for (let i = 0; i < 64; i++) assert.equal(y[i], back(conv(x[i])));
    let want = 0;
    for (let i = 0; i < 64; i++) want += y[i] * x[i];
    assert.equal(f.dot(q, x, 64), want);
  }
  const q = new Uint8Array(2);
  F16.quantizeRow(new Float32Array([1]), q, 1);
  assert.equal(toHex(q), "003c");
  BF16.quantizeRow(new Float32Array([1]), q, 1);
  assert.equal(toHex(q), "803f");
});

test("F16/BF16: round-trip error on gaussian data (nmse: F16 < 1e-7, BF16 < 5e-6)", () => {
  const x = gaussianRow(65536, 4, 0.05);
  for (const [f, bound] of [
    [F16, 1e-7],
    [BF16, 5e-6],
  ] as const) {
    const q = new Uint8Array(2 * x.length);
    f.quantizeRow(x, q, x.length);
    const y = new Float32Array(x.length);
    f.dequantRow(q, y, x.length);
    let e = 0;
    let t = 0;
    for (let i = 0; i < x.length; i++) {
      e += (x[i] - y[i]) ** 2;
      t += x[i] ** 2;
    }
    assert.ok(e / t < bound && e / t > bound / 20, `${f.name} nmse ${e / t}`);
  }
});

test("registry: every format's block geometry equals the GGUF reader's type table", async () => {
  const { ggmlTypeInfo } = await import("../../src/format/gguf/ggml-types.js");
  for (const f of QUANT_FORMATS) {
    const t = ggmlTypeInfo(f.type);
    assert.deepEqual([t?.name, t?.blockSize, t?.bytesPerBlock], [f.name, f.blockSize, f.bytesPerBlock], f.name);
  }
});
