// The native gated delta rule (Qwen3-Next / Qwen3.5 linear attention) held to the scalar reference: outputs and
// the updated state by normalised MSE, both head mappings, one token and a batch, from a nonzero state, in place and
// into another buffer; value heads run in parallel, so 1 and 3 threads must agree bit for bit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NativeBackend } from "../../src/backends/cpu/native.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend, DeltaNetParams } from "../../src/backends/backend.js";
import { needNative, randomValues, bufOf } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";

const TOL = 1e-10; // f64 sums like the reference, f32 state rounded at the same points

async function run(be: Backend, p: DeltaNetParams, seed: string, inPlace = true): Promise<Float32Array[]> {
  const { nTokens: T, nHeadK, nHeadV, headDim: S } = p;
  const q = randomValues(T * nHeadK * S, `${seed}-q`), k = randomValues(T * nHeadK * S, `${seed}-k`), v = randomValues(T * nHeadV * S, `${seed}-v`, 2);
  const g = randomValues(T * nHeadV, `${seed}-g`).map((x) => -Math.abs(x)), beta = randomValues(T * nHeadV, `${seed}-b`).map((x) => 1 / (1 + Math.exp(-x)));
  // L2-normed q and k, as the model feeds them.
  for (const x of [q, k]) {
    for (let r = 0; r < x.length; r += S) {
      const row = x.subarray(r, r + S);
      const n = Math.hypot(...row);
      row.forEach((y, i) => (row[i] = y / n));
    }
  }
  const s0 = randomValues(nHeadV * S * S, `${seed}-s`, 0.3);
  const state = bufOf(be, s0), next = inPlace ? state : be.alloc(s0.length), out = be.alloc(T * nHeadV * S);
  be.gatedDeltaNet(out, bufOf(be, q), bufOf(be, k), bufOf(be, v), bufOf(be, g), bufOf(be, beta), state, next, p);
  if (!inPlace) assert.ok(sameBits(await be.read(state), s0), "out of place: the input state is untouched");
  return [await be.read(out), await be.read(next)];
}

test("native gatedDeltaNet matches the scalar backend; 1 and 3 threads agree bit for bit", async () => {
  needNative();
  const scalar = new ScalarBackend();
  const one = new NativeBackend({ threads: 1 }), three = new NativeBackend({ threads: 3 });
  let worst = 0;
  for (const kvMap of ["interleave", "tile"] as const) {
    for (const [T, nHeadK, nHeadV, S] of [[1, 2, 6, 16], [5, 2, 6, 16], [3, 4, 8, 128], [1, 16, 64, 128]]) {
      const p: DeltaNetParams = { nTokens: T, nHeadK, nHeadV, headDim: S, kvMap };
      const seed = `${kvMap}-${T}-${nHeadV}-${S}`;
      const [ro, rs] = await run(scalar, p, seed);
      const [o1, s1] = await run(one, p, seed);
      const [o3, s3] = await run(three, p, seed);
      assert.ok(sameBits(o1, o3) && sameBits(s1, s3), `${seed}: threads differ`);
      const [oo, so] = await run(three, p, seed, false);
      assert.ok(sameBits(o1, oo) && sameBits(s1, so), `${seed}: out of place differs`);
      for (const [a, b, what] of [[o1, ro, "out"], [s1, rs, "state"]] as const) {
        const e = nmse(a, b);
        worst = Math.max(worst, e);
        assert.ok(e <= TOL, `${seed} ${what}: nmse ${e.toExponential(2)} > ${TOL}`);
      }
    }
  }
  console.log(`# native gatedDeltaNet vs scalar: worst nmse ${worst.toExponential(2)}`);
});
