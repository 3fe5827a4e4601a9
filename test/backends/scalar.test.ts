// The scalar reference backend against hand-computed values: it is the oracle for every faster kernel,
// so its own oracle is arithmetic done by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { HostWeight } from "../../src/backends/backend.js";
import { F32, Q8_0 } from "../../src/quant/index.js";

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
