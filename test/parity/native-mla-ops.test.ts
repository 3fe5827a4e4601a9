// The native kernels of the DeepSeek (MLA), gpt-oss and Qwen3-Next / Qwen3.5 (gated DeltaNet) forward passes held to the
// scalar reference on every kernel set this CPU runs, 1 and 2 threads agreeing bit for bit: attention with narrow V
// heads and f16 probabilities, per-head matmul, causal conv1d + SiLU with its rolling state, L2 norm, gated RMSNorm,
// sigmoid gate, delta-rule gates, the f16-rounding row copy and rope from the reference's angles (NORM, offset, YaRN);
// gpt-oss's attention with sinks and a sliding window, its clamped SwiGLU and bias rows;
// the delta rule: native-delta-net.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { NativeBackend } from "../../src/backends/cpu/native.js";
import { needNative, everyKernelLevel } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";
import { mlaOpCases } from "../helpers/mla-cases.js";
import { gptossOpCases } from "../helpers/gptoss-cases.js";

const cases = [...mlaOpCases().filter((c) => c.op !== "gatedDeltaNet"), ...gptossOpCases()];
for (const op of new Set(cases.map((c) => c.op))) {
  test(`native ${op} matches the scalar backend`, async (t) => {
    const a = needNative(), scalar = new ScalarBackend();
    let worst = 0;
    for (const c of cases.filter((c) => c.op === op)) {
      const ref = await c.run(scalar);
      await everyKernelLevel(a, (be) => c.run(be), (got, level) => {
        const e = c.tol === 0 ? (sameBits(got, ref) ? 0 : Infinity) : nmse(got, ref);
        worst = Math.max(worst, e);
        assert.ok(e <= c.tol, `${c.label} ${level}: nmse ${e.toExponential(2)} > ${c.tol}`);
      });
    }
    t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
  });
}

test("native copy refuses rows past either buffer", () => {
  const be = new NativeBackend({ threads: 1 });
  assert.throws(() => be.copy(be.alloc(10), be.alloc(10), { rows: 2, n: 7, src: { offset: 0, stride: 4 }, dst: { offset: 0, stride: 4 } }), RangeError);
});
