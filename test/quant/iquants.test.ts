// The i-quants against ggml itself: dequantisation bit for bit with libggml-base.so's dequantize_row_* on
// >= 1M values per type (random blocks: every field of an i-quant block is an index or a small integer, so any
// bytes decode; only the f16 scale is kept finite), and the committed tables against the generator's output.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  IQ_FORMATS, IQ1_M, IQ4_NL, IQ4_XS, IQ2_XXS, quantByName, quantFormat, rowBytes,
} from "../../src/quant/index.js";
import type { QuantFormat } from "../../src/quant/types.js";
import { ggmlDequantize, ggmlQuantize } from "../helpers/ggml-ref.js";
import { gaussianRow, mixedScaleRow } from "./data.js";
import { mulberry32 } from "../helpers/numeric.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Random blocks of f covering >= minValues values; f16 scales made finite (exponent 31 -> 15), zero and subnormal kept. */
function randomBlocks(f: QuantFormat, minValues: number, seed: number): { bytes: Uint8Array; n: number } {
  const nb = Math.ceil(minValues / f.blockSize);
  const bytes = new Uint8Array(nb * f.bytesPerBlock);
  const r = mulberry32(seed);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (r() * 256) | 0;
  for (let b = 0; b < nb; b++) {
    const o = b * f.bytesPerBlock;
    // IQ1_M keeps its f16 scale in the top nibbles of its 4 u16 scale words (bytes 48..55): bit 14 is byte 55's bit 6.
    const h = f === IQ1_M
      ? (bytes[o + 49] >> 4) | (bytes[o + 51] & 0xf0) | ((bytes[o + 53] >> 4) << 8) | ((bytes[o + 55] & 0xf0) << 8)
      : bytes[o] | (bytes[o + 1] << 8);
    if (((h >> 10) & 31) === 31) bytes[f === IQ1_M ? o + 55 : o + 1] &= ~0x40;
    if (b % 97 === 0 && f !== IQ1_M) bytes[o] = bytes[o + 1] = 0; // some zero scales: signed zeros must match too
  }
  return { bytes, n: nb * f.blockSize };
}

function firstDiff(a: Float32Array, b: Float32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

for (const f of IQ_FORMATS) {
  test(`${f.name}: dequantisation bit-exact with ggml's dequantize_row_${f.name.toLowerCase()} on >= 1M random-block values`, () => {
    const { bytes, n } = randomBlocks(f, 1 << 20, f.type * 7919);
    const want = ggmlDequantize(f, bytes, n);
    const got = new Float32Array(n);
    f.dequantRow(bytes, got, n);
    const i = firstDiff(got, want);
    assert.equal(i, -1, i < 0 ? "" : `value ${i} (block ${Math.floor(i / f.blockSize)}): got ${got[i]}, ggml ${want[i]}`);
    let finite = 0;
    for (let j = 0; j < n; j++) if (Number.isFinite(want[j]) && want[j] !== 0) finite++;
    assert.ok(finite > 0.9 * n, `${f.name}: the data exercised mostly finite non-zero values (${finite} of ${n})`);
    // The scalar dot is dequantise-then-dot: it must equal the f64 dot of ggml's decoded values.
    const x = new Float32Array(4096).map((_, j) => Math.sin(j) * 0.5);
    const k = 4096;
    const at = 3 * (k / f.blockSize) * f.bytesPerBlock;
    let ref = 0;
    for (let j = 0; j < k; j++) ref += want[3 * k + j] * x[j];
    assert.equal(f.dot(bytes.subarray(at, at + rowBytes(f.type, k)), x, k), ref);
  });
}

test("i-quants: registered with ggml's ids, names and block geometry; all but IQ4_NL/IQ4_XS dequantise-only", () => {
  const want: Array<[string, number, number, number]> = [
    ["IQ2_XXS", 16, 256, 66], ["IQ2_XS", 17, 256, 74], ["IQ3_XXS", 18, 256, 98], ["IQ1_S", 19, 256, 50],
    ["IQ4_NL", 20, 32, 18], ["IQ3_S", 21, 256, 110], ["IQ2_S", 22, 256, 82], ["IQ4_XS", 23, 256, 136], ["IQ1_M", 29, 256, 56],
  ];
  assert.deepEqual(IQ_FORMATS.map((f) => [f.name, f.type, f.blockSize, f.bytesPerBlock]), want);
  for (const [name, type] of want) {
    const f = quantFormat(type);
    assert.equal(f.name, name);
    assert.equal(quantByName(name.toLowerCase()), f);
    if (f === IQ4_NL || f === IQ4_XS) continue; // ggml has plain reference quantisers for these two
    assert.equal(f.dequantOnly, true);
    assert.throws(() => f.quantizeRow(new Float32Array(f.blockSize), new Uint8Array(f.bytesPerBlock), f.blockSize), new RegExp(`${name}: moestream decodes this type only`));
  }
  assert.equal(rowBytes(IQ2_XXS.type, 512), 132);
  assert.throws(() => rowBytes(IQ4_NL.type, 48), /IQ4_NL: row length 48 is not a multiple of the block size 32/);
  assert.throws(() => IQ2_XXS.dequantRow(new Uint8Array(66), new Float32Array(128), 128), /IQ2_XXS: row length 128/);
});

test("iq-tables.ts and native/src/iq_tables.h are what scripts/gen-iquant-tables.mjs generates from ggml-common.h", () => {
  const r = spawnSync(process.execPath, [join(ROOT, "scripts", "gen-iquant-tables.mjs"), "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /matches ggml-common.h at [0-9a-f]{40}/);
});

for (const f of [IQ4_NL, IQ4_XS]) {
  test(`${f.name}: quantizeRow byte-identical to ggml's quantize_row_${f.name.toLowerCase()}_ref`, () => {
    // Gaussian rows at several scales, and blocks whose values span orders of magnitude. (IQ4_NL's C reference
    // leaves an all-zero block's indices uninitialised, so no input here has one.)
    const rows = [gaussianRow(1 << 18, 21), gaussianRow(1 << 16, 22, 1e-3), gaussianRow(1 << 16, 23, 300), mixedScaleRow()];
    for (const [i, x] of rows.entries()) {
      const got = new Uint8Array((x.length / f.blockSize) * f.bytesPerBlock);
      f.quantizeRow(x, got, x.length);
      const want = ggmlQuantize(f, x, x.length);
      const at = got.findIndex((b, j) => b !== want[j]);
      assert.equal(at, -1, `row ${i}: first differing byte ${at} (block ${Math.floor(at / f.bytesPerBlock)})`);
    }
  });
}
