// MXFP4 beyond the generic ggml suite (ggml-exact.test.ts): hand-decoded blocks, and the quantiser's edges held
// to ggml's quantize_row_mxfp4_ref: block maxima at and just below every power of two (where log2f's f32 rounding
// decides the exponent), subnormal, huge, infinite and NaN inputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MXFP4, quantByName, quantFormat, rowBytes } from "../../src/quant/index.js";
import { ggmlDequantize, ggmlQuantize } from "../helpers/ggml-ref.js";
import { nmse } from "../helpers/numeric.js";
import { gaussianRow, rng } from "./data.js";

test("MXFP4: registered as ggml type 39, 17 bytes per 32 values; a row not a multiple of 32 is refused", () => {
  assert.equal(quantFormat(39), MXFP4);
  assert.equal(quantByName("mxfp4"), MXFP4);
  assert.equal(rowBytes(39, 2880), 90 * 17);
  assert.throws(() => rowBytes(39, 2880 + 16), /MXFP4: row length 2896 is not a multiple of the block size 32/);
  assert.throws(() => MXFP4.dequantRow(new Uint8Array(17), new Float32Array(48), 48), /MXFP4: row length 48/);
});

test("MXFP4: hand-decoded block (E2M1 codes, split-halves nibbles, scale 2^(e-127))", () => {
  // e = 127 -> scale 1: code c is the E2M1 value 0, .5, 1, 1.5, 2, 3, 4, 6 (sign in bit 3).
  const e2m1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];
  const b = new Uint8Array(17);
  b[0] = 127;
  for (let j = 0; j < 16; j++) b[1 + j] = j | ((15 - j) << 4); // value j has code j, value 16 + j code 15 - j
  const y = new Float32Array(32);
  MXFP4.dequantRow(b, y, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(y[j], e2m1[j] === 0 ? 0 : e2m1[j], `value ${j}`); // ggml's table has +0 for the -0 code
    assert.equal(y[16 + j], e2m1[15 - j] === 0 ? 0 : e2m1[15 - j], `value ${16 + j}`);
  }
  assert.ok(Object.is(y[8], 0), "code 8 (-0) decodes as +0, as ggml's int8 table does");
  b[0] = 130; // scale 8
  MXFP4.dequantRow(b, y, 32);
  assert.equal(y[7], 48);
  assert.equal(y[16], -48);
  b[0] = 0; // 2^-127: subnormal products
  MXFP4.dequantRow(b, y, 32);
  assert.equal(y[1], 2 ** -128);
  assert.equal(y[7], 6 * 2 ** -127);
  // quantising the decoded values of scale 1 gives them back: amax 6 -> e = floor(log2 6) - 2 + 127 = 127
  const x = Float32Array.from({ length: 32 }, (_, i) => e2m1[i % 16]);
  const q = new Uint8Array(17);
  MXFP4.quantizeRow(x, q, 32);
  assert.equal(q[0], 127);
  const back = new Float32Array(32);
  MXFP4.dequantRow(q, back, 32);
  assert.deepEqual(Array.from(back), Array.from(x, (v) => v + 0));
});

function sameBytes(got: Uint8Array, want: Uint8Array, what: string): void {
  let i = 0;
  while (i < got.length && got[i] === want[i]) i++;
  assert.equal(i, got.length, `${what}: byte ${i} (block ${Math.floor(i / 17)}) is ${got[i]}, ggml wrote ${want[i]}`);
}

test("MXFP4: quantisation matches ggml at every exponent's boundary and on subnormal, huge, inf and NaN blocks", () => {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const u = rng(99);
  const blocks: number[][] = [];
  // amax = 2^k and the 8 floats just below it, for every f32 exponent (subnormal maxima included)
  for (let k = -149; k <= 127; k++) {
    f32[0] = 2 ** k;
    const top = u32[0];
    for (let step = 0; step <= 8; step++) {
      u32[0] = top - step;
      const amax = f32[0];
      if (!(amax > 0)) continue;
      const blk = Array.from({ length: 32 }, () => (u() * 2 - 1) * amax);
      blk[(u() * 32) | 0] = u() < 0.5 ? amax : -amax;
      blocks.push(blk);
    }
  }
  const special = [Infinity, -Infinity, NaN, 3.4028234663852886e38, 1e-45, -1e-45, 0];
  for (const s of special) blocks.push(Array.from({ length: 32 }, (_, i) => (i === 5 ? s : (u() - 0.5) * 3)));
  blocks.push(Array.from({ length: 32 }, () => NaN));
  // values exactly halfway between neighbouring codes (ties keep the first code of least error)
  blocks.push(Array.from({ length: 32 }, (_, i) => [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 6, -0.25, -0.75, -5, -2.5][i % 12]));
  const x = Float32Array.from(blocks.flat());
  const got = new Uint8Array(blocks.length * 17);
  MXFP4.quantizeRow(x, got, x.length);
  sameBytes(got, ggmlQuantize(MXFP4, x, x.length), "edge blocks");
  // and their decoding
  const y = new Float32Array(x.length);
  MXFP4.dequantRow(got, y, x.length);
  assert.deepEqual(y, ggmlDequantize(MXFP4, got, x.length));
});

test("MXFP4: round-trip error on gaussian rows is that of a 4-bit float code (nmse ~1e-2), independent of scale", () => {
  for (const scale of [1e-3, 1, 1e3]) {
    const x = gaussianRow(32 * 1024, 11, scale);
    const q = new Uint8Array(1024 * 17);
    MXFP4.quantizeRow(x, q, x.length);
    const y = new Float32Array(x.length);
    MXFP4.dequantRow(q, y, x.length);
    const e = nmse(y, x);
    assert.ok(e > 2e-3 && e < 3e-2, `scale ${scale}: nmse ${e}`);
  }
});
