// Q8_0_R8: Q8_0 weights repacked in place into 8-row interleaved groups (native/src/q8_0.c). Held to the plain
// Q8_0 kernels (same integer sums; float order only) and the scalar reference, on every kernel set this CPU runs
// (the portable C kernel too), 1 and 2 threads bit for bit, token grouping bit for bit; embed rebuilds rows exactly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NativeBackend, Q8_0_R8, nativeLayout } from "../../src/backends/cpu/native.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend, HostWeight, Weight } from "../../src/backends/backend.js";
import { Q4_K, Q8_0 } from "../../src/quant/index.js";
import { needNative, randomValues, randomWeight, runMatmul, bufOf, everyKernelLevel, owned, repacks } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";

const TOL_REF = 5e-4; // Q8_0 activations vs the reference's f32
const TOL_PLAIN = 1e-10; // vs the plain Q8_0 kernel: float summation order only
const TOL_PLAIN_MOE = 1e-6; // a whole MoE layer vs plain Q8_0 experts (see the test)

/** n Q8_0 rows of k values (odd byte offset, some outliers). */
const weight = (k: number, n: number, name: string, seed: string): HostWeight => ({ ...randomWeight(Q8_0, k, n, seed), name });
const matmul = (be: Backend, w: Weight, x: Float32Array, t: number) => runMatmul(be, w, x, { k: w.shape[0], n: w.shape[1], t });

for (const { k, n, ts } of [
  { k: 32, n: 8, ts: [1, 3, 4, 17] },
  { k: 2048, n: 768, ts: [1, 4, 5, 17] },
  { k: 768, n: 2048, ts: [1, 4] },
  { k: 96, n: 40, ts: [1, 3, 8, 64] },
  { k: 2048, n: 13, ts: [1, 4] }, // not whole groups: stays plain Q8_0
]) {
  test(`Q8_0_R8 matmul K ${k} N ${n}: equals plain Q8_0 and the scalar reference on every kernel set`, async (t) => {
    const a = needNative();
    const scalar = new ScalarBackend();
    const hw = weight(k, n, `w${k}x${n}`, `q8r8-${k}-${n}`);
    let worstRef = 0, worstPlain = 0;
    for (const T of ts) {
      const x = randomValues(k * T, `q8x-${k}-${T}`, 1, 17);
      const ref = await matmul(scalar, scalar.upload(hw), x, T);
      await everyKernelLevel(a, async (be) => {
        const w = be.upload(owned(hw));
        assert.equal(nativeLayout(w), n % 8 === 0 && repacks(a) ? Q8_0_R8 : Q8_0.type);
        assert.equal(w.type, Q8_0.type); // the layout stays behind the backend
        return matmul(be, w, x, T);
      }, async (got, level) => {
        const plain = new Float32Array(n * T);
        a.matmul(Q8_0.type, hw.bytes, x, plain, k, n, T);
        const er = nmse(got, ref), ep = nmse(got, plain);
        worstRef = Math.max(worstRef, er);
        worstPlain = Math.max(worstPlain, ep);
        assert.ok(er < TOL_REF, `${level} T ${T}: nmse vs scalar reference ${er.toExponential(2)}`);
        assert.ok(ep < TOL_PLAIN, `${level} T ${T}: nmse vs plain Q8_0 ${ep.toExponential(2)}`);
      });
    }
    t.diagnostic(`worst nmse: vs reference ${worstRef.toExponential(2)}, vs plain Q8_0 ${worstPlain.toExponential(2)}`);
  });
}

test("Q8_0_R8: the portable kernel and how tokens are grouped (1 or 4 at a time) never change an output bit", async () => {
  const a = needNative();
  const k = 1024, n = 64, T = 9;
  const hw = weight(k, n, "g", "q8-grouping");
  const x = randomValues(k * T, "q8-grouping-x", 1, 17);
  const r8 = owned(hw).bytes;
  a.repackR8(Q8_0.type, r8, k, n);
  const w = { name: "g", type: Q8_0.type, layout: Q8_0_R8, shape: [k, n], bytes: r8 } as Weight;
  const outs: Float32Array[] = [];
  await everyKernelLevel(a, async (be) => {
    const all = await matmul(be, w, x, T);
    for (let tok = 0; tok < T; tok++) {
      const one = await matmul(be, w, x.subarray(tok * k, (tok + 1) * k), 1);
      assert.ok(sameBits(one, all.subarray(tok * n, (tok + 1) * n)), `token ${tok}`);
    }
    return all;
  }, (got) => void outs.push(got));
  // Every kernel set keeps exact int32 block sums and one multiply-add per block: all levels agree bit for bit.
  for (const o of outs) assert.ok(sameBits(o, outs[0]), "kernel sets disagree");
});

test("Q8_0 uploads are repacked only when owned and in groups of 8 rows; embed from a repacked table is bit-exact", async (t) => {
  const a = needNative();
  const be = new NativeBackend({ threads: 2 });
  const scalar = new ScalarBackend();
  const hw = weight(256, 16, "token_embd.weight", "q8-embd");
  const before = hw.bytes.slice();
  assert.equal(be.upload(hw).type, Q8_0.type);
  assert.ok(hw.bytes.every((b, i) => b === before[i]), "an upload that does not own its bytes must not change them");
  if (!repacks(a)) {
    t.diagnostic("no SIMD Q8_0_R8 kernels on this CPU: uploads stay plain Q8_0");
    return;
  }
  assert.equal(be.upload(owned(weight(256, 12, "rows", "q8-12"))).type, Q8_0.type);
  const packed = be.upload(owned(hw));
  assert.equal(nativeLayout(packed), Q8_0_R8);
  assert.equal(packed.type, Q8_0.type);
  const ids = Int32Array.from({ length: 19 }, (_, i) => (i * 5 + 3) % 16);
  const want = scalar.alloc(ids.length * 256), got = be.alloc(ids.length * 256);
  scalar.embed(want, scalar.upload({ ...hw, bytes: before }), ids);
  be.embed(got, packed, ids);
  assert.ok(sameBits(await be.read(got), await scalar.read(want)));
  for (const op of ["matmul", "expert_ffn", "moe_ffn"] as const) assert.ok(be.supports(op, Q8_0.type), op);
  assert.throws(() => a.repackR8(Q8_0.type, new Uint8Array(34 * 12), 32, 12), /N = 12 of 8/);
  assert.throws(() => a.repackR8(Q8_0.type, new Uint8Array(34 * 8), 48, 8), /multiple of 32/);
  assert.throws(() => a.repackR8(Q8_0.type, new Uint8Array(34 * 8 - 1), 32, 8), /bytes has 271 bytes/);
  assert.throws(() => a.repackR8(Q4_K.type + 2, new Uint8Array(210 * 8), 256, 8), /not Q4_K \(12\) or Q8_0 \(8\)/);
  assert.throws(() => a.repackR8(Q8_0.type, new Uint8Array(34 * 8), 32, 8, 2 as 1), /undo must be an integer in \[0, 1\]/);
  // disown() gives a repacked upload's bytes back as they came (the split GPU tier uploads such a record).
  const wide = owned(weight(2048, 64, "blk.0.ffn_down_exps.weight", "q8-wide")), wideBefore = wide.bytes.slice();
  const up = be.upload(wide);
  assert.equal(nativeLayout(up), Q8_0_R8);
  be.disown(up);
  assert.ok(wide.bytes.every((b, i) => b === wideBefore[i]), "2048 x 64: disown() restores every byte");
});

test("moeFfn with Q8_0_R8 experts equals moeFfn with plain Q8_0 experts and the scalar reference", async () => {
  const a = needNative();
  const scalar = new ScalarBackend();
  const D = 256, F = 96, nExp = 4, T = 7;
  const hs = Array.from({ length: nExp }, (_, e) => [weight(D, F, "gate", `g${e}`), weight(D, F, "up", `u${e}`), weight(F, D, "down", `d${e}`)]);
  const x = randomValues(T * D, "q8-moe-x", 1, 17);
  const run = async (be: Backend, own: boolean): Promise<Float32Array> => {
    const out = be.alloc(T * D);
    const experts = hs.map((ws, e) => {
      const rows = Int32Array.from({ length: T }, (_, i) => i).filter((i) => (i + e) % (e + 1) === 0);
      const [gate, up, down] = ws.map((w) => be.upload(own ? owned(w) : w));
      return { gate, up, down, rows, scales: Float32Array.from(rows, (r) => 0.2 + ((r + e) % 3) / 5) };
    });
    if (be.moeFfn) be.moeFfn(out, bufOf(be, x), experts);
    else {
      const h = bufOf(be, x), xe = be.alloc(T * D), g = be.alloc(T * F), u = be.alloc(T * F), y = be.alloc(T * D);
      for (const ex of experts) {
        const m = ex.rows.length;
        be.gatherRows(xe, h, ex.rows, D);
        be.matmul(g, ex.gate, xe, m);
        be.matmul(u, ex.up, xe, m);
        be.swiglu(g, g, u, m * F);
        be.matmul(y, ex.down, g, m);
        be.scatterAddRows(out, y, ex.rows, ex.scales, D);
      }
    }
    return be.read(out);
  };
  const ref = await run(scalar, false);
  await everyKernelLevel(a, async (be) => {
    const got = await run(be, true);
    const ep = nmse(got, await run(be, false)), er = nmse(got, ref);
    // The intermediate is quantised again for down: a float-order difference in gate/up can move one of its
    // values across a rounding boundary (measured 2e-8 here), far inside the reference tolerance.
    assert.ok(ep < TOL_PLAIN_MOE, `repacked vs plain experts: nmse ${ep.toExponential(2)}`);
    assert.ok(er < 5e-4, `vs the scalar reference: nmse ${er.toExponential(2)}`);
    return got;
  }, () => {});
});
