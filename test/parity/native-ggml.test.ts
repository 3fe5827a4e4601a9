// Native matmul kernels against ggml itself: node-llama-cpp's prebuilt libggml-cpu (AVX2 build) quantises each activation
// row to the type's vec_dot_type (Q8_K, Q8_0 or Q8_1) and runs its vec_dot, exactly as llama.cpp's CPU backend
// pairs them (test/helpers/ggml-ref.c). Our activation quantisers equal ggml's bit for bit, and the integer
// block sums are exact, so on every kernel set the two differ only in the order the f32 block totals are added.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  IQ1_M, IQ1_S, IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S, IQ3_XXS, IQ4_NL, IQ4_XS, MXFP4, Q2_K, Q3_K, Q4_0, Q4_1, Q4_K, Q5_0, Q5_1, Q5_K, Q6_K, Q8_0,
} from "../../src/quant/index.js";
import { needNative, randomValues, randomWeight } from "../helpers/parity.js";
import { ggmlMatmul } from "../helpers/ggml-ref.js";
import { nmse } from "../helpers/numeric.js";

const TYPES = [IQ4_XS, IQ3_XXS, IQ2_XXS, IQ4_NL, IQ3_S, IQ2_XS, IQ2_S, IQ1_S, IQ1_M, Q5_0, Q4_1, Q5_1, Q2_K, Q3_K, Q5_K, Q4_0, Q8_0, Q4_K, Q6_K, MXFP4];
const TOL = 1e-10; // f32 summation order of the block totals

for (const f of TYPES) {
  test(`${f.name}: native matmul equals ggml's own CPU vec_dot (${f.name} x its vec_dot_type) on every kernel set (nmse < ${TOL})`, (t) => {
    const a = needNative();
    const best = a.kernelLevel();
    const worst: Record<string, number> = {};
    try {
      for (const sh of [{ k: 2048, n: 37, t: 3 }, { k: 768, n: 16, t: 1 }]) {
        const hw = randomWeight(f, sh.k, sh.n, `ggml-${f.name}-${sh.k}`);
        const x = randomValues(sh.k * sh.t, `ggml-x-${sh.k}`, 1, 11);
        const ref = ggmlMatmul(f, hw.bytes, x, sh.k, sh.n, sh.t);
        for (const level of a.kernelLevels()) {
          a.setKernelLevel(level);
          const out = new Float32Array(sh.n * sh.t);
          a.matmul(f.type, hw.bytes, x, out, sh.k, sh.n, sh.t);
          const e = nmse(out, ref);
          worst[level] = Math.max(worst[level] ?? 0, e);
          assert.ok(e < TOL, `${f.name} ${level} K=${sh.k} N=${sh.n} T=${sh.t}: nmse ${e.toExponential(2)} vs ggml`);
        }
      }
    } finally {
      a.setKernelLevel(best);
    }
    t.diagnostic(`worst nmse vs ggml: ${Object.entries(worst).map(([l, e]) => `${l} ${e.toExponential(2)}`).join(", ")}`);
  });
}
