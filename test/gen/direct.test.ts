// Directly sampled quantised weights (the i-quants too) decode (through the independent dequantisers) to mean 0 and the asked std.
import { test } from "node:test";
import assert from "node:assert/strict";
import { directFill } from "../../src/gen/direct.js";
import { Stream } from "../../src/gen/random.js";
import { IQ_FORMATS, MXFP4, Q2_K, Q4_K, Q6_K, Q8_0 } from "../../src/quant/index.js";

for (const q of [Q8_0, Q2_K, Q4_K, Q6_K, MXFP4, ...IQ_FORMATS]) {
  test(`${q.name}: direct samples decode to mean ~0 and std ~${0.02}`, () => {
    const n = 256 * 400, std = 0.02;
    const bytes = directFill(q.type, n, std, new Stream(1, q.name));
    assert.equal(bytes.length, (n / q.blockSize) * q.bytesPerBlock);
    const x = new Float32Array(n);
    q.dequantRow(bytes, x, n);
    let s = 0, ss = 0;
    for (const v of x) {
      s += v;
      ss += v * v;
    }
    const mean = s / n, sd = Math.sqrt(ss / n - mean * mean);
    assert.ok(Math.abs(mean) < 0.02 * std, `mean ${mean}`);
    assert.ok(Math.abs(sd / std - 1) < 0.03, `std ${sd}`);
  });
}
