// The scalar reference backend against hand-computed values: it is the oracle for every faster kernel,
// so its own oracle is arithmetic done by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { HostWeight } from "../../src/backends/backend.js";
import { F32, Q8_0 } from "../../src/quant/index.js";
import { roundToF16 } from "../../src/util/f16.js";

const be = new ScalarBackend();
const f32w = (name: string, shape: number[], values: number[]): HostWeight => ({ name, type: F32.type, shape, bytes: new Uint8Array(Float32Array.from(values).buffer) });
const buf = (values: number[]) => {
  const b = be.alloc(values.length);
  be.write(b, Float32Array.from(values));
  return b;
};
const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

test("matmul: out[t, n] = sum_k W[n, k] x[t, k]", async () => {
  const w = be.upload(f32w("w", [3, 2], [1, 2, 3, /* row 1 */ -1, 0, 0.5]));
  const out = be.alloc(4);
  be.matmul(out, w, buf([1, 1, 1, /* t1 */ 2, 0, -2]), 2);
  close(await be.read(out), [6, -0.5, -4, -3]);
});

test("matmul on Q8_0 rows equals the dequantised row dot product", async () => {
  const k = 64;
  const row = Float32Array.from({ length: k }, (_, i) => Math.sin(i) * 3);
  const bytes = new Uint8Array(2 * Q8_0.bytesPerBlock);
  Q8_0.quantizeRow(row, bytes, k);
  const deq = new Float32Array(k);
  Q8_0.dequantRow(bytes, deq, k);
  const x = Array.from({ length: k }, (_, i) => (i % 7) - 3);
  const w = be.upload({ name: "q", type: Q8_0.type, shape: [k, 1], bytes });
  const out = be.alloc(1);
  be.matmul(out, w, buf(x), 1);
  close(await be.read(out), [deq.reduce((a, v, i) => a + v * x[i], 0)], 1e-4);
});

test("rmsNorm: x / sqrt(mean(x^2) + eps) * w, per row", async () => {
  const w = be.upload(f32w("n", [2], [1, 2]));
  const out = be.alloc(4);
  be.rmsNorm(out, buf([3, 4, 1, 1]), w, 0, 2, 2);
  const r1 = Math.sqrt((9 + 16) / 2);
  close(await be.read(out), [3 / r1, (4 / r1) * 2, 1, 2], 1e-6);
});

test("rope (NeoX): position 0 is identity; pairs (i, i + d/2) rotate by pos * base^(-2i/d)", async () => {
  const x = buf([1, 2, 3, 4, /* pos 1 */ 1, 2, 3, 4]);
  be.rope(x, Int32Array.of(0, 1), 1, 4, 10000);
  const r = await be.read(x);
  close(r.subarray(0, 4), [1, 2, 3, 4]);
  // i = 0: theta = 1 rad, pair (x0, x2) = (1, 3); i = 1: theta = 1 * 10000^(-1/2) = 0.01, pair (x1, x3) = (2, 4).
  const [c0, s0, c1, s1] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
  close(r.subarray(4), [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 1 * s0 + 3 * c0, 2 * s1 + 4 * c1], 1e-6);
});

test("partial rope (NeoX, nRot < headDim): the first nRot values rotate as pairs (i, i + nRot/2), the rest pass through", async () => {
  // 2 heads of 6 values, nRot 4, position 1.
  const x = buf([1, 2, 3, 4, 5, 6, /* head 1 */ 7, 8, 9, 10, 11, 12]);
  be.rope(x, Int32Array.of(1), 2, 6, 10000, 4);
  const r = await be.read(x);
  // i = 0: theta 1; i = 1: theta 10000^(-2/4) = 0.01 (the exponent's denominator is nRot, not headDim).
  const [c0, s0, c1, s1] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
  const rot = (a: number, b: number, c: number, d: number) => [a * c0 - c * s0, b * c1 - d * s1, a * s0 + c * c0, b * s1 + d * c1];
  close(r, [...rot(1, 2, 3, 4), 5, 6, ...rot(7, 8, 9, 10), 11, 12], 1e-6);
  assert.throws(() => be.rope(x, Int32Array.of(1), 2, 6, 10000, 3), /nRot 3 must be even/);
  assert.throws(() => be.rope(x, Int32Array.of(1), 2, 6, 10000, 8), /nRot 8/);
});

test("attention: causal, grouped heads share a kv head, softmax(q.k * scale) weights v", async () => {
  // 2 query heads, 1 kv head, head dim 2, two positions.
  const k = buf([1, 0, /* pos 1 */ 0, 1]);
  const v = buf([10, 20, /* pos 1 */ 30, 40]);
  const q = buf([1, 0, 0, 0, /* token 1 */ 2, 0, 0, 0]);
  const out = be.alloc(8);
  be.attention(out, q, k, v, { nTokens: 2, startPos: 0, nHead: 2, nHeadKv: 1, headDim: 2, scale: 1 });
  const r = await be.read(out);
  // token 0 sees only position 0.
  close(r.subarray(0, 4), [10, 20, 10, 20]);
  // token 1, head 0: scores (2, 0) -> weights e^2/(e^2+1), 1/(e^2+1); head 1: scores (0, 0) -> 1/2 each.
  const a = Math.exp(2) / (Math.exp(2) + 1);
  close(r.subarray(4), [10 * a + 30 * (1 - a), 20 * a + 40 * (1 - a), 20, 30], 1e-5);
});

test("attention sinks: a per-head logit joins the softmax denominator and weights no value", async () => {
  // 2 query heads over 1 kv head (GQA 2:1), head dim 2; the cache holds 2 earlier positions (startPos 2), the
  // batch 2 tokens, so token 0 sees 3 keys and token 1 sees 4 (causal).
  const K = [[1, 0], [0, 1], [1, 1], [-1, 0.5]], V = [[1, 2], [3, 4], [5, 6], [7, 8]];
  const Q = [[[0.5, -1], [2, 0]], [[1, 1], [-0.5, 0.25]]]; // [token][head]
  const sinks = [0.7, -1.5], scale = 0.8;
  const k = buf(K.flat()), v = buf(V.flat()), q = buf(Q.flat(2));
  const p = { nTokens: 2, startPos: 2, nHead: 2, nHeadKv: 1, headDim: 2, scale };
  const want: number[] = [];
  for (let t = 0; t < 2; t++) {
    for (let h = 0; h < 2; h++) {
      const e = K.slice(0, 3 + t).map((key) => Math.exp(scale * (Q[t][h][0] * key[0] + Q[t][h][1] * key[1])));
      const z = e.reduce((a, b) => a + b, 0) + Math.exp(sinks[h]);
      want.push(...[0, 1].map((i) => e.reduce((a, w, j) => a + (w / z) * V[j][i], 0)));
    }
  }
  for (const s of [Float32Array.from(sinks), be.upload(f32w("sinks", [2], sinks))]) {
    const out = be.alloc(8);
    be.attention(out, q, k, v, { ...p, sinks: s });
    close(await be.read(out), want, 1e-6);
  }
  // One key of score 0 against a sink of 0: half the weight goes to the sink.
  const one = be.alloc(2);
  be.attention(one, buf([0, 0]), buf([1, 1]), buf([4, -6]), { nTokens: 1, startPos: 0, nHead: 1, nHeadKv: 1, headDim: 2, scale: 1, sinks: Float32Array.of(0) });
  close(await be.read(one), [2, -3]);
  // A sink of -Infinity is no sink: the plain softmax, bit for bit.
  const plain = be.alloc(8), none = be.alloc(8);
  be.attention(plain, q, k, v, p);
  be.attention(none, q, k, v, { ...p, sinks: Float32Array.of(-Infinity, -Infinity) });
  assert.deepEqual(await be.read(none), await be.read(plain));
});

test("addRows adds a bias vector to every row, and refuses one of another length", async () => {
  const rows = [[1, 2, 3], [-4, 5, 0.5]], bias = [0.25, -1, 10];
  const x = buf(rows.flat());
  be.addRows(x, be.upload(f32w("b", [3], bias)), 3, 2);
  const want: number[] = [];
  for (const r of rows) for (let i = 0; i < 3; i++) want.push(r[i] + bias[i]);
  close(await be.read(x), want);
  assert.throws(() => be.addRows(x, be.upload(f32w("b4", [4], [1, 2, 3, 4])), 3, 2), /bias 'b4' has 4 values, rows have 3/);
});

test("matmul takes a 1-D weight [K] as one row", async () => {
  const out = be.alloc(2);
  be.matmul(out, be.upload(f32w("v", [3], [1, -2, 0.5])), buf([1, 1, 1, /* t1 */ 2, 0, -2]), 2);
  close(await be.read(out), [-0.5, 1]);
});

test("kvStore, swiglu, add, gather and scatter-add rows", async () => {
  const kc = be.alloc(6), vc = be.alloc(6);
  be.kvStore(kc, vc, buf([1, 2, 3, 4]), buf([5, 6, 7, 8]), 1, 2, 2);
  close(await be.read(kc), [0, 0, 1, 2, 3, 4]);
  close(await be.read(vc), [0, 0, 5, 6, 7, 8]);
  const g = buf([0, 1, -1]);
  be.swiglu(g, g, buf([2, 2, 2]), 3);
  close(await be.read(g), [0, 2 / (1 + Math.exp(-1)), (-1 / (1 + Math.exp(1))) * 2], 1e-6);
  const a = buf([1, 2]);
  be.add(a, a, buf([10, 20]), 2);
  close(await be.read(a), [11, 22]);
  const x = buf([1, 1, 2, 2, 3, 3]);
  const gathered = be.alloc(4);
  be.gatherRows(gathered, x, Int32Array.of(2, 0), 2);
  close(await be.read(gathered), [3, 3, 1, 1]);
  const acc = buf([0, 0, 0, 0, 0, 0]);
  be.scatterAddRows(acc, gathered, Int32Array.of(1, 1), Float32Array.of(0.5, 2), 2);
  close(await be.read(acc), [0, 0, 3.5, 3.5, 0, 0]);
});

test("embed reads token rows and refuses ids out of range", async () => {
  const table = be.upload(f32w("e", [2, 3], [0, 1, 10, 11, 20, 21]));
  const out = be.alloc(4);
  be.embed(out, table, Int32Array.of(2, 0));
  close(await be.read(out), [20, 21, 0, 1]);
  assert.throws(() => be.embed(out, table, Int32Array.of(3)), /token id 3 out of range/);
});

test("rope NORM mode with an offset: pairs (off + 2i, off + 2i + 1) rotate, values before the offset pass through", async () => {
  // One head of 6 values, nRot 4 from offset 2 (DeepSeek ropes a head's last values), position 1.
  const x = buf([1, 2, 3, 4, 5, 6]);
  be.rope(x, Int32Array.of(1), 1, 6, 10000, 4, { mode: "norm", offset: 2 });
  const [c0, s0, c1, s1] = [Math.cos(1), Math.sin(1), Math.cos(0.01), Math.sin(0.01)];
  close(await be.read(x), [1, 2, 3 * c0 - 4 * s0, 3 * s0 + 4 * c0, 5 * c1 - 6 * s1, 5 * s1 + 6 * c1]);
  assert.throws(() => be.rope(x, Int32Array.of(1), 1, 6, 10000, 4, { offset: 4 }), /from offset 4/);
});

/**
 * ggml's rope_yarn written out in f32 as ops.cpp computes it (theta advanced by repeated multiplication,
 * ggml_rope_yarn_corr_dims for the ramp ends): the independent oracle for the reference's YaRN angles.
 */
function ggmlYarnCache(p: number, nDims: number, base: number, y: { freqScale: number; extFactor: number; attnFactor: number; betaFast: number; betaSlow: number; nCtxOrig: number }): number[] {
  const f = Math.fround;
  const corrDim = (b: number) => f((nDims * Math.log(y.nCtxOrig / (b * 2 * Math.PI))) / (2 * Math.log(base)));
  const lo = Math.max(0, Math.floor(corrDim(y.betaFast))), hi = Math.min(nDims - 1, Math.ceil(corrDim(y.betaSlow)));
  const thetaScale = f(Math.pow(base, -2 / nDims));
  const out: number[] = [];
  let theta = f(p);
  for (let i0 = 0; i0 < nDims; i0 += 2) {
    const interp = f(y.freqScale * theta);
    let th = interp, mscale = y.attnFactor;
    if (y.extFactor !== 0) {
      const ramp = (1 - Math.min(1, Math.max(0, (i0 / 2 - lo) / Math.max(0.001, hi - lo)))) * y.extFactor;
      th = f(interp * (1 - ramp) + theta * ramp);
      mscale = f(mscale * f(1 + 0.1 * Math.log(1 / y.freqScale)));
    }
    out.push(f(Math.cos(th) * mscale), f(Math.sin(th) * mscale));
    theta = f(theta * thetaScale);
  }
  return out;
}

test("rope YaRN (DeepSeek-V3's factor 40 over 64 dims): cos/sin as ggml's rope_yarn computes them, on NORM pairs", async () => {
  const nRot = 64, base = 10000;
  const yarn = { freqScale: 1 / 40, extFactor: 1, attnFactor: 1 / (1 + 0.1 * Math.log(40)), betaFast: 32, betaSlow: 1, nCtxOrig: 4096 };
  // Unit vectors (1, 0) per pair: the rotated pair is (cos, sin) · mscale, the cache ggml builds.
  for (const p of [0, 1, 7, 300, 5000]) {
    const x = buf(Array.from({ length: nRot }, (_, i) => (i % 2 === 0 ? 1 : 0)));
    be.rope(x, Int32Array.of(p), 1, nRot, base, nRot, { mode: "norm", yarn });
    close(await be.read(x), ggmlYarnCache(p, nRot, base, yarn), 2e-5 * Math.max(1, p / 100));
  }
  // The ramp ends for V3: dims [10, 23]; pair 5 (below lo) keeps the original angle, pair 28 (above hi) is interpolated.
  const x = buf(Array.from({ length: nRot }, (_, i) => (i % 2 === 0 ? 1 : 0)));
  be.rope(x, Int32Array.of(3), 1, nRot, base, nRot, { mode: "norm", yarn });
  const r = await be.read(x), m = yarn.attnFactor * (1 + 0.1 * Math.log(40));
  close([r[10], r[56]], [Math.cos(3 * Math.pow(base, -10 / 64)) * m, Math.cos((3 / 40) * Math.pow(base, -56 / 64)) * m], 1e-6);
  assert.ok(Math.abs(m - 1) < 1e-6, "V3's attn factor cancels the YaRN magnitude: cos/sin gain 1");
  // extFactor 0 is linear scaling: θ·freqScale for every pair, gain attnFactor alone.
  const lin = buf([1, 0, 1, 0]);
  be.rope(lin, Int32Array.of(10), 1, 4, base, 4, { mode: "norm", yarn: { ...yarn, extFactor: 0, attnFactor: 2 } });
  close(await be.read(lin), [2 * Math.cos(10 / 40), 2 * Math.sin(10 / 40), 2 * Math.cos(0.1 / 40), 2 * Math.sin(0.1 / 40)]);
});

test("copy: strided rows, offsets on both sides, optional rounding to f16", async () => {
  const x = buf([1, 2, 3, 4, 5, 6]); // 2 rows of 3
  const out = buf(new Array(8).fill(0)); // 2 rows of 4
  be.copy(out, x, { rows: 2, n: 2, src: { offset: 1, stride: 3 }, dst: { offset: 1, stride: 4 } });
  close(await be.read(out), [0, 2, 3, 0, 0, 5, 6, 0]);
  const y = buf([1 + 2 ** -12, 1000.3]);
  be.copy(out, y, { rows: 1, n: 2, src: { offset: 0, stride: 2 }, dst: { offset: 0, stride: 2 }, roundF16: true });
  close((await be.read(out)).subarray(0, 2), [1, 1000.5], 0); // f16 spacing: 2^-10 at 1, 0.5 at 1000
  assert.throws(() => be.copy(out, x, { rows: 2, n: 3, src: { offset: 1, stride: 3 }, dst: { offset: 0, stride: 4 } }), /overrun/);
});

test("matmulHeads: each head's slice of a [K, N, H] weight times that head's input", async () => {
  // K 2, N 2, H 2: head 0 = [[1, 0], [0, 1]] (identity), head 1 = [[1, 1], [2, -1]].
  const w = be.upload(f32w("blk.0.attn_k_b.weight", [2, 2, 2], [1, 0, 0, 1, 1, 1, 2, -1]));
  const x = buf([3, 4, 5, 6, /* t1 */ 1, 2, 0, 1]); // [T 2, H 2, K 2]
  const out = be.alloc(8);
  be.matmulHeads(out, w, x, 2);
  close(await be.read(out), [3, 4, 11, 4, /* t1 */ 1, 2, 1, -1]);
});

test("attention with vDim < headDim: V is each kv head row's first vDim values (MLA's prefix view of K)", async () => {
  // 1 kv head of 3 values [v0, v1, rope], 2 positions, 1 query head; V = the first 2.
  const kv = buf([1, 0, 0, /* pos 1 */ 0, 2, 1]);
  const q = buf([0, 0, 1]);
  const out = be.alloc(2);
  be.attention(out, q, kv, kv, { nTokens: 1, startPos: 1, nHead: 1, nHeadKv: 1, headDim: 3, vDim: 2, scale: 0.5 });
  // scores: pos 0 -> 0, pos 1 -> 1 * 0.5; softmax weights.
  const [a, b] = [1, Math.exp(0.5)];
  close(await be.read(out), [a / (a + b), (2 * b) / (a + b)]);
  // f16Probs: the probabilities are rounded to f16 before they weight V (llama.cpp's f16 V product).
  be.attention(out, q, kv, kv, { nTokens: 1, startPos: 1, nHead: 1, nHeadKv: 1, headDim: 3, vDim: 2, scale: 0.5, f16Probs: true });
  const [pa, pb] = [roundToF16(a / (a + b)), roundToF16(b / (a + b))];
  assert.notEqual(pa, a / (a + b), "the case rounds");
  close(await be.read(out), [pa, 2 * pb], 1e-7);
});
