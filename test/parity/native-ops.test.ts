// Native non-matmul ops (rmsNorm, rope, add, swiglu, attention, scatter-add, fused expert FFN) held to the
// scalar reference by normalised MSE, on every kernel set this CPU runs, at odd shapes; 1 and 2 threads must
// agree bit for bit.
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import assert from "node:assert/strict";
import { NativeBackend } from "../../src/backends/cpu/native.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { AttentionParams, Backend } from "../../src/backends/backend.js";
import { BF16, F16, F32, IQ2_XXS, IQ3_XXS, IQ4_NL, MXFP4, Q4_1, Q4_K, Q6_K, Q8_0, type QuantFormat } from "../../src/quant/index.js";
import { needNative, randomValues, randomWeight, owned, bufOf, everyKernelLevel, perExpertMoe, MATMUL_TOL } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";

/** A weight of f's type from values (F32 bytes at an odd offset: the addon must not assume alignment). */
function weight(f: QuantFormat, vals: Float32Array, k: number, n: number, name: string) {
  if (f.dequantOnly) return { ...randomWeight(f, k, n, `${name}-${vals[0]}`), name }; // random blocks, seeded by the values
  const rowBytes = (k / f.blockSize) * f.bytesPerBlock;
  const bytes = new Uint8Array(rowBytes * n + 1).subarray(1);
  for (let r = 0; r < n; r++) f.quantizeRow(vals.subarray(r * k, (r + 1) * k), bytes.subarray(r * rowBytes, (r + 1) * rowBytes), k);
  return { name, type: f.type, shape: [k, n], bytes };
}

const TOL_EXACTISH = 1e-6; // rmsNorm, rope, add, swiglu, scatter-add: f64 maths like the reference, summation order aside
const TOL_ATTN = 1e-5; // f32 dot products and V sums vs the reference's f64
const TOL_FFN = 5e-4; // Q8 activations (input and intermediate) vs the reference's f32 activations

test("native rmsNorm matches the scalar backend", async (t) => {
  const a = needNative();
  const scalar = new ScalarBackend();
  let worst = 0;
  for (const [len, rows] of [[2048, 1], [2048, 17], [128, 32 * 17], [128, 4], [45, 3], [2048, 64]]) {
    const x = randomValues(len * rows, `rms-x-${len}-${rows}`, 3);
    const w = scalar.upload(weight(F32, randomValues(len, `rms-w-${len}`, 1), len, 1, "norm"));
    const ref = await (async () => { const xb = bufOf(scalar, x); scalar.rmsNorm(xb, xb, w, 1e-6, len, rows); return scalar.read(xb); })();
    await everyKernelLevel(a, async (be) => {
      const xb = bufOf(be, x), out = be.alloc(len * rows);
      be.rmsNorm(out, xb, w, 1e-6, len, rows);
      const inPlace = bufOf(be, x);
      be.rmsNorm(inPlace, inPlace, w, 1e-6, len, rows);
      const r = await be.read(out);
      assert.ok(sameBits(r, await be.read(inPlace)), "in place differs");
      return r;
    }, (got, level) => {
      const e = nmse(got, ref);
      worst = Math.max(worst, e);
      assert.ok(e < TOL_EXACTISH, `${level} len ${len} rows ${rows}: nmse ${e.toExponential(2)}`);
    });
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("native rope matches the scalar backend (positions not from 0, odd token counts)", async (t) => {
  const a = needNative();
  const scalar = new ScalarBackend();
  let worst = 0;
  for (const [T, nHead, hd, start] of [[1, 32, 128, 0], [1, 4, 128, 4093], [17, 32, 128, 5], [17, 4, 128, 100], [3, 2, 64, 7], [64, 32, 128, 0]]) {
    const pos = Int32Array.from({ length: T }, (_, i) => start + i * (i % 3 === 2 ? 2 : 1));
    const x = randomValues(T * nHead * hd, `rope-${T}-${nHead}`, 2);
    const xr = bufOf(scalar, x);
    scalar.rope(xr, pos, nHead, hd, 1e6);
    const ref = await scalar.read(xr);
    await everyKernelLevel(a, async (be) => {
      const xb = bufOf(be, x);
      be.rope(xb, pos, nHead, hd, 1e6);
      return be.read(xb);
    }, (got, level) => {
      const e = nmse(got, ref);
      worst = Math.max(worst, e);
      assert.ok(e < TOL_EXACTISH, `${level} T ${T} heads ${nHead} start ${start}: nmse ${e.toExponential(2)}`);
    });
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("native partial rope (first nRot of each head, rest passed through) matches the scalar backend", async (t) => {
  const a = needNative();
  const scalar = new ScalarBackend();
  let worst = 0;
  for (const [T, nHead, hd, nRot, start] of [[1, 8, 128, 64, 4093], [17, 4, 128, 64, 5], [3, 2, 64, 16, 0], [5, 3, 12, 2, 9]]) {
    const pos = Int32Array.from({ length: T }, (_, i) => start + i);
    const x = randomValues(T * nHead * hd, `prope-${T}-${nHead}-${nRot}`, 2);
    const xr = bufOf(scalar, x);
    scalar.rope(xr, pos, nHead, hd, 1e6, nRot);
    const ref = await scalar.read(xr);
    await everyKernelLevel(a, async (be) => {
      const xb = bufOf(be, x);
      be.rope(xb, pos, nHead, hd, 1e6, nRot);
      return be.read(xb);
    }, (got, level) => {
      const e = nmse(got, ref);
      worst = Math.max(worst, e);
      assert.ok(e < TOL_EXACTISH, `${level} T ${T} heads ${nHead} nRot ${nRot}: nmse ${e.toExponential(2)}`);
      for (let r = 0; r < T * nHead; r++) assert.ok(sameBits(got.subarray(r * hd + nRot, (r + 1) * hd), x.subarray(r * hd + nRot, (r + 1) * hd)), "unroped values changed");
    });
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("native rope at one position (decode) equals the batched path bit for bit, across repeated and changed positions, bases and head sizes", async () => {
  needNative();
  const be = new NativeBackend({ threads: 2 });
  // Single-token calls reuse the last position's angles; a batch of two computes them afresh: row 0 must agree.
  for (const [p, hd, base] of [[5, 128, 1e6], [5, 128, 1e6], [9, 128, 1e6], [9, 64, 1e6], [9, 64, 1e4], [5, 128, 1e6], [4093, 128, 1e6]]) {
    const x = randomValues(2 * 4 * hd, `rope1-${p}-${hd}`, 2);
    const one = bufOf(be, x.slice(0, 4 * hd));
    be.rope(one, Int32Array.of(p), 4, hd, base);
    const two = bufOf(be, x);
    be.rope(two, Int32Array.of(p, p + 1), 4, hd, base);
    assert.ok(sameBits(await be.read(one), (await be.read(two)).subarray(0, 4 * hd)), `position ${p} head ${hd} base ${base}`);
  }
});

test("native add, swiglu and scatterAddRows match the scalar backend", async (t) => {
  const a = needNative();
  const scalar = new ScalarBackend();
  let worst = 0;
  for (const n of [1, 37, 768 * 8, 2048 * 17, 300_001]) {
    const x = randomValues(n, `ew-x-${n}`, 4), y = randomValues(n, `ew-y-${n}`, 2);
    for (const op of ["add", "swiglu"] as const) {
      const o = bufOf(scalar, x);
      scalar[op](o, o, bufOf(scalar, y), n);
      const ref = await scalar.read(o);
      await everyKernelLevel(a, async (be) => {
        const xb = bufOf(be, x);
        be[op](xb, xb, bufOf(be, y), n);
        return be.read(xb);
      }, (got, level) => {
        const e = nmse(got, ref);
        worst = Math.max(worst, e);
        assert.ok(e < TOL_EXACTISH, `${op} ${level} n ${n}: nmse ${e.toExponential(2)}`);
      });
    }
  }
  const D = 2048, rows = Int32Array.of(3, 0, 3, 16), scales = Float32Array.of(0.25, -1.5, 0.125, 0.7);
  const base = randomValues(17 * D, "sc-base"), x = randomValues(rows.length * D, "sc-x");
  const o = bufOf(scalar, base);
  scalar.scatterAddRows(o, bufOf(scalar, x), rows, scales, D);
  const ref = await scalar.read(o);
  await everyKernelLevel(a, async (be) => {
    const ob = bufOf(be, base);
    be.scatterAddRows(ob, bufOf(be, x), rows, scales, D);
    return be.read(ob);
  }, (got, level) => assert.ok(nmse(got, ref) < TOL_EXACTISH, `scatterAddRows ${level}`));
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("native attention matches the scalar backend (decode, prefill, GQA 4/2 and 32/4, start > 0)", async (t) => {
  const a = needNative();
  const scalar = new ScalarBackend();
  let worst = 0;
  const cases: AttentionParams[] = [
    { nTokens: 1, startPos: 0, nHead: 4, nHeadKv: 2, headDim: 64, scale: 1 / 8 },
    { nTokens: 1, startPos: 300, nHead: 32, nHeadKv: 4, headDim: 128, scale: 1 / Math.sqrt(128) },
    { nTokens: 17, startPos: 0, nHead: 32, nHeadKv: 4, headDim: 128, scale: 1 / Math.sqrt(128) },
    { nTokens: 17, startPos: 23, nHead: 4, nHeadKv: 2, headDim: 128, scale: 1 / Math.sqrt(128) },
    { nTokens: 5, startPos: 9, nHead: 4, nHeadKv: 4, headDim: 45, scale: 0.3 },
    { nTokens: 17, startPos: 120, nHead: 4, nHeadKv: 2, headDim: 128, scale: 1 / Math.sqrt(128) }, // key chunks, some past a token's end
    { nTokens: 1, startPos: 1000, nHead: 32, nHeadKv: 4, headDim: 128, scale: 1 / Math.sqrt(128) }, // 8 key chunks merged
    { nTokens: 64, startPos: 64, nHead: 32, nHeadKv: 4, headDim: 128, scale: 1 / Math.sqrt(128) },
  ];
  for (const p of cases) {
    const kvDim = p.nHeadKv * p.headDim, nPos = p.startPos + p.nTokens;
    const q = randomValues(p.nTokens * p.nHead * p.headDim, `q-${p.nTokens}-${p.startPos}`, 3);
    const k = randomValues(nPos * kvDim, `k-${nPos}-${kvDim}`, 3), v = randomValues(nPos * kvDim, `v-${nPos}-${kvDim}`, 1);
    const ro = scalar.alloc(p.nTokens * p.nHead * p.headDim);
    scalar.attention(ro, bufOf(scalar, q), bufOf(scalar, k), bufOf(scalar, v), p);
    const ref = await scalar.read(ro);
    await everyKernelLevel(a, async (be) => {
      const out = be.alloc(p.nTokens * p.nHead * p.headDim);
      be.attention(out, bufOf(be, q), bufOf(be, k), bufOf(be, v), p);
      return be.read(out);
    }, (got, level) => {
      const e = nmse(got, ref);
      worst = Math.max(worst, e);
      assert.ok(e < TOL_ATTN, `${level} ${JSON.stringify(p)}: nmse ${e.toExponential(2)}`);
    });
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("native addRows equals the scalar backend bit for bit (f32 adds); a 1-D weight matmul within rounding", async () => {
  needNative();
  const scalar = new ScalarBackend(), be = new NativeBackend();
  const bias = randomValues(96, "bias"), x = randomValues(5 * 96, "bx");
  const addRows = async (b: Backend) => {
    const o = bufOf(b, x);
    b.addRows(o, b.upload({ name: "b", type: 0, shape: [96], bytes: new Uint8Array(bias.buffer) }), 96, 5);
    return b.read(o);
  };
  assert.ok(sameBits(await addRows(be), await addRows(scalar)), "addRows");
  const mv = async (b: Backend) => {
    const o = b.alloc(5);
    b.matmul(o, b.upload({ name: "g", type: 0, shape: [96], bytes: new Uint8Array(bias.buffer) }), bufOf(b, x), 5);
    return b.read(o);
  };
  assert.ok(nmse(await mv(be), await mv(scalar)) < TOL_EXACTISH, "1-D weight matmul");
});

test("native fused expert FFN matches the scalar backend's gate, up, swiglu, down", async (t) => {
  const a = needNative();
  const scalar = new ScalarBackend();
  const worst: Record<string, number> = {};
  const combos: [QuantFormat, QuantFormat, QuantFormat][] = [
    [Q8_0, Q8_0, Q8_0], [Q4_K, Q4_K, Q6_K], [Q6_K, Q6_K, Q6_K], [F16, F16, F16], [BF16, BF16, F32], [Q4_K, Q8_0, F16],
  ];
  for (const [fg, fu, fd] of combos) {
    for (const [D, F, n] of [[256, 256, 1], [2048, 768, 1], [2048, 768, 17], [512, 512, 5]]) {
      const label = `${fg.name}/${fu.name}/${fd.name}`;
      const hg = weight(fg, randomValues(D * F, `g-${D}-${F}`, 0.1), D, F, "gate");
      const hu = weight(fu, randomValues(D * F, `u-${D}-${F}`, 0.1), D, F, "up");
      const hd = weight(fd, randomValues(F * D, `d-${D}-${F}`, 0.1), F, D, "down");
      const x = randomValues(n * D, `fx-${D}-${n}`, 1);
      const [sg, su, sd] = [hg, hu, hd].map((w) => scalar.upload(w));
      const ge = scalar.alloc(n * F), ue = scalar.alloc(n * F), ro = scalar.alloc(n * D), xs = bufOf(scalar, x);
      scalar.matmul(ge, sg, xs, n);
      scalar.matmul(ue, su, xs, n);
      scalar.swiglu(ge, ge, ue, n * F);
      scalar.matmul(ro, sd, ge, n);
      const ref = await scalar.read(ro);
      await everyKernelLevel(a, async (be) => {
        assert.ok(be.supports("expert_ffn", fg.type));
        const out = be.alloc(n * D);
        be.expertFfn(out, bufOf(be, x), be.upload(hg), be.upload(hu), be.upload(hd), n);
        return be.read(out);
      }, (got, level) => {
        const e = nmse(got, ref);
        worst[label] = Math.max(worst[label] ?? 0, e);
        assert.ok(e < TOL_FFN, `${label} ${level} D ${D} F ${F} n ${n}: nmse ${e.toExponential(2)}`);
      });
    }
  }
  t.diagnostic(`worst nmse: ${Object.entries(worst).map(([l, e]) => `${l} ${e.toExponential(2)}`).join(", ")}`);
});

test("the fused expert FFN equals native matmul, swiglu, matmul bit for bit when the types allow", async () => {
  const a = needNative();
  const be = new NativeBackend({ threads: 2 });
  for (const f of [Q8_0, Q4_K, F16]) {
    const D = 512, F = 256, n = 9;
    const g = be.upload(weight(f, randomValues(D * F, "bg", 0.1), D, F, "gate"));
    const u = be.upload(weight(f, randomValues(D * F, "bu", 0.1), D, F, "up"));
    const d = be.upload(weight(f, randomValues(F * D, "bd", 0.1), F, D, "down"));
    const x = bufOf(be, randomValues(n * D, "bx"));
    const ge = be.alloc(n * F), ue = be.alloc(n * F), sep = be.alloc(n * D), fused = be.alloc(n * D);
    be.matmul(ge, g, x, n);
    be.matmul(ue, u, x, n);
    be.swiglu(ge, ge, ue, n * F);
    be.matmul(sep, d, ge, n);
    be.expertFfn(fused, x, g, u, d, n);
    assert.ok(sameBits(await be.read(sep), await be.read(fused)), f.name);
  }
  assert.ok(!be.supports("expert_ffn", 99));
  assert.ok(a.kernelLevels().length > 0);
});

test("native moeFfn (a layer's experts in one pool run) equals gather, fused FFN, scatter-add per expert, and the scalar reference", async (t) => {
  const a = needNative();
  const scalar = new ScalarBackend();
  let worst = 0;
  // UD-like i-quant experts (Q8_K activations), Q4_1 gate/up (Q8_1) with an IQ4_NL down (Q8_0), gpt-oss's MXFP4.
  for (const [fg, fd] of [[Q8_0, Q8_0], [Q4_K, Q6_K], [F16, BF16], [IQ2_XXS, IQ3_XXS], [Q4_1, IQ4_NL], [MXFP4, MXFP4]] as const) {
    for (const T of [1, 13]) {
      const D = 512, F = 256, nExp = 6;
      const hs = Array.from({ length: nExp }, (_, e) => ["g", "u", "d"].map((p) => weight(p === "d" ? fd : fg, randomValues(D * F, `m${p}${e}`, 0.1), p === "d" ? F : D, p === "d" ? D : F, p)));
      // Decode: every expert serves row 0. Prefill: rows spread unevenly, one expert with none.
      const rowsOf = (e: number) => (T === 1 ? [0] : e === 3 ? [] : Array.from({ length: T }, (_, i) => i).filter((i) => (i * 7 + e) % (e + 2) === 0));
      const x = randomValues(T * D, `mx${T}`, 1);
      const run = async (be: Backend, fused: boolean | "async" | "libuv"): Promise<Float32Array> => {
        const out = be.alloc(T * D);
        const h = bufOf(be, x);
        const experts = hs.map((w, e) => {
          const rows = Int32Array.from(rowsOf(e));
          return { gate: be.upload(w[0]), up: be.upload(w[1]), down: be.upload(w[2]), rows, scales: Float32Array.from(rows, (r) => 0.1 + ((r + e) % 5) / 7) };
        });
        if (fused === "async" || fused === "libuv") {
          // Every job begun on the pool and joined by this thread, or every job from a libuv thread.
          const nb = be as NativeBackend, was = nb.joinRowsMax;
          nb.joinRowsMax = fused === "async" ? Infinity : 0;
          await nb.moeFfnAsync(out, h, experts).finally(() => (nb.joinRowsMax = was));
        }
        else if (fused) be.moeFfn!(out, h, experts);
        else perExpertMoe(be, out, h, experts, D, F);
        return be.read(out);
      };
      const ref = await run(scalar, false);
      await everyKernelLevel(a, async (be) => {
        assert.ok(be.supports("moe_ffn", fg.type));
        const got = await run(be, true);
        assert.ok(sameBits(got, await run(be, false)), `${fg.name}/${fd.name} T ${T}: moeFfn differs from the per-expert path`);
        assert.ok(sameBits(got, await run(be, "async")), `${fg.name}/${fd.name} T ${T}: moeFfnAsync differs from moeFfn`);
        assert.ok(sameBits(got, await run(be, "libuv")), `${fg.name}/${fd.name} T ${T}: moeFfnAsync from a libuv thread differs from moeFfn`);
        return got;
      }, (got, level) => {
        const e = nmse(got, ref);
        worst = Math.max(worst, e);
        assert.ok(e < TOL_FFN, `${fg.name}/${fd.name} ${level} T ${T}: nmse ${e.toExponential(2)}`);
      });
    }
  }
  t.diagnostic(`worst nmse vs scalar: ${worst.toExponential(2)}`);
  const [fx, fo] = [new Float32Array(64), new Float32Array(64)];
  const w = new Uint8Array(34 * 32); // 32 Q8_0 rows of 32
  assert.throws(() => a.moeFfn(Int32Array.of(8, 8, 8), [w, w, w], fx, fo, Int32Array.of(2), Int32Array.of(0, 1), Float32Array.of(1), 32, 32), /row 2 out of range/);
  assert.throws(() => a.moeFfn(Int32Array.of(8, 8), [w, w, w], fx, fo, Int32Array.of(0), Int32Array.of(0, 1), Float32Array.of(1), 32, 32), /2 types for 1 experts/);
  assert.throws(() => a.moeFfn(Int32Array.of(8, 8, 8), [w, w, w], fx, fx, Int32Array.of(0), Int32Array.of(0, 1), Float32Array.of(1), 32, 32), /overlaps/);
  // The async form checks the same, throwing before any work is queued.
  assert.throws(() => a.moeFfnAsync(Int32Array.of(8, 8, 8), [w, w, w], fx, fo, Int32Array.of(2), Int32Array.of(0, 1), Float32Array.of(1), 32, 32), /native moeFfnAsync: expert 0 row 2 out of range/);
});

test("a begun native moeFfn: joined by its ticket once, or first by this thread's next native run; the same bits as moeFfn", async () => {
  const a = needNative();
  if (!a.moeFfnBegin || !a.moeFfnJoin) assert.fail("the addon has no moeFfnBegin/moeFfnJoin");
  const be = new NativeBackend({ threads: 2 });
  const D = 256, F = 256;
  const hw = Array.from({ length: 3 }, (_, e) => ["g", "u", "d"].map((p) => weight(Q4_K, randomValues(D * F, `bj${p}${e}`, 0.1), D, F, p)));
  const xv = randomValues(D, "bjx", 1);
  const args = (out: Float32Array): Parameters<NonNullable<typeof a.moeFfnBegin>> =>
    [new Int32Array(9).fill(Q4_K.type), hw.flat().map((w) => w.bytes), xv, out, Int32Array.of(0, 0, 0), Int32Array.of(0, 1, 2, 3), Float32Array.of(0.3, 0.4, 0.5), D, F];
  const wantV = new Float32Array(D);
  a.moeFfn(...args(wantV));
  // Joined by its ticket: true once, then false (ended); a stale ticket joins nothing.
  const o1 = new Float32Array(D);
  const t1 = a.moeFfnBegin(...args(o1));
  assert.ok(t1 > 0);
  assert.equal(a.moeFfnJoin(t1), true);
  assert.equal(a.moeFfnJoin(t1), false);
  assert.ok(sameBits(o1, wantV), "begun and joined: not moeFfn's sums");
  // This thread's next native run joins it first: out is complete when that run returns, and the ticket is spent.
  const o2 = new Float32Array(D), o3 = new Float32Array(D);
  const t2 = a.moeFfnBegin(...args(o2));
  a.moeFfn(...args(o3));
  assert.ok(sameBits(o2, wantV) && sameBits(o3, wantV), "a run after a begun one: not moeFfn's sums");
  assert.equal(a.moeFfnJoin(t2), false);
  // A second begin joins the first.
  const o4 = new Float32Array(D), o5 = new Float32Array(D);
  const t4 = a.moeFfnBegin(...args(o4)), t5 = a.moeFfnBegin(...args(o5));
  assert.ok(sameBits(o4, wantV));
  assert.equal(a.moeFfnJoin(t4), false);
  assert.equal(a.moeFfnJoin(t5), true);
  assert.ok(sameBits(o5, wantV));
  assert.throws(() => a.moeFfnBegin!(Int32Array.of(8, 8, 8), [new Uint8Array(34 * 32), new Uint8Array(34 * 32), new Uint8Array(34 * 32)], new Float32Array(64), new Float32Array(64), Int32Array.of(2), Int32Array.of(0, 1), Float32Array.of(1), 32, 32), /native moeFfnBegin: expert 0 row 2 out of range/);
  // The backend's moeFfnAsync joins a small job when this thread goes idle: the promise settles with the sums.
  const experts = hw.map((w, e) => ({ gate: be.upload(w[0]), up: be.upload(w[1]), down: be.upload(w[2]), rows: Int32Array.of(0), scales: Float32Array.of(0.3 + e / 10) }));
  const x = bufOf(be, xv), o6 = be.alloc(D);
  await be.moeFfnAsync(o6, x, experts);
  assert.ok(sameBits(await be.read(o6), wantV));
});

test("native ops reject bad shapes with RangeErrors", () => {
  const a = needNative();
  const f = new Float32Array(8);
  assert.throws(() => a.attention(f, f, f, f, 1, 0, 3, 2, 4, 1), RangeError);
  assert.throws(() => a.attention(f, f, new Float32Array(4), f, 1, 1, 2, 1, 4, 1), RangeError);
  assert.throws(() => a.rmsNorm(f, new Float32Array(4), new Uint8Array(32), 1e-6, 4, 2), RangeError);
  assert.throws(() => a.rope(f, Int32Array.of(0, 1), 1, 3, 1e4), RangeError);
  assert.throws(() => a.scatterAddRows(f, f, Int32Array.of(2), Float32Array.of(1), 4), RangeError);
  assert.throws(() => a.expertFfn(8, new Uint8Array(34), 8, new Uint8Array(34), 8, new Uint8Array(34), new Float32Array(32), new Float32Array(32), 32, 32, 1), RangeError);
});

test("native matmulSet (q, k, v in one pool run) equals separate native matmuls bit for bit, mixed types included", async () => {
  const a = needNative();
  for (const [types, T] of [[[Q8_0, Q8_0, Q8_0], 1], [[Q4_K, Q4_K, Q6_K], 1], [[Q4_K, Q8_0, F16], 5], [[F32, BF16, Q6_K], 17]] as const) {
    const K = 512, Ns = [512, 128, 128];
    await everyKernelLevel(a, async (be) => {
      const ws = types.map((f, i) => be.upload(weight(f, randomValues(K * Ns[i], `set${i}${f.name}`, 0.1), K, Ns[i], `w${i}`)));
      const x = bufOf(be, randomValues(T * K, `setx${T}`));
      const sep = Ns.map((n) => be.alloc(T * n));
      const set = Ns.map((n) => be.alloc(T * n));
      ws.forEach((w, i) => be.matmul(sep[i], w, x, T));
      be.matmulSet(set, ws, x, T);
      const got: number[] = [];
      for (let i = 0; i < 3; i++) {
        const [p, q] = [await be.read(sep[i]), await be.read(set[i])];
        assert.ok(sameBits(p, q), `${types.map((f) => f.name)} T ${T}: weight ${i} differs`);
        got.push(...q);
      }
      return Float32Array.from(got);
    }, () => {});
  }
  const [x, o] = [new Float32Array(64), new Float32Array(32)];
  const w = new Uint8Array(34 * 32);
  assert.throws(() => a.matmulSet(Int32Array.of(8), [w], [o], x, 48, 1), /unsupported ggml type 8 or K = 48/);
  assert.throws(() => a.matmulSet(Int32Array.of(8, 8), [w, w], [o, o], x, 32, 1), /overlap/);
});

test("native allocHost: zeroed weight memory of the requested size, on huge pages where Linux offers them", async () => {
  const addon = needNative();
  const be = new NativeBackend({ threads: 1 });
  const small = be.allocHost(1000);
  assert.equal(small.byteLength, 1000);
  const n = (5 << 20) + 123; // several 2 MiB pages and a ragged end
  const big = be.allocHost(n);
  assert.equal(big.byteLength, n);
  assert.ok(big.every((b) => b === 0), "allocHost memory starts zeroed");
  big.fill(7);
  assert.equal(big[n - 1], 7);
  let thp = "";
  try {
    thp = (await import("node:fs")).readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8");
  } catch {
    // not Linux, or no THP: a plain array is the contract
  }
  if (/\[(always|madvise)\]/.test(thp)) {
    // The view starts on a 2 MiB boundary: the addon advised from there (its offset of the view itself is 0).
    assert.equal(addon.adviseHugePages(big), 0, "allocHost hands out memory starting at a 2 MiB boundary");
    assert.equal(addon.adviseHugePages(new Uint8Array(4096)), -1, "no whole 2 MiB page in 4 KiB");
  }
});

test("native matmulHeads (per-head slices of a 3-D weight, DeepSeek's k_b / v_b, owned uploads) matches the scalar backend", async (t) => {
  needNative();
  const scalar = new ScalarBackend(), be = new NativeBackend();
  let worst = 0;
  for (const f of [F32, F16, Q8_0, Q4_K]) {
    for (const [k, n, H, T] of [[256, 40, 3, 1], [256, 24, 4, 5], [512, 16, 2, 3]]) {
      const w2 = randomWeight(f, k, n * H, `heads-${f.name}-${k}-${n}-${H}`);
      const w = { ...w2, shape: [k, n, H] };
      const x = randomValues(T * H * k, `heads-x-${k}-${T}`, 2);
      const run = async (b: Backend) => {
        const o = b.alloc(T * H * n);
        b.matmulHeads(o, b.upload(owned(w)), bufOf(b, x), T);
        return b.read(o);
      };
      const e = nmse(await run(be), await run(scalar));
      worst = Math.max(worst, e);
      assert.ok(e < MATMUL_TOL[f.name], `${f.name} [${k}, ${n}, ${H}] T ${T}: nmse ${e.toExponential(2)}`);
    }
  }
  t.diagnostic(`matmulHeads worst nmse ${worst.toExponential(2)}`); // YaRN / NORM rope and MLA attention: native-mla-ops.test.ts
});

test("native hostCopyBytes (a memcpy on the pool's threads, 256 KiB a piece) copies every byte to the start of dst, at any offsets and sizes; a short or overlapping dst is refused", () => {
  needNative();
  const be = new NativeBackend();
  for (const n of [0, 1, 3, (256 << 10) - 1, (256 << 10) + 5, (3 << 20) + 7]) {
    const src = new Uint8Array(n + 3).map((_, i) => (i * 131 + 7) & 255).subarray(3); // a view not at its buffer's start
    const dst = new Uint8Array(n + 9).fill(0xee);
    be.hostCopyBytes(dst.subarray(1), src);
    assert.ok(dst[0] === 0xee && dst.subarray(1 + n).every((v) => v === 0xee), `${n} bytes: bytes outside the copy changed`);
    assert.deepEqual(dst.subarray(1, 1 + n), src, `${n} bytes`);
  }
  const b = new Uint8Array(1 << 20);
  assert.throws(() => be.hostCopyBytes(new Uint8Array(10), new Uint8Array(11)), /copyBytes: dst holds 10 bytes, fewer than src's 11/);
  assert.throws(() => be.hostCopyBytes(b.subarray(1000), b.subarray(0, 5000)), /copyBytes: dst and src overlap/);
});

test("a begun native run and a JS worker thread's run: this thread's next matmul joins its begun run before taking the scratch lock the worker holds (no deadlock)", () => {
  needNative();
  // In a child process, so a deadlock fails by timeout instead of hanging this runner.
  const addon = join(import.meta.dirname, "..", "..", "native", "build", "Release", "moestream_native.node");
  const code = `
    const { Worker } = require("node:worker_threads");
    const a = require(${JSON.stringify(addon)});
    a.setThreads(2);
    const D = 256, w = () => { const b = new Uint8Array(D * 8 * 34); for (let i = 0; i < b.length; i++) b[i] = (i * 7) & 63; for (let i = 0; i < b.length; i += 34) (b[i] = 0), (b[i + 1] = 0x20); return b; };
    const ws = [w(), w(), w()], x = Float32Array.from({ length: D }, (_, i) => Math.sin(i));
    const ticket = a.moeFfnBegin(new Int32Array(3).fill(8), ws, x, new Float32Array(D), Int32Array.of(0), Int32Array.of(0, 1), Float32Array.of(1), D, D);
    const worker = new Worker(\`
      const { parentPort } = require("node:worker_threads");
      const a = require(\${JSON.stringify(${JSON.stringify(addon)})});
      const D = 256, b = new Uint8Array(D * 8 * 34);
      parentPort.postMessage("go");
      a.moeFfn(new Int32Array(3).fill(8), [b, b, b], new Float32Array(D), new Float32Array(D), Int32Array.of(0), Int32Array.of(0, 1), Float32Array.of(1), D, D);
      parentPort.postMessage("done");
    \`, { eval: true });
    worker.on("message", (m) => {
      if (m === "go") setTimeout(() => { a.matmul(8, ws[0], x, new Float32Array(D), D, D, 1); if (a.moeFfnJoin(ticket)) process.exit(3); }, 100);
      else { console.log("ok"); process.exit(0); }
    });
  `;
  const r = spawnSync(process.execPath, ["-e", code], { encoding: "utf8", timeout: 20000 });
  assert.equal(r.signal, null, `deadlocked (killed after 20 s): ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "ok");
});
