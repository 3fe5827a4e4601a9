// The native addon's reference weight quantisers (native/src/quant_ref.c), which the generator uses, held to ggml's
// own quantize_row_*_ref (libggml-base.so, test/helpers/ggml-ref) and to src/quant's JS quantisers: byte-identical on
// >= 1M values per type, edge blocks included, whether the pool runs one thread or several.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QUANT_FORMATS, quantFormat, type QuantFormat } from "../../src/quant/index.js";
import { nativeQuantizer } from "../../src/backends/native-quantize.js";
import { needNative } from "../helpers/parity.js";
import { ggmlQuantize } from "../helpers/ggml-ref.js";
import { gaussianRow, mixedScaleRow, rng, specialBlocks } from "./data.js";

const PORTED = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"];

/** 2^20 values: the edge blocks (zeros, constant, one outlier, huge, tiny, ...) at the start, varied shapes and
 *  scales, gaussian rows from 1e-6 to 1e3, and blocks that are all zero but for one value. */
function values(seed: number): Float32Array {
  const x = new Float32Array(1 << 20);
  let o = 0;
  const put = (p: Float32Array) => (x.set(p.subarray(0, Math.min(p.length, x.length - o)), o), (o += p.length));
  for (const [, b] of specialBlocks()) put(b);
  put(mixedScaleRow());
  const u = rng(seed);
  [1e-6, 1e-3, 0.02, 1, 1e3].forEach((scale, i) => put(gaussianRow(1 << 16, seed + i, scale)));
  for (let b = 0; b < 64; b++) { // one non-zero value in an otherwise zero super-block, of either sign
    const blk = new Float32Array(256);
    blk[(u() * 256) | 0] = (u() < 0.5 ? -1 : 1) * 2 ** (-20 + ((u() * 40) | 0));
    put(blk);
  }
  put(gaussianRow(x.length - o, seed ^ 0x55, 0.05));
  assert.equal(o, x.length);
  return x;
}

function firstDiff(got: Uint8Array, want: Uint8Array, f: QuantFormat): string | undefined {
  assert.equal(got.length, want.length);
  let i = 0;
  while (i < got.length && got[i] === want[i]) i++;
  return i === got.length ? undefined : `byte ${i} (block ${Math.floor(i / f.bytesPerBlock)}) is ${got[i]}, want ${want[i]}`;
}

test("the addon quantises exactly the types ported from ggml", () => {
  const a = needNative();
  assert.deepEqual(a.quantizeRefTypes?.().map((t) => quantFormat(t).name), PORTED);
  for (const f of QUANT_FORMATS) assert.equal(nativeQuantizer(f.type) !== undefined, PORTED.includes(f.name), f.name);
});

for (const name of PORTED) {
  test(`${name}: native quantisation is byte-identical to ggml's _ref and to the JS quantiser on 1M values`, () => {
    const a = needNative();
    const f = QUANT_FORMATS.find((q) => q.name === name)!;
    const x = values(f.type * 7919);
    const bytes = (x.length / f.blockSize) * f.bytesPerBlock;
    const native = new Uint8Array(bytes);
    assert.equal(a.quantizeRef!(f.type, x, native), bytes);
    const ggml = ggmlQuantize(f, x, x.length);
    assert.equal(firstDiff(native, ggml, f), undefined, "native vs ggml");
    const js = new Uint8Array(bytes);
    f.quantizeRow(x, js, x.length);
    assert.equal(firstDiff(native, js, f), undefined, "native vs JS");
    // On three pool threads (chunks taken in any order by any thread) the bytes are the same.
    const threaded = new Uint8Array(bytes);
    nativeQuantizer(f.type, 3)!(x, threaded);
    assert.equal(firstDiff(threaded, ggml, f), undefined, "three threads vs ggml");
  });
}

test("quantizeRef refuses a type it lacks, a partial block, a short or overlapping out", () => {
  const a = needNative();
  const x = new Float32Array(512);
  assert.throws(() => a.quantizeRef!(16, x, new Uint8Array(1024)), { name: "RangeError", message: /no reference quantiser for ggml type 16/ });
  assert.throws(() => a.quantizeRef!(12, x.subarray(0, 300), new Uint8Array(1024)), { name: "RangeError", message: /300 values, not a multiple of the block size 256/ });
  assert.throws(() => a.quantizeRef!(12, x, new Uint8Array(287)), { name: "RangeError", message: /out has 287 bytes, needs 288/ });
  assert.throws(() => a.quantizeRef!(8, x, new Uint8Array(x.buffer)), { name: "RangeError", message: /overlaps/ });
  assert.throws(() => a.quantizeRef!(8, [1, 2] as unknown as Float32Array, new Uint8Array(64)), TypeError);
});
