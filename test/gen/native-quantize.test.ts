// The generator quantises through the native addon's C port of ggml's quantisers where it is built: the bytes are
// those src/quant's JS quantisers write, with rows filled in the same order across the native path's chunks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { quantizeRows } from "../../src/gen/quantize.js";
import { Stream } from "../../src/gen/random.js";
import { nativeQuantizer } from "../../src/backends/native-quantize.js";
import { Q2_K, Q4_K, Q5_0, Q8_0, type QuantFormat } from "../../src/quant/index.js";
import { needNative } from "../helpers/parity.js";

/** A filler drawing each row from one stream: a row filled out of order would change the bytes. */
const filler = (seed: string) => {
  const s = new Stream(3, seed);
  return (_row: number, out: Float32Array) => s.fillUniform(out, 0.02);
};

const cases: Array<[QuantFormat, number, number]> = [
  [Q4_K, 4100, 256], // 2^20 values per native call: two chunks, the second of 4 rows
  [Q2_K, 40, 1536],
  [Q8_0, 3, 4096],
  [Q5_0, 1, 96],
];

for (const [q, rows, K] of cases) {
  test(`quantizeRows: ${q.name} ${rows} x ${K} natively is byte-identical to the JS quantiser, rows in order`, () => {
    needNative();
    assert.ok(nativeQuantizer(q.type), `the addon has the ${q.name} quantiser`);
    const native = quantizeRows(q, rows, K, filler(q.name));
    const js = quantizeRows(q, rows, K, filler(q.name), { native: false });
    assert.equal(native.length, (rows * K / q.blockSize) * q.bytesPerBlock);
    assert.ok(native.some((b) => b !== 0));
    assert.ok(Buffer.from(native).equals(js), "native and JS bytes differ");
  });
}
