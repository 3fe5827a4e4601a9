// The WebAssembly kernels of the DeepSeek (MLA), gpt-oss and Qwen3-Next / Qwen3.5 (gated DeltaNet) forward passes held to the
// scalar reference (the same cases as native-mla-ops.test.ts), one thread and two: attention with narrow V heads and
// f16 probabilities, per-head matmul, the gated delta rule, causal conv1d + SiLU, L2 norm, gated RMSNorm, sigmoid
// gate; gpt-oss's attention with sinks and a sliding window, clamped SwiGLU and bias rows; delta gates and the copy
// stay with the fallback (bit for bit).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { WasmBackend, wasmAvailable, wasmKernelsError } from "../../src/backends/wasm/wasm.js";
import { nmse, sameBits } from "../helpers/numeric.js";
import { mlaOpCases } from "../helpers/mla-cases.js";
import { gptossOpCases } from "../helpers/gptoss-cases.js";

const cases = [...mlaOpCases(), ...gptossOpCases()];
for (const op of new Set(cases.map((c) => c.op))) {
  test(`wasm ${op} matches the scalar backend`, async (t) => {
    assert.ok(wasmAvailable(), `WebAssembly SIMD is required: ${wasmKernelsError()}`);
    const scalar = new ScalarBackend(), one = new WasmBackend({ fallback: new ScalarBackend() }), two = new WasmBackend({ fallback: new ScalarBackend(), threads: 2 });
    try {
      let worst = 0;
      for (const c of cases.filter((c) => c.op === op)) {
        const ref = await c.run(scalar), got = await c.run(one);
        assert.ok(sameBits(got, await c.run(two)), `${c.label}: 1 and 2 threads differ`);
        const e = c.tol === 0 ? (sameBits(got, ref) ? 0 : Infinity) : nmse(got, ref);
        worst = Math.max(worst, e);
        assert.ok(e <= c.tol, `${c.label}: nmse ${e.toExponential(2)} > ${c.tol}`);
      }
      t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
    } finally {
      one.close();
      two.close();
    }
  });
}
