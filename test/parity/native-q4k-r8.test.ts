// Q4_K_R8: Q4_K weights the native backend repacks in place into groups of 8 interleaved rows (owned uploads).
// Held to the plain Q4_K native kernel (same integer sums, only float summation order differs) and to the scalar
// reference, on every kernel set, at 1 and 2 threads (bit-identical), for matmul, expertFfn and moeFfn.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NativeBackend, Q4_K_R8, nativeLayout } from "../../src/backends/cpu/native.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend, HostWeight, Weight } from "../../src/backends/backend.js";
import { Q4_K, Q6_K, type QuantFormat } from "../../src/quant/index.js";
import { Stream } from "../../src/gen/random.js";
import { needNative, randomValues, bufOf, everyKernelLevel, perExpertMoe, owned, repacks } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";

const TOL_REF = 5e-4; // Q8_K activations vs the reference's f32
const TOL_PLAIN = 1e-10; // vs the plain Q4_K kernel: float summation order only

/** Rows of different scales with a few outliers, at an odd byte offset (kernels must not assume alignment). */
function weight(f: QuantFormat, k: number, n: number, name: string, seed: string): HostWeight {
  const rowBytes = (k / f.blockSize) * f.bytesPerBlock;
  const bytes = new Uint8Array(rowBytes * n + 1).subarray(1);
  const s = new Stream(7, seed), row = new Float32Array(k);
  for (let r = 0; r < n; r++) {
    s.fillUniform(row, 0.05 + (r % 5) * 0.03);
    for (let i = r % 97; i < k; i += 97) row[i] *= 6;
    f.quantizeRow(row, bytes.subarray(r * rowBytes, (r + 1) * rowBytes), k);
  }
  return { name, type: f.type, shape: [k, n], bytes };
}

async function matmul(be: Backend, w: Weight, x: Float32Array, t: number): Promise<Float32Array> {
  const n = w.shape[1];
  const out = be.alloc(n * t);
  be.matmul(out, w, bufOf(be, x), t);
  return be.read(out);
}

test("Q4_K uploads are repacked only when owned and in groups of 8 rows", (t) => {
  const a = needNative();
  const be = new NativeBackend({ threads: 2 });
  const hw = weight(Q4_K, 256, 16, "blk.0.ffn_up.weight", "kinds");
  const before = hw.bytes.slice();
  assert.equal(be.upload(hw).type, Q4_K.type);
  assert.ok(hw.bytes.every((b, i) => b === before[i]), "an upload that does not own its bytes must not change them");
  const own = owned(hw);
  if (!repacks(a)) {
    assert.equal(be.upload(own).type, Q4_K.type);
    t.diagnostic("no SIMD Q4_K_R8 kernels on this CPU: uploads stay plain Q4_K");
    return;
  }
  const up = be.upload(own);
  assert.equal(nativeLayout(up), Q4_K_R8);
  assert.equal(up.type, Q4_K.type);
  assert.ok(own.bytes.some((b, i) => b !== before[i]), "owned bytes are repacked in place");
  be.disown(up);
  assert.ok(own.bytes.every((b, i) => b === before[i]), "disown() gives the bytes back as they came");
  const wide = owned(weight(Q4_K, 2048, 64, "blk.0.ffn_gate_exps.weight", "wide")), wideBefore = wide.bytes.slice();
  be.disown(be.upload(wide)); // several blocks a row, several groups: the threads split groups
  assert.ok(wide.bytes.every((b, i) => b === wideBefore[i]), "2048 x 64: disown() restores every byte");
  assert.equal(be.upload(owned(weight(Q4_K, 256, 12, "rows", "kinds12"))).type, Q4_K.type);
  assert.equal(be.upload(owned(weight(Q6_K, 256, 16, "q6", "kinds6"))).type, Q6_K.type);
  for (const op of ["matmul", "expert_ffn", "moe_ffn"] as const) assert.ok(be.supports(op, Q4_K.type), op);
  assert.ok(!new ScalarBackend().supports("matmul", Q4_K_R8));
  assert.throws(() => a.repackR8(12, new Uint8Array(144 * 12), 256, 12), RangeError);
  assert.throws(() => a.matmul(Q4_K_R8, new Uint8Array(144 * 12), new Float32Array(256), new Float32Array(12), 256, 12, 1), RangeError);
});

const SHAPES: { k: number; n: number; ts: number[] }[] = [
  { k: 256, n: 8, ts: [1, 3, 4, 17, 64] },
  { k: 256, n: 768, ts: [1, 3, 4, 17, 64] },
  { k: 256, n: 2048, ts: [1, 4, 17] },
  { k: 256, n: 13, ts: [1, 4, 17] }, // not whole groups: stays plain Q4_K
  { k: 2048, n: 8, ts: [1, 3, 4, 17, 64] },
  { k: 2048, n: 768, ts: [1, 3, 4, 17, 64] },
  { k: 2048, n: 2048, ts: [1, 4] },
  { k: 2048, n: 37, ts: [1, 17] },
];

for (const sh of SHAPES) {
  test(`Q4_K_R8 matmul K ${sh.k} N ${sh.n}: equals plain Q4_K and the scalar reference on every kernel set`, async (t) => {
    const a = needNative();
    const scalar = new ScalarBackend();
    const hw = weight(Q4_K, sh.k, sh.n, `w${sh.k}x${sh.n}`, `r8-${sh.k}-${sh.n}`);
    let worstRef = 0, worstPlain = 0;
    for (const T of sh.ts) {
      const x = randomValues(sh.k * T, `x-${sh.k}-${T}`, 1, 17);
      const ref = await matmul(scalar, scalar.upload(hw), x, T);
      await everyKernelLevel(a, async (be) => {
        const w = be.upload(owned(hw));
        assert.equal(nativeLayout(w), sh.n % 8 === 0 && repacks(a) ? Q4_K_R8 : Q4_K.type);
        assert.equal(w.type, Q4_K.type); // the layout stays behind the backend
        return matmul(be, w, x, T);
      }, async (got, level) => {
        const plain = await matmul(new NativeBackend({ threads: 2 }), new NativeBackend({ threads: 2 }).upload(hw), x, T);
        const er = nmse(got, ref), ep = nmse(got, plain);
        worstRef = Math.max(worstRef, er);
        worstPlain = Math.max(worstPlain, ep);
        assert.ok(er < TOL_REF, `${level} T ${T}: nmse vs scalar reference ${er.toExponential(2)}`);
        assert.ok(ep < TOL_PLAIN, `${level} T ${T}: nmse vs plain Q4_K ${ep.toExponential(2)}`);
      });
    }
    t.diagnostic(`worst nmse: vs reference ${worstRef.toExponential(2)}, vs plain Q4_K ${worstPlain.toExponential(2)}`);
  });
}

test("addon: repackQ4KR8 then matmul of type Q4_K_R8 equals plain Q4_K on every kernel set (the portable kernel too)", async () => {
  const a = needNative();
  const k = 512, n = 24, T = 6;
  const hw = weight(Q4_K, k, n, "direct", "direct");
  const x = randomValues(k * T, "direct-x", 1, 17);
  const r8 = owned(hw).bytes;
  a.repackR8(12, r8, k, n);
  await everyKernelLevel(a, async () => {
    const got = new Float32Array(n * T), plain = new Float32Array(n * T);
    a.matmul(Q4_K_R8, r8, x, got, k, n, T);
    a.matmul(Q4_K.type, hw.bytes, x, plain, k, n, T);
    const e = nmse(got, plain);
    assert.ok(e < TOL_PLAIN, `${a.kernelLevel()}: nmse vs plain ${e.toExponential(2)}`);
    return got;
  }, () => {});
});

test("Q4_K_R8: how tokens are grouped (1 or 4 at a time) never changes an output bit", async () => {
  const a = needNative();
  const k = 2048, n = 64, T = 9;
  const hw = weight(Q4_K, k, n, "g", "grouping");
  const x = randomValues(k * T, "grouping-x", 1, 17);
  await everyKernelLevel(a, async (be) => {
    const r8 = owned(hw).bytes;
    a.repackR8(12, r8, k, n);
    const w = { name: "g", type: Q4_K.type, layout: Q4_K_R8, shape: [k, n], bytes: r8 } as Weight; // the addon's type, whatever upload does here
    const all = await matmul(be, w, x, T);
    for (let tok = 0; tok < T; tok++) {
      const one = await matmul(be, w, x.subarray(tok * k, (tok + 1) * k), 1);
      assert.ok(sameBits(one, all.subarray(tok * n, (tok + 1) * n)), `token ${tok}`);
    }
    return all;
  }, () => {});
});

test("expertFfn and moeFfn with repacked experts equal the per-expert path, plain Q4_K and the scalar reference", async (t) => {
  const a = needNative();
  const scalar = new ScalarBackend();
  const D = 512, F = 256, nExp = 5;
  let worst = 0;
  for (const fd of [Q4_K, Q6_K]) {
    const hs = Array.from({ length: nExp }, (_, e) => [
      weight(Q4_K, D, F, "gate", `g${e}`), weight(Q4_K, D, F, "up", `u${e}`), weight(fd, F, D, "down", `d${e}`),
    ]);
    for (const T of [1, 13]) {
      const rowsOf = (e: number) => (T === 1 ? [0] : e === 3 ? [] : Array.from({ length: T }, (_, i) => i).filter((i) => (i * 7 + e) % (e + 2) === 0));
      const x = randomValues(T * D, `mx${T}`, 1, 17);
      const run = async (be: Backend, mode: "moe" | "expert" | "ops", own: boolean): Promise<Float32Array> => {
        const out = be.alloc(T * D);
        const h = bufOf(be, x);
        const experts = hs.map((ws, e) => {
          const rows = Int32Array.from(rowsOf(e));
          const [gate, up, down] = ws.map((w) => be.upload(own ? owned(w) : w));
          return { gate, up, down, rows, scales: Float32Array.from(rows, (r) => 0.1 + ((r + e) % 5) / 7) };
        });
        if (own && be instanceof NativeBackend && repacks(a)) assert.equal(nativeLayout(experts[0].gate), Q4_K_R8);
        if (mode === "moe") be.moeFfn!(out, h, experts);
        else perExpertMoe(be, out, h, experts, D, F, mode === "expert");
        return be.read(out);
      };
      const ref = await run(scalar, "ops", false);
      await everyKernelLevel(a, async (be) => {
        const got = await run(be, "moe", true);
        assert.ok(sameBits(got, await run(be, "expert", true)), `down ${fd.name} T ${T}: moeFfn differs from the per-expert path`);
        assert.ok(sameBits(got, await run(be, "ops", true)), `down ${fd.name} T ${T}: moeFfn differs from matmul, swiglu, matmul`);
        const plain = await run(be, "moe", false);
        const ep = nmse(got, plain);
        assert.ok(ep < TOL_PLAIN, `down ${fd.name} T ${T}: nmse vs plain Q4_K experts ${ep.toExponential(2)}`);
        return got;
      }, (got, level) => {
        const e = nmse(got, ref);
        worst = Math.max(worst, e);
        assert.ok(e < TOL_REF, `down ${fd.name} ${level} T ${T}: nmse vs scalar ${e.toExponential(2)}`);
      });
    }
  }
  t.diagnostic(`worst nmse vs scalar: ${worst.toExponential(2)}`);
});

test("embed from a repacked Q4_K table (token_embd, also the tied output) equals embed from the plain bytes, bit for bit", async (t) => {
  const a = needNative();
  if (!repacks(a)) {
    t.diagnostic("no SIMD Q4_K_R8 kernels on this CPU: token_embd stays plain Q4_K");
    return;
  }
  const be = new NativeBackend({ threads: 2 });
  const scalar = new ScalarBackend();
  for (const [k, n] of [[256, 8], [2048, 64], [768, 24]]) {
    const hw = weight(Q4_K, k, n, "token_embd.weight", `embd-${k}-${n}`);
    const plain = scalar.upload({ ...hw, bytes: hw.bytes.slice() });
    const packed = be.upload(owned(hw));
    assert.equal(nativeLayout(packed), Q4_K_R8);
  assert.equal(packed.type, Q4_K.type);
    const ids = Int32Array.from({ length: n + 3 }, (_, i) => (i * 5 + 3) % n); // every row, some twice, any order
    const want = scalar.alloc(ids.length * k), got = be.alloc(ids.length * k);
    scalar.embed(want, plain, ids);
    be.embed(got, packed, ids);
    assert.ok(sameBits(await be.read(got), await scalar.read(want)), `[${k}, ${n}]`);
    assert.throws(() => be.embed(got, packed, Int32Array.of(n)), /token id .* out of range/);
  }
});
