// Every registered quant type runs on every CPU backend: the scalar reference decodes any of them; the native
// and wasm backends run their own kernels where they have one and hand the other types' weights to the scalar
// reference (at upload and matmul), so the load-time capability check passes them and the results are the
// reference's. A type nothing runs is refused at load naming the tensor.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { NativeBackend } from "../../src/backends/cpu/native.js";
import { WasmBackend, wasmAvailable, wasmKernelsError } from "../../src/backends/wasm/wasm.js";
import { checkCapabilities } from "../../src/engine/capabilities.js";
import { MXFP4, Q2_K, Q3_K, Q4_0, Q4_1, Q5_0, Q5_1, Q5_K, QUANT_FORMATS } from "../../src/quant/index.js";
import { ModelError } from "../../src/util/errors.js";
import { needNative, randomValues, randomWeight, runMatmul } from "../helpers/parity.js";
import { nmse } from "../helpers/numeric.js";

const NEW_TYPES = [Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, MXFP4];

test("the scalar matmul of every new type is the f64 dot of the decoded row (QuantFormat.dot) with x", async () => {
  const scalar = new ScalarBackend();
  for (const f of NEW_TYPES) {
    const sh = { k: 512, n: 5, t: 3 };
    const hw = randomWeight(f, sh.k, sh.n, `dot-${f.name}`);
    const x = randomValues(sh.k * sh.t, "dot-x");
    const got = await runMatmul(scalar, scalar.upload(hw), x, sh);
    const rowBytes = (sh.k / f.blockSize) * f.bytesPerBlock;
    for (let t = 0; t < sh.t; t++) {
      for (let r = 0; r < sh.n; r++) {
        const want = Math.fround(f.dot(hw.bytes.subarray(r * rowBytes), x.subarray(t * sh.k), sh.k));
        assert.equal(got[t * sh.n + r], want, `${f.name} row ${r} token ${t}`);
      }
    }
  }
});

test("native and wasm pass the capability check for every new type and match the scalar reference", async () => {
  needNative();
  assert.ok(wasmAvailable(), `WebAssembly SIMD is required: ${wasmKernelsError()}`);
  const scalar = new ScalarBackend();
  const native = new NativeBackend({ threads: 2 });
  const wasm = new WasmBackend({ fallback: new ScalarBackend() });
  try {
    for (const f of NEW_TYPES) {
      const uses = [{ name: "blk.0.ffn_up_exps.weight", type: f.type, rank: 3 }, { name: "token_embd.weight", type: f.type, rank: 2 }];
      for (const be of [scalar, native, wasm]) checkCapabilities(be, uses);
      const sh = { k: 1024, n: 19, t: 4 };
      const hw = randomWeight(f, sh.k, sh.n, `fallback-${f.name}`);
      const x = randomValues(sh.k * sh.t, "fallback-x");
      const ref = await runMatmul(scalar, scalar.upload(hw), x, sh);
      for (const be of [native, wasm]) {
        const e = nmse(await runMatmul(be, be.upload(hw), x, sh), ref);
        assert.ok(e < 5e-4, `${f.name} on ${be.name}: nmse ${e.toExponential(2)}`);
      }
      // embedding rows decode exactly as the reference's
      const ids = Int32Array.of(3, 0, 18);
      const outs = await Promise.all([scalar, native, wasm].map(async (be) => {
        const out = be.alloc(ids.length * sh.k);
        be.embed(out, be.upload(hw), ids);
        return be.read(out);
      }));
      assert.deepEqual(outs[1], outs[0], `${f.name} embed on native`);
      assert.deepEqual(outs[2], outs[0], `${f.name} embed on wasm`);
    }
  } finally {
    wasm.close();
  }
});

test("wasm runs every registered type on its own matmul kernel: no load warning, no matmul handed to the reference", async () => {
  assert.ok(wasmAvailable(), `WebAssembly SIMD is required: ${wasmKernelsError()}`);
  const wasm = new WasmBackend({ fallback: new ScalarBackend() });
  const uses = QUANT_FORMATS.flatMap((f) => [0, 1].map((e) => ({ name: `blk.${e}.ffn_down_exps.weight`, type: f.type, rank: 3 })));
  assert.deepEqual(checkCapabilities(wasm, uses), []);
  // The weights land in wasm memory (a type without a kernel stays a host weight of the reference).
  for (const f of QUANT_FORMATS) {
    const w = wasm.upload(randomWeight(f, 256, 2, `own-${f.name}`));
    assert.ok("mem" in w, `${f.name} weight uploaded into wasm memory`);
  }
});

test("a type no backend runs is refused at load naming the tensor and the type", () => {
  assert.throws(() => checkCapabilities(new ScalarBackend(), [{ name: "blk.2.ffn_down_exps.weight", type: 34, rank: 3 }]), (e: unknown) =>
    e instanceof ModelError && e.code === "unsupported_type" && /tensor 'blk\.2\.ffn_down_exps\.weight' is TQ1_0/.test(e.message));
});
