// The shared MoE block and dense FFN against hand-computed oracles (as tinygrad's test_llm_moe.py does):
// identity experts scaled by c_e make expert_e(x) = c_e · silu(x) · x elementwise, and one-hot router rows
// make the logits the input values themselves, so the expected output needs no code under test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DelegatingBackend, type Backend, type Buf, type Weight } from "../../src/backends/backend.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { ExpertSource, ExpertWeights } from "../../src/experts/source.js";
import { FullAttentionState } from "../../src/kv/full-attention.js";
import { attention, Pass, Scratch } from "../../src/models/layers.js";
import { denseFfn, moe, type LookaheadRouter, type MoeParams } from "../../src/models/moe-block.js";
import { softmaxTopKRoute, type Routing } from "../../src/models/routing.js";

const D = 8, F = 8, NE = 4, K = 2;
const C = [0.5, -1.25, 2, 0.75]; // expert e's up scale
const silu = (v: number) => v / (1 + Math.exp(-v));

/** Counts host reads: moe() must take the router and lookahead routers back in one readMany. */
class CountingBackend extends DelegatingBackend {
  readonly name = "counting";
  reads = 0;
  readManys = 0;
  failSwiglu = false;
  constructor() {
    super(new ScalarBackend());
  }
  override read(src: Buf): Promise<Float32Array> {
    this.reads++;
    return super.read(src);
  }
  override readMany(srcs: readonly Buf[]): Promise<Float32Array[]> {
    this.readManys++;
    return super.readMany(srcs);
  }
  /** The test's own readback, not counted. */
  peek(src: Buf): Promise<Float32Array> {
    return this.ref.read(src);
  }
  override swiglu(out: Buf, gate: Buf, up: Buf, n: number): void {
    if (this.failSwiglu) throw new Error("swiglu failed");
    super.swiglu(out, gate, up, n);
  }
}

/** F32 weight of shape [k, n] (n rows of k) whose row r, column c is f(r, c). */
function f32(be: Backend, name: string, k: number, n: number, f: (r: number, c: number) => number): Weight {
  const a = new Float32Array(k * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) a[r * k + c] = f(r, c);
  return be.upload({ name, type: 0, shape: n === 1 ? [k] : [k, n], bytes: new Uint8Array(a.buffer) });
}
const eye = (scale: number) => (r: number, c: number) => (r === c ? scale : 0);

/** An in-memory expert source that logs acquires, releases and prefetches in call order. */
class MemExperts implements ExpertSource {
  readonly log: string[] = [];
  readonly acquires: number[][] = [];
  readonly prefetches: { layer: number; ids: number[]; depth?: number }[] = [];
  held = 0;
  readonly prefetch?: ExpertSource["prefetch"];
  constructor(private readonly ws: ExpertWeights[], readonly capacity?: number, readonly prefetchDepth?: number, canPrefetch = false) {
    if (canPrefetch) {
      this.prefetch = (layer, ids, depth) => {
        this.log.push(`prefetch ${layer}`);
        this.prefetches.push({ layer, ids: [...ids], depth });
      };
    }
  }
  async acquire(_layer: number, ids: readonly number[]): Promise<ExpertWeights[]> {
    if (this.capacity !== undefined) assert.ok(ids.length <= this.capacity, `acquire of ${ids.length} over capacity ${this.capacity}`);
    this.log.push(`acquire ${ids.join(",")}`);
    this.acquires.push([...ids]);
    this.held += ids.length;
    return ids.map((e) => this.ws[e]);
  }
  release(_layer: number, ids: readonly number[]): void {
    this.held -= ids.length;
  }
}

function setup(be: Backend) {
  const experts = C.map((c, e): ExpertWeights => ({ gate: f32(be, `g${e}`, D, F, eye(1)), up: f32(be, `u${e}`, D, F, eye(c)), down: f32(be, `d${e}`, F, D, eye(1)) }));
  const router = f32(be, "router", D, NE, eye(1)); // logit_e = x[e]
  return { experts, router };
}

/** Rows chosen so tokens route to different expert pairs, best first: (0,1), (3,2), (3,1) by their first NE values. */
const X = [
  [1.5, 1.0, -0.5, 0.2, 0.3, -0.7, 1.1, 0.4],
  [-0.9, 0.1, 0.8, 1.3, -0.2, 0.6, -1.4, 0.9],
  [0.05, 0.6, -1.2, 1.7, 2.1, -0.3, 0.25, -0.8],
];

/** Σ over the top-k logits of exp-renormalised weight · c_e · silu(x)·x, in float64. */
function oracle(x: number[]): { out: number[]; ids: number[] } {
  const logits = x.slice(0, NE);
  const ids = [...logits.keys()].sort((a, b) => logits[b] - logits[a]).slice(0, K);
  const z = ids.reduce((s, e) => s + Math.exp(logits[e]), 0);
  const out = x.map((v) => ids.reduce((s, e) => s + (Math.exp(logits[e]) / z) * C[e] * silu(v) * v, 0));
  return { out, ids };
}

async function runMoe(be: CountingBackend, rows: number[][], extra: Partial<MoeParams> & { experts: ExpertSource }, onRoute?: (r: Routing) => void) {
  const { router } = setup(be);
  const T = rows.length;
  const x = be.alloc(T * D), out = be.alloc(T * D);
  be.write(x, Float32Array.from(rows.flat()));
  const f = new Pass(be, new Scratch(be), 0, T, onRoute ? { onRoute: (_l, r) => onRoute(r) } : undefined);
  await moe(f, out, x, { layer: 0, router, route: softmaxTopKRoute(NE, K, true), nExpert: NE, nFf: F, ...extra });
  return be.peek(out);
}

const close = (got: Float32Array, want: number[], what: string) =>
  want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) <= 1e-5, `${what}[${i}]: got ${got[i]}, want ${w}`));

test("moe() of identity experts equals the hand formula for each token row; every acquire is released", async () => {
  const be = new CountingBackend();
  const src = new MemExperts(setup(be).experts);
  let routed: Routing | undefined;
  const got = await runMoe(be, X, { experts: src }, (r) => (routed = r));
  X.forEach((x, t) => close(got.subarray(t * D, (t + 1) * D), oracle(x).out, `token ${t}`));
  assert.deepEqual([...routed!.ids], X.flatMap((x) => oracle(x).ids), "routes the hand top-k, best first");
  assert.deepEqual(new Set(X.flatMap((x) => oracle(x).ids)), new Set([0, 1, 2, 3]), "the rows use every expert");
  assert.deepEqual(src.acquires, [[0, 1, 2, 3]], "one acquire of each distinct expert, ascending");
  assert.equal(src.held, 0, "every acquired expert is released");
  assert.equal(be.readManys, 1);
  assert.equal(be.reads, 0);
});

test("with capacity 1 experts come in groups of one, ascending, each once; the output is identical", async () => {
  const be = new CountingBackend();
  const all = await runMoe(be, X, { experts: new MemExperts(setup(be).experts) });
  const src = new MemExperts(setup(be).experts, 1);
  const one = await runMoe(be, X, { experts: src });
  assert.deepEqual(src.acquires, [[0], [1], [2], [3]]);
  assert.equal(src.held, 0);
  assert.deepEqual(one, all);
});

test("a failing expert FFN still releases what was acquired", async () => {
  const be = new CountingBackend();
  const src = new MemExperts(setup(be).experts, 2);
  be.failSwiglu = true;
  await assert.rejects(runMoe(be, X, { experts: src }), /swiglu failed/);
  assert.deepEqual(src.acquires, [[0, 1]], "stops at the failing group");
  assert.equal(src.held, 0, "the failing group was released");
});

test("decode lookahead: prefetch gets the later routers' top-k of the normed residual, after the demand acquire, one readMany", async () => {
  const be = new CountingBackend();
  const eps = 1e-6;
  const resid = [0.3, -1.1, 0.7, 0.2, -0.4, 1.6, -0.9, 0.5];
  const normW = [1, 0.5, 2, 1.5, 1, 1, 0.25, 3];
  // Router of lookahead layer L (depth d) reads normed value perm_d[e] for expert e, times s_d.
  const perms = [[5, 2, 7, 0], [3, 6, 1, 4]], scales = [1.3, -0.6];
  const next: LookaheadRouter[] = perms.map((perm, d) => ({
    layer: d + 1, norm: f32(be, `norm${d}`, D, 1, (_r, c) => normW[c]),
    router: f32(be, `ahead${d}`, D, NE, (r, c) => (c === perm[r] ? scales[d] : 0)), route: softmaxTopKRoute(NE, K, true),
  }));
  const rms = Math.sqrt(resid.reduce((s, v) => s + v * v, 0) / D + eps);
  const normed = resid.map((v, i) => (v / rms) * normW[i]);
  const want = perms.map((perm, d) => {
    const l = perm.map((i) => normed[i] * scales[d]);
    return [...l.keys()].sort((a, b) => l[b] - l[a]).slice(0, K);
  });
  const residual = be.alloc(D);
  be.write(residual, Float32Array.from(resid));

  for (const depth of [1, 2]) {
    const src = new MemExperts(setup(be).experts, undefined, depth, true);
    be.readManys = be.reads = 0;
    const got = await runMoe(be, [X[0]], { experts: src, lookahead: { residual, next, eps } });
    close(got, oracle(X[0]).out, "decode row");
    assert.deepEqual(src.prefetches, want.slice(0, depth).map((ids, d) => ({ layer: d + 1, ids, depth: d + 1 })));
    assert.equal(src.log[0], `acquire ${[...oracle(X[0]).ids].sort((a, b) => a - b).join(",")}`, "the demand read goes first");
    assert.equal(be.readManys, 1, "router and lookahead routers come back in one host read");
    assert.equal(be.reads, 0);
  }
  // No lookahead for a batch, nor for a source that cannot prefetch.
  const batch = new MemExperts(setup(be).experts, undefined, 2, true);
  await runMoe(be, X, { experts: batch, lookahead: { residual, next, eps } });
  assert.deepEqual(batch.prefetches, []);
  const plain = new MemExperts(setup(be).experts);
  await runMoe(be, [X[0]], { experts: plain, lookahead: { residual, next, eps } });
  assert.equal(plain.log.length, 1);
});

test("denseFfn of identity gate, up and down is silu(x)·x", async () => {
  const be = new ScalarBackend();
  const w = { gate: f32(be, "g", D, F, eye(1)), up: f32(be, "u", D, F, eye(1)), down: f32(be, "d", F, D, eye(1)) };
  const x = be.alloc(X.length * D), out = be.alloc(X.length * D);
  be.write(x, Float32Array.from(X.flat()));
  denseFfn(new Pass(be, new Scratch(be), 0, X.length, undefined), out, x, w);
  close(await be.read(out), X.flat().map((v) => silu(v) * v), "dense");
});

// The shared expert: identity gate, up and down make it silu(x)·x, added to the routed output as it is, or
// scaled per row by sigmoid(gateInp · x) (Qwen3-Next), whose logits come back in the router's one host read.
const GATE_W = [0.4, -0.3, 0.2, 0.1, -0.6, 0.5, 0.3, -0.2];
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const sharedExpert = (be: Backend, gateShape?: number[]) => ({
  gate: f32(be, "gs", D, F, eye(1)), up: f32(be, "us", D, F, eye(1)), down: f32(be, "ds", F, D, eye(1)),
  gateInp: gateShape && be.upload({ name: "gis", type: 0, shape: gateShape, bytes: new Uint8Array(Float32Array.from(GATE_W).buffer) }),
});
const withShared = (x: number[], gated: boolean) => {
  const s = gated ? sigmoid(x.reduce((a, v, i) => a + v * GATE_W[i], 0)) : 1;
  return oracle(x).out.map((o, i) => o + s * silu(x[i]) * x[i]);
};

test("moe() with a shared expert adds silu(x)·x to every row; gated, sigmoid(gateInp · x) times it ([D] or [D, 1]); one readMany", async () => {
  for (const gateShape of [undefined, [D], [D, 1]]) {
    const be = new CountingBackend();
    const src = new MemExperts(setup(be).experts);
    const got = await runMoe(be, X, { experts: src, shared: sharedExpert(be, gateShape) });
    X.forEach((x, t) => close(got.subarray(t * D, (t + 1) * D), withShared(x, gateShape !== undefined), `gate ${JSON.stringify(gateShape)} token ${t}`));
    assert.equal(be.readManys, 1, "the gate logits come back with the router's");
    assert.equal(be.reads, 0);
    assert.equal(src.held, 0);
  }
});

test("decode with lookahead and a gated shared expert: the same prefetches, one readMany", async () => {
  const be = new CountingBackend();
  const residual = be.alloc(D);
  be.write(residual, Float32Array.from(X[2]));
  const next: LookaheadRouter[] = [{ layer: 1, norm: f32(be, "n", D, 1, () => 1), router: f32(be, "r1", D, NE, eye(1)), route: softmaxTopKRoute(NE, K, true) }];
  const plain = new MemExperts(setup(be).experts, undefined, 1, true);
  await runMoe(be, [X[0]], { experts: plain, lookahead: { residual, next, eps: 1e-6 } });
  const src = new MemExperts(setup(be).experts, undefined, 1, true);
  be.readManys = 0;
  const got = await runMoe(be, [X[0]], { experts: src, lookahead: { residual, next, eps: 1e-6 }, shared: sharedExpert(be, [D]) });
  close(got, withShared(X[0], true), "decode row");
  assert.deepEqual(src.prefetches, plain.prefetches);
  assert.deepEqual(src.prefetches[0].ids, oracle(X[2]).ids, "the lookahead router reads the normed residual (same order as its raw values)");
  assert.equal(be.readManys, 1);
});

test("a failing shared expert still releases what was acquired", async () => {
  const be = new CountingBackend();
  const src = new MemExperts(setup(be).experts, 2);
  be.failSwiglu = true; // the shared expert runs first, while the first group's reads are in flight
  await assert.rejects(runMoe(be, X, { experts: src, shared: sharedExpert(be, [D]) }), /swiglu failed/);
  await new Promise((r) => setImmediate(r)); // the release waits for the acquire to settle
  assert.deepEqual(src.acquires, [[0, 1]]);
  assert.equal(src.held, 0);
});

// attention() with gpt-oss's extras: identity projections (q = x, k = v = x's first headDim values) make each
// bias's effect plain; head dim 2 makes NeoX rope a rotation of (a, b) by the position; 2 heads share 1 kv head.
test("attention() adds q, k, v biases before rope and the output bias after wo; sinks join each head's softmax (prefill, then decode)", async () => {
  const be = new ScalarBackend();
  const AD = 4, nHead = 2, hd = 2, scale = 0.9;
  const bq = [0.1, -0.2, 0.3, 0.05], bk = [-0.4, 0.25], bv = [1, -2], bo = [0.5, 0, -0.5, 2], sinks = [0.3, -0.8];
  const rows = [[0.2, -1, 0.7, 0.4], [1.1, 0.3, -0.6, 0.9], [-0.5, 0.8, 0.2, -1.2]];
  const vec = (name: string, v: number[]) => f32(be, name, v.length, 1, (_r, c) => v[c]);
  const state = new FullAttentionState(be, 8, hd);
  const p = {
    layer: 0, wq: f32(be, "wq", AD, AD, eye(1)), wk: f32(be, "wk", AD, hd, eye(1)), wv: f32(be, "wv", AD, hd, eye(1)), wo: f32(be, "wo", AD, AD, eye(1)),
    bq: vec("bq", bq), bk: vec("bk", bk), bv: vec("bv", bv), bo: vec("bo", bo), sinks: vec("sinks", sinks),
    nHead, nHeadKv: 1, headDim: hd, rope: { freqBase: 10000 }, eps: 1e-6, scale, state,
  };
  const rot = ([a, b]: number[], pos: number) => [a * Math.cos(pos) - b * Math.sin(pos), a * Math.sin(pos) + b * Math.cos(pos)];
  const keys = rows.map((x, j) => rot([x[0] + bk[0], x[1] + bk[1]], j)), vals = rows.map((x) => [x[0] + bv[0], x[1] + bv[1]]);
  const want = (pos: number) => {
    const x = rows[pos], out: number[] = [];
    for (let h = 0; h < nHead; h++) {
      const q = rot([x[2 * h] + bq[2 * h], x[2 * h + 1] + bq[2 * h + 1]], pos);
      const e = keys.slice(0, pos + 1).map((k) => Math.exp(scale * (q[0] * k[0] + q[1] * k[1])));
      const z = e.reduce((a, b) => a + b, 0) + Math.exp(sinks[h]);
      for (let i = 0; i < hd; i++) out.push(e.reduce((a, w, j) => a + (w / z) * vals[j][i], 0) + bo[2 * h + i]);
    }
    return out;
  };
  const run = async (from: number, n: number) => {
    const x = be.alloc(n * AD), out = be.alloc(n * AD);
    be.write(x, Float32Array.from(rows.slice(from, from + n).flat()));
    await attention(new Pass(be, new Scratch(be), from, n, undefined), out, x, p);
    state.advance(n);
    return be.read(out);
  };
  close(await run(0, 2), [...want(0), ...want(1)], "prefill");
  close(await run(2, 1), want(2), "decode");
});
