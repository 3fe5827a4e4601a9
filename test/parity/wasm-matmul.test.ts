// WebAssembly SIMD matmul kernels held to the scalar reference: every weight type x shapes (1 row, odd row
// counts, batches of 1, 3, 17 and 512 tokens, real MoE row lengths), by normalised MSE at the native kernels'
// tolerances; with activations already on the Q8 grid, to f32 rounding; the activation quantisers must equal
// ggml's bit for bit, and weights spread over several memories or threads must agree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WasmBackend, wasmAvailable, wasmKernelsError } from "../../src/backends/wasm/wasm.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { F16, F32, IQ1_M, IQ1_S, IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S, IQ3_XXS, IQ4_NL, IQ4_XS, MXFP4, Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0, type QuantFormat } from "../../src/quant/index.js";
import { randomWeight, randomValues, runMatmul, refQ8_0, refQ8K, MATMUL_FORMATS, MATMUL_TOL } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";

function wasm(opts: { memoryBytes?: number; threads?: number } = {}): WasmBackend {
  assert.ok(wasmAvailable(), `WebAssembly SIMD is required: ${wasmKernelsError()}`);
  return new WasmBackend({ fallback: new ScalarBackend(), ...opts });
}

// The types of real MoE GGUFs beyond the native set's first six, with llama.cpp's activation pairing: the 32-value
// types meet Q8_0 activations (Q8_1 for Q4_1 / Q5_1: their sums too; gpt-oss's MXFP4 Q8_0), the rest Q8_K. Measured
// worst nmse ~1e-5, like the other quantised kernels.
const LOWBIT = [Q5_K, Q3_K, Q2_K, IQ4_XS, IQ3_XXS, IQ2_XXS, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ3_S, IQ2_XS, IQ2_S, IQ1_S, IQ1_M, MXFP4];
const TOL: Record<string, number> = { ...MATMUL_TOL, ...Object.fromEntries(LOWBIT.map((f) => [f.name, 5e-4])) };
const FORMATS = [...MATMUL_FORMATS, ...LOWBIT];

interface Shape { k: number; n: number; t: number }
function shapes(f: QuantFormat): Shape[] {
  const b = f.blockSize === 1 ? 32 : f.blockSize;
  return [
    // One row, one block: over 8 tokens, since the nmse of a single output is that of one near-zero draw at times
    // (P ~ 0.1 of passing 5e-4 at these types' rounding); the single value is held exactly in the on-grid test.
    { k: b, n: 1, t: 8 },
    { k: b, n: 37, t: 3 },
    { k: 8 * b, n: 67, t: 17 },
    { k: 512, n: 11, t: 512 }, // a prefill batch
    { k: 2048, n: 130, t: 1 }, // decode
    { k: 6144, n: 5, t: 17 },
    { k: 768, n: 64, t: 1 }, { k: 768, n: 9, t: 5 }, // Qwen3-30B-A3B's expert rows (down: K = 768)
    { k: 7168, n: 6, t: 2 }, // DeepSeek-V3 / Kimi hidden size
    ...(f.blockSize === 1 ? [{ k: 45, n: 13, t: 3 }, { k: 7, n: 3, t: 2 }] : []), // K leaving a SIMD tail
  ];
}

for (const f of FORMATS) {
  test(`${f.name}: wasm matmul matches the scalar backend (nmse < ${TOL[f.name]})`, async (t) => {
    const scalar = new ScalarBackend();
    const be = wasm();
    let worst = 0;
    for (const sh of shapes(f)) {
      const hw = randomWeight(f, sh.k, sh.n, `${f.name}-${sh.k}-${sh.n}`);
      const x = randomValues(sh.k * sh.t, `x-${sh.k}-${sh.t}`, 1, 11);
      const ref = await runMatmul(scalar, scalar.upload(hw), x, sh);
      const e = nmse(await runMatmul(be, be.upload(hw), x, sh), ref);
      worst = Math.max(worst, e);
      assert.ok(e < TOL[f.name], `${f.name} K=${sh.k} N=${sh.n} T=${sh.t}: nmse ${e.toExponential(2)} >= ${TOL[f.name]}`);
    }
    t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
  });
}

/** x moved onto the activation quantiser's grid, so re-quantising it inside the kernel loses nothing. */
function onGrid(be: WasmBackend, f: QuantFormat, x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  if (f.blockSize === 32) { // Q8_0 and Q4_0 meet Q8_0 activations
    Q8_0.dequantRow(be.quantizeQ8_0(x), out, x.length);
    return out;
  }
  const q = be.quantizeQ8K(x), dv = new DataView(q.buffer);
  for (let i = 0; i < x.length; i++) {
    const b = 292 * Math.floor(i / 256);
    out[i] = Math.fround(dv.getFloat32(b, true) * dv.getInt8(b + 4 + (i % 256)));
  }
  return out;
}

test("with activations already on the Q8 grid, quantised kernels equal the scalar backend to f32 rounding", async () => {
  const scalar = new ScalarBackend();
  const be = wasm();
  for (const f of [Q8_0, Q4_K, Q6_K, ...LOWBIT]) {
    for (const sh of [{ k: 2048, n: 33, t: 5 }, { k: f.blockSize, n: 1, t: 1 }, { k: 768, n: 7, t: 2 }]) {
      const hw = randomWeight(f, sh.k, sh.n, `grid-${f.name}-${sh.k}`);
      const x = onGrid(be, f, randomValues(sh.k * sh.t, `grid-x-${sh.k}`, 1, 11));
      const e = nmse(await runMatmul(be, be.upload(hw), x, sh), await runMatmul(scalar, scalar.upload(hw), x, sh));
      assert.ok(e < 1e-10, `${f.name} K=${sh.k} N=${sh.n} T=${sh.t}: nmse ${e.toExponential(2)}`);
    }
  }
});

test("a batch of tokens gives each token the bits it gets alone", async () => {
  const be = wasm();
  for (const f of FORMATS) {
    const sh = { k: 512, n: 29, t: 11 };
    const w = be.upload(randomWeight(f, sh.k, sh.n, `batch-${f.name}`));
    const x = randomValues(sh.k * sh.t, "batch-x", 1, 11);
    const all = await runMatmul(be, w, x, sh);
    for (let tok = 0; tok < sh.t; tok++) {
      const one = await runMatmul(be, w, x.subarray(tok * sh.k, (tok + 1) * sh.k), { ...sh, t: 1 });
      assert.ok(sameBits(one, all.subarray(tok * sh.n, (tok + 1) * sh.n)), `${f.name} token ${tok}`);
    }
  }
});

test("2 and 3 threads give the bits of 1 (row chunks; batches; several memories)", async () => {
  const one = wasm(), two = wasm({ threads: 2 }), three = wasm({ threads: 3, memoryBytes: 4 << 20 });
  try {
    assert.equal(two.threads, 2, "worker threads and shared memory are available under Node");
    for (const f of FORMATS) {
      for (const sh of [{ k: 2048, n: 131, t: 1 }, { k: 512, n: 300, t: 17 }, { k: 1024, n: 97, t: 3 }]) {
        const hw = randomWeight(f, sh.k, sh.n, `thr-${f.name}-${sh.n}`);
        const x = randomValues(sh.k * sh.t, `thr-x-${sh.t}`, 1, 11);
        const ref = await runMatmul(one, one.upload(hw), x, sh);
        assert.ok(sameBits(await runMatmul(two, two.upload(hw), x, sh), ref), `${f.name} K=${sh.k} N=${sh.n} T=${sh.t}, 2 threads`);
        assert.ok(sameBits(await runMatmul(three, three.upload(hw), x, sh), ref), `${f.name} K=${sh.k} N=${sh.n} T=${sh.t}, 3 threads`);
      }
    }
    assert.ok(three.memories.length >= 2, "the weights spread over several memories");
  } finally {
    two.close();
    three.close();
  }
});

test("weights spread over several small memories give the same bits; re-uploading a place overwrites it", async () => {
  const one = wasm(), many = wasm({ memoryBytes: 4 << 20 });
  const hws = [Q4_K, Q8_0, F16, Q6_K, F32].map((f, i) => randomWeight(f, 2048, 300, `mem-${i}`));
  const x = randomValues(2048 * 3, "mem-x", 1, 11);
  for (const hw of hws) {
    const sh = { k: 2048, n: 300, t: 3 };
    assert.ok(sameBits(await runMatmul(one, one.upload(hw), x, sh), await runMatmul(many, many.upload(hw), x, sh)), hw.name);
  }
  assert.equal(many.memories.length, 2, "first fit: the F32 weight opens a second memory, the rest share the first");
  assert.throws(() => many.upload({ name: "huge", type: F32.type, shape: [1024, 2048], bytes: new Uint8Array(8 << 20) }), /more than one wasm memory holds/);
  // An expert slot reused for another expert: same host bytes place, new contents.
  const slot = new Uint8Array(hws[1].bytes.length);
  slot.set(hws[1].bytes);
  const w1 = many.upload({ ...hws[1], bytes: slot });
  const used = many.memories.reduce((a, b) => a + b, 0);
  const x1 = x.subarray(0, 2048);
  const before = await runMatmul(many, w1, x1, { k: 2048, n: 300, t: 1 });
  const other = randomWeight(Q8_0, 2048, 300, "mem-other");
  slot.set(other.bytes);
  const w2 = many.upload({ ...other, bytes: slot });
  assert.equal(many.memories.reduce((a, b) => a + b, 0), used, "re-upload reuses the place");
  const after = await runMatmul(many, w2, x1, { k: 2048, n: 300, t: 1 });
  const scalar = new ScalarBackend();
  assert.ok(!sameBits(before, after));
  assert.ok(nmse(after, await runMatmul(scalar, scalar.upload(other), x1, { k: 2048, n: 300, t: 1 })) < 5e-4);
});

test("wasm activation quantisers equal ggml's bit for bit", () => {
  const be = wasm();
  const x = randomValues(2048, "quant", 1, 11);
  x.fill(0, 256, 512); // an all-zero Q8_K block
  x[600] = -9; // a negative extreme picks the scale's sign
  x[40] = 1e-9; // tiny values: the f16 scale of a block goes subnormal
  x.fill(1e-6, 64, 96);
  assert.deepEqual(be.quantizeQ8_0(x), refQ8_0(x));
  assert.deepEqual(be.quantizeQ8K(x), refQ8K(x));
});

test("weights bound through a weight arena (streamed experts, dense arenas) run the same kernels: the bits of an upload", async () => {
  const be = wasm();
  const sh = { k: 768, n: 40, t: 3 };
  const x = randomValues(sh.k * sh.t, "arena-x", 1, 11);
  for (const f of [Q4_K, ...LOWBIT]) {
    const hw = randomWeight(f, sh.k, sh.n, `arena-${f.name}`);
    const arena = be.allocWeights(hw.bytes.length + 64);
    arena.write(48, hw.bytes); // two tensors share an arena: this one at an offset
    const viaArena = await runMatmul(be, arena.view(hw, 48), x, sh);
    assert.ok(sameBits(viaArena, await runMatmul(be, be.upload(hw), x, sh)), f.name);
    arena.free();
  }
});
