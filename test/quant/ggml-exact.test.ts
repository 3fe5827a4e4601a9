// Every quant block type held to ggml itself (libggml-base.so from node-llama-cpp, through test/helpers/ggml-ref):
// dequantisation bit-exact with dequantize_row_* on >= 1M values per type (random block bytes, so every bit
// pattern of quants and scales appears, plus ggml-encoded realistic rows), quantisation byte-identical to
// quantize_row_*_ref on rows of varied shapes and scales.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QUANT_FORMATS, type QuantFormat } from "../../src/quant/index.js";
import { ggmlDequantize, ggmlQuantize } from "../helpers/ggml-ref.js";
import { gaussianRow, mixedScaleRow, rng, specialBlocks } from "./data.js";

// The i-quants have their own suite against the same library (test/quant/iquants.test.ts: sane scales, and
// quantisation only where ggml has a reference without an importance matrix).
const BLOCK_TYPES = QUANT_FORMATS.filter((f) => f.blockSize > 1 && !f.name.startsWith("IQ"));
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bits = (v: number) => ((f32[0] = v), u32[0]);

/** Index of the first value whose f32 bits differ (any NaN equals any NaN), or -1. */
function firstDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (bits(a[i]) !== bits(b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  }
  return -1;
}

function concat(parts: Float32Array[]): Float32Array {
  const x = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) x.set(p, (o += p.length) - p.length);
  return x;
}

function encode(f: QuantFormat, x: Float32Array): Uint8Array {
  const q = new Uint8Array((x.length / f.blockSize) * f.bytesPerBlock);
  f.quantizeRow(x, q, x.length);
  return q;
}

test("the registry holds every type this suite checks against ggml", () => {
  assert.deepEqual(
    BLOCK_TYPES.map((f) => f.name),
    ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "MXFP4"],
  );
});

for (const f of BLOCK_TYPES) {
  test(`${f.name}: dequantisation is bit-exact with ggml's dequantize_row on >= 1M values`, () => {
    const n = 1 << 20; // a multiple of every block size
    const u = rng(0x9e3779b9 ^ f.type);
    const blocks = new Uint8Array((n / f.blockSize) * f.bytesPerBlock);
    for (let i = 0; i < blocks.length; i++) blocks[i] = (u() * 256) | 0;
    const want = ggmlDequantize(f, blocks, n);
    assert.ok(want.filter((v) => v !== 0).length > n / 4, "ggml decoded mostly zeros: the shim is not calling it");
    const got = new Float32Array(n);
    f.dequantRow(blocks, got, n);
    const i = firstDiff(got, want);
    assert.equal(i, -1, `random blocks: value ${i} (block ${Math.floor(i / f.blockSize)}): got ${got[i]}, ggml ${want[i]}`);
    // realistic rows as ggml encodes them
    const x = gaussianRow(256 * 1024, 5 + f.type, 0.03);
    const q = ggmlQuantize(f, x, x.length);
    const got2 = new Float32Array(x.length);
    f.dequantRow(q, got2, x.length);
    const j = firstDiff(got2, ggmlDequantize(f, q, x.length));
    assert.equal(j, -1, `encoded gaussian row: value ${j} differs`);
  });

  test(`${f.name}: quantisation is byte-identical to ggml's quantize_row_${f.name.toLowerCase().replace(/_k$/, "_K")}_ref`, () => {
    const cases: Array<[string, Float32Array]> = [
      ...specialBlocks(),
      ["mixed scales", mixedScaleRow()],
      ["gaussian", gaussianRow(256 * 512, 40 + f.type, 1)],
      ["small gaussian", gaussianRow(256 * 512, 80 + f.type, 0.002)],
    ];
    for (const [name, x] of cases) {
      const want = ggmlQuantize(f, x, x.length);
      const got = encode(f, x);
      let i = 0;
      while (i < got.length && got[i] === want[i]) i++;
      assert.equal(i, got.length, `${name}: byte ${i} (block ${Math.floor(i / f.bytesPerBlock)}) is ${got[i]}, ggml wrote ${want[i]}`);
    }
    // several rows in one call: each block encodes alone (no state leaks from the previous block or call)
    const x = concat([gaussianRow(1024, 3, 0.5), specialBlocks()[1][1]]);
    assert.deepEqual(encode(f, x), ggmlQuantize(f, x, x.length));
  });
}
