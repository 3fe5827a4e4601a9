// Native matmul kernels held to the scalar reference: every weight type x kernel set (scalar C, AVX2, AVX-512,
// NEON: whichever this CPU runs) x shapes, by normalised MSE as llama.cpp's test-backend-ops does; thread
// counts must not change a single bit. The addon is required: CI builds it, so a missing addon fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { NativeAddon } from "../../src/backends/cpu/native-addon.js";
import { NativeBackend, nativeAvailable } from "../../src/backends/cpu/native.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import {
  F32, IQ1_M, IQ1_S, IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S, IQ3_XXS, IQ4_NL, IQ4_XS, MXFP4, Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0,
  type QuantFormat,
} from "../../src/quant/index.js";
import { needNative, randomWeight, randomValues, runMatmul, refQ8_0, refQ8K, MATMUL_FORMATS, MATMUL_TOL } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";

// The low-bit types of native/src/k_quants_lo.c, the i-quants of iq_quants.c and the legacy types of
// legacy_quants.c and MXFP4 of mxfp4.c too (their Q8 activations cost about what Q4_K's do; i-quant weights are
// random blocks, see randomWeight).
const LOWBIT = [Q4_0, Q2_K, Q3_K, Q5_K, IQ4_XS, IQ3_XXS, IQ2_XXS, IQ4_NL, IQ3_S, IQ2_XS, IQ2_S, IQ1_S, IQ1_M, Q5_0, Q4_1, Q5_1, MXFP4];
const TOL: Record<string, number> = { ...MATMUL_TOL, ...Object.fromEntries(LOWBIT.map((f) => [f.name, 5e-4])) };
const FORMATS = [...MATMUL_FORMATS, ...LOWBIT];

interface Shape { k: number; n: number; t: number }
function shapes(f: QuantFormat): Shape[] {
  const b = f.blockSize === 1 ? 32 : f.blockSize;
  return [
    { k: b, n: 1, t: 16 }, // one row, one block (16 tokens: one dot's nmse is its relative error, huge where terms cancel)
    { k: b, n: 37, t: 3 }, // N not a multiple of the thread count
    { k: 8 * b, n: 67, t: 17 },
    { k: 2048, n: 48, t: 64 }, // prefill-sized batch
    { k: 2048, n: 130, t: 1 }, // decode
    { k: 6144, n: 19, t: 1 },
    { k: 6144, n: 5, t: 17 }, // few rows, several tokens: chunks split tokens too
    { k: 768, n: 24, t: 5 }, // a3b's expert down (K = 768: 3 super-blocks)
    { k: 7168, n: 9, t: 2 }, // DeepSeek-V3's hidden size (28 super-blocks)
    ...(f.blockSize === 1 ? [{ k: 45, n: 13, t: 3 }] : []), // a K that leaves a SIMD tail
  ];
}

test("the native addon is built and loads", () => {
  const a = needNative();
  assert.ok(nativeAvailable());
  assert.ok(a.kernelLevels().includes("scalar"));
  assert.ok(a.kernelLevels().includes(a.kernelLevel()));
});

for (const f of FORMATS) {
  test(`${f.name}: native matmul matches the scalar backend on every kernel set (nmse < ${TOL[f.name]})`, async (t) => {
    const a = needNative();
    const levels = a.kernelLevels();
    const best = a.kernelLevel();
    const scalar = new ScalarBackend();
    const native = new NativeBackend({ threads: 2 });
    const worst: Record<string, number> = {};
    try {
      for (const sh of shapes(f)) {
        const hw = randomWeight(f, sh.k, sh.n, `${f.name}-${sh.k}-${sh.n}`);
        const x = randomValues(sh.k * sh.t, `x-${sh.k}-${sh.t}`, 1, 11);
        const ref = await runMatmul(scalar, scalar.upload(hw), x, sh);
        const w = native.upload(hw);
        for (const level of levels) {
          a.setKernelLevel(level);
          const got = await runMatmul(native, w, x, sh);
          const e = nmse(got, ref);
          worst[level] = Math.max(worst[level] ?? 0, e);
          assert.ok(e < TOL[f.name], `${f.name} ${level} K=${sh.k} N=${sh.n} T=${sh.t}: nmse ${e.toExponential(2)} >= ${TOL[f.name]}`);
        }
      }
    } finally {
      a.setKernelLevel(best);
    }
    t.diagnostic(`worst nmse: ${Object.entries(worst).map(([l, e]) => `${l} ${e.toExponential(2)}`).join(", ")}`);
  });
}

/** x moved onto the activation quantiser's grid, so re-quantising it inside the kernel loses nothing. */
function onGrid(a: NativeAddon, f: QuantFormat, x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  if (f.blockSize === 32) { // Q8_0, Q4_0 and MXFP4 meet Q8_0 activations
    const q = new Uint8Array((x.length / 32) * 34);
    a.quantizeQ8_0(x, q);
    Q8_0.dequantRow(q, out, x.length);
    return out;
  }
  const q = new Uint8Array((x.length / 256) * 292), dv = new DataView(q.buffer);
  a.quantizeQ8K(x, q);
  for (let i = 0; i < x.length; i++) {
    const b = 292 * Math.floor(i / 256);
    out[i] = Math.fround(dv.getFloat32(b, true) * dv.getInt8(b + 4 + (i % 256)));
  }
  return out;
}

test("with activations already on the Q8 grid, quantised kernels equal the scalar backend to f32 rounding", async () => {
  const a = needNative();
  const best = a.kernelLevel();
  const scalar = new ScalarBackend();
  const native = new NativeBackend({ threads: 2 });
  try {
    for (const f of [Q8_0, Q4_K, Q6_K, ...LOWBIT]) {
      const sh = { k: 2048, n: 33, t: 5 };
      const hw = randomWeight(f, sh.k, sh.n, `grid-${f.name}`);
      const x = onGrid(a, f, randomValues(sh.k * sh.t, "grid-x", 1, 11));
      const ref = await runMatmul(scalar, scalar.upload(hw), x, sh);
      for (const level of a.kernelLevels()) {
        a.setKernelLevel(level);
        const e = nmse(await runMatmul(native, native.upload(hw), x, sh), ref);
        // Q4_1 / Q5_1 meet Q8_1, whose s = d * sum(q) ggml stores as f16: the min term keeps that rounding (2e-7 measured).
        const tol = f === Q4_1 || f === Q5_1 ? 1e-6 : 1e-10;
        assert.ok(e < tol, `${f.name} ${level}: nmse ${e.toExponential(2)}`);
      }
    }
  } finally {
    a.setKernelLevel(best);
  }
});

test("thread count changes no bit of the result (1, 2, 3 threads; row and token splits)", () => {
  const a = needNative();
  const before = a.getThreads();
  try {
    for (const f of FORMATS) {
      for (const sh of [{ k: 2048, n: 131, t: 1 }, { k: 512, n: 37, t: 17 }, { k: 256, n: 3, t: 29 }]) {
        const hw = randomWeight(f, sh.k, sh.n, `thr-${f.name}-${sh.n}`);
        const x = randomValues(sh.k * sh.t, `thr-x-${sh.t}`, 1, 11);
        const outs = [1, 2, 3].map((n) => {
          a.setThreads(n);
          const out = new Float32Array(sh.n * sh.t);
          a.matmul(f.type, hw.bytes, x, out, sh.k, sh.n, sh.t);
          return out;
        });
        assert.ok(sameBits(outs[0], outs[1]) && sameBits(outs[0], outs[2]), `${f.name} K=${sh.k} N=${sh.n} T=${sh.t}`);
      }
    }
  } finally {
    a.setThreads(before);
  }
});

test("a batch of tokens gives each token the bits it gets alone (multi-token kernels agree with the single-row ones)", () => {
  const a = needNative();
  const best = a.kernelLevel();
  try {
    for (const level of a.kernelLevels()) {
      a.setKernelLevel(level);
      for (const f of FORMATS) {
        const sh = { k: 512, n: 29, t: 11 };
        const hw = randomWeight(f, sh.k, sh.n, `batch-${f.name}`);
        const x = randomValues(sh.k * sh.t, "batch-x", 1, 11);
        const all = new Float32Array(sh.n * sh.t);
        a.matmul(f.type, hw.bytes, x, all, sh.k, sh.n, sh.t);
        for (let tok = 0; tok < sh.t; tok++) {
          const one = new Float32Array(sh.n);
          a.matmul(f.type, hw.bytes, x.subarray(tok * sh.k, (tok + 1) * sh.k), one, sh.k, sh.n, 1);
          assert.ok(sameBits(one, all.subarray(tok * sh.n, (tok + 1) * sh.n)), `${f.name} ${level} token ${tok}`);
        }
      }
    }
  } finally {
    a.setKernelLevel(best);
  }
});

// Prefill batches of the grid i-quants run on 8-row panels (decoded once to int8, then every token; from 8 tokens a
// chunk); rows past the last whole group of 8 and short chunks take the dots. All of them end a super-block on the
// same exact integer total, so a token's bits depend neither on its batch nor on the thread count.
test("i-quant panels (prefill batches) give each token the bits it gets alone, on any thread count", () => {
  const a = needNative();
  const best = a.kernelLevel(), before = a.getThreads();
  try {
    for (const level of a.kernelLevels()) {
      a.setKernelLevel(level);
      for (const f of [IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, IQ4_XS]) {
        const sh = { k: 512, n: 69, t: 37 }; // 8 whole groups and 5 rows over; 9 groups of 4 tokens and one over
        const hw = randomWeight(f, sh.k, sh.n, `panel-${f.name}`);
        const x = randomValues(sh.k * sh.t, "panel-x", 1, 11);
        const outs = [1, 2, 3].map((n) => {
          a.setThreads(n);
          const out = new Float32Array(sh.n * sh.t);
          a.matmul(f.type, hw.bytes, x, out, sh.k, sh.n, sh.t);
          return out;
        });
        assert.ok(sameBits(outs[0], outs[1]) && sameBits(outs[0], outs[2]), `${f.name} ${level}: thread counts`);
        for (const tok of [0, 3, 4, 35, 36]) {
          const one = new Float32Array(sh.n);
          a.matmul(f.type, hw.bytes, x.subarray(tok * sh.k, (tok + 1) * sh.k), one, sh.k, sh.n, 1);
          assert.ok(sameBits(one, outs[0].subarray(tok * sh.n, (tok + 1) * sh.n)), `${f.name} ${level} token ${tok}`);
        }
      }
    }
  } finally {
    a.setKernelLevel(best);
    a.setThreads(before);
  }
});

test("the pool survives many short calls and resizes", () => {
  const a = needNative();
  const before = a.getThreads();
  const hw = randomWeight(Q8_0, 64, 4, "pool");
  const x = randomValues(64, "pool-x", 1, 11);
  const first = new Float32Array(4), out = new Float32Array(4);
  a.setThreads(2);
  a.matmul(Q8_0.type, hw.bytes, x, first, 64, 4, 1);
  for (let i = 0; i < 2000; i++) {
    if (i % 500 === 0) a.setThreads(1 + (i / 500) % 3);
    a.matmul(Q8_0.type, hw.bytes, x, out, 64, 4, 1);
    assert.ok(sameBits(out, first));
  }
  a.setSpin(0); // block at once: exercises the sleep / wake path
  a.setThreads(2);
  for (let i = 0; i < 200; i++) a.matmul(Q8_0.type, hw.bytes, x, out, 64, 4, 1);
  assert.ok(sameBits(out, first));
  a.setSpin(200);
  a.setThreads(before);
});

test("activation quantisers equal ggml's bit for bit on every kernel set", () => {
  const a = needNative();
  const best = a.kernelLevel();
  const x = randomValues(2048, "quant", 1, 11);
  x.fill(0, 256, 512); // an all-zero Q8_K block
  x[600] = -9; // a negative extreme picks the scale's sign
  try {
    for (const level of a.kernelLevels()) {
      a.setKernelLevel(level);
      const q0 = new Uint8Array((2048 / 32) * 34);
      a.quantizeQ8_0(x, q0);
      assert.deepEqual(q0, refQ8_0(x), `Q8_0 on ${level}`);
      const qk = new Uint8Array((2048 / 256) * 292 + 1).subarray(1);
      a.quantizeQ8K(x, qk);
      assert.deepEqual(qk, refQ8K(x), `Q8_K on ${level}`);
    }
  } finally {
    a.setKernelLevel(best);
  }
});

test("bad arguments throw typed errors naming the problem", () => {
  const a = needNative();
  const x = new Float32Array(64), out = new Float32Array(4);
  assert.throws(() => a.matmul(34, new Uint8Array(1024), x, out, 32, 1, 1), { name: "TypeError", message: /unsupported ggml type 34/ });
  assert.throws(() => a.matmul(Q8_0.type, new Uint8Array(1024), x, out, 48, 1, 1), { name: "RangeError", message: /not a whole number of blocks/ });
  assert.throws(() => a.matmul(Q8_0.type, new Uint8Array(33), x, out, 32, 1, 1), { name: "RangeError", message: /w has 33 bytes/ });
  assert.throws(() => a.matmul(F32.type, new Uint8Array(4 * 64), x, out, 64, 1, 2), { name: "RangeError", message: /x has 64 values/ });
  assert.throws(() => a.matmul(F32.type, new Uint8Array(4 * 64), x, x.subarray(0, 4), 64, 1, 1), { name: "RangeError", message: /overlaps/ });
  assert.throws(() => a.matmul(F32.type, new Uint8Array(4 * 64), new Float64Array(64) as never, out, 64, 1, 1), { name: "TypeError", message: /x must be a Float32Array/ });
  assert.throws(() => a.setKernelLevel("sse9"), { name: "RangeError" });
});

test("NativeBackend runs the scalar ops unchanged and reports its kernels", async () => {
  needNative();
  const nb = new NativeBackend({ threads: 1 });
  assert.equal(nb.name, "native");
  assert.equal(nb.threads, 1);
  assert.ok(["avx512", "avx2", "neon", "scalar"].includes(nb.kernels));
  const b = nb.alloc(4);
  nb.write(b, Float32Array.from([1, -2, 3, 0.5]));
  nb.swiglu(b, b, b, 4);
  const s = new ScalarBackend(), sb = s.alloc(4);
  s.write(sb, Float32Array.from([1, -2, 3, 0.5]));
  s.swiglu(sb, sb, sb, 4);
  assert.deepEqual(await nb.read(b), await s.read(sb));
  assert.throws(() => new NativeBackend({ threads: 0 }), RangeError);
  // Every type with a native kernel runs on it: none is handed to the scalar reference (load warns for those).
  for (const f of FORMATS) {
    assert.equal(nb.delegates("matmul", f.type), false, f.name);
    assert.ok(nb.supports("moe_ffn", f.type) && nb.supports("expert_ffn", f.type), f.name);
  }
  assert.equal(nb.delegates("matmul", 34), true); // TQ1_0: no kernel
});

test("poke: sleeping pool threads wake and spin for the run to come (their CPU time shows it), and a poked pool runs the same bits", async () => {
  const a = needNative();
  const before = a.getThreads();
  try {
    a.setThreads(3);
    a.setSpin(200);
    const hw = randomWeight(Q4_K, 512, 64, "poke");
    const x = randomValues(512, "poke-x", 1, 11);
    const run = () => {
      const out = new Float32Array(64);
      a.matmul(Q4_K.type, hw.bytes, x, out, 512, 64, 1);
      return out;
    };
    const ref = run();
    const idleCpuMs = async (poke: boolean) => {
      await new Promise((r) => setTimeout(r, 20)); // past the 200 µs spin: the workers sleep
      const c0 = process.cpuUsage();
      if (poke) a.poke!(100_000);
      await new Promise((r) => setTimeout(r, 150)); // this thread sleeps; poked workers spin up to 100 ms each
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / 1000;
    };
    const quiet = await idleCpuMs(false), poked = await idleCpuMs(true);
    // Two workers spinning 100 ms: ~200 ms of CPU on an idle machine; at least a quarter of one on a busy one.
    assert.ok(poked > 25 && poked > quiet + 20, `CPU ms while idle: poked ${poked.toFixed(1)}, not ${quiet.toFixed(1)}`);
    a.poke!(1000);
    assert.ok(sameBits(run(), ref));
    a.setThreads(1);
    a.poke!(1000); // one thread: nothing to wake
    assert.ok(sameBits(run(), ref));
  } finally {
    a.setThreads(before);
  }
});
