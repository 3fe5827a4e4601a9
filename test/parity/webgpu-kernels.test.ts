// Every WGSL kernel of the WebGPU backend held to the scalar reference on small shapes (lavapipe in CI): matmul
// and embedding for each quant type (Q8_0 and Q6_K repacked in place, odd block counts beside a neighbour that
// must survive), norms, rope, attention (decode, prefill, GQA), the element-wise and row ops, the MoE op, and
// weight arenas split over bindings. Tolerances are normalised MSE: f32 sums on the GPU vs f64 in the reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend, Buf, ExpertRows, HostWeight, RopeOptions, Weight } from "../../src/backends/backend.js";
import { decodeRoute, tensorBytes } from "../../src/backends/backend.js";
import { bucketByExpert, softmaxTopK } from "../../src/models/routing.js";
import { F16, F32, MXFP4, Q4_K as Q4_K_FORMAT, Q6_K, Q8_0 } from "../../src/quant/index.js";
import { arenaParity, matmulParity, moePromptParity, splitWeightParity, TOL, TOL_INT_X } from "../helpers/webgpu-quant-parity.js";

/** The CPU backends' matmul set and gpt-oss's MXFP4 (the other k-quants and IQ4_XS: webgpu-kquants.test.ts). */
const MATMUL_FORMATS_ALL = [...MATMUL_FORMATS, MXFP4];
import { MATMUL_FORMATS, randomValues, bufOf, randomWeight, runMatmul, perExpertMoe } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";
import { gpuBackend, gpuDevice } from "../helpers/webgpu.js";
import { openGpuDevice } from "../../src/backends/webgpu/device.js";
import { WebGpuBackend } from "../../src/backends/webgpu/webgpu.js";

/** exp and sums over up to a few hundred keys in f32. */
const TOL_ATTN = 1e-9;

const hostF32 = (name: string, x: Float32Array): HostWeight => ({ name, type: F32.type, shape: [x.length], bytes: new Uint8Array(x.buffer, x.byteOffset, x.byteLength) });

test("webgpu matmul and embed match the scalar reference for F32, F16, BF16, Q8_0, Q4_K, Q6_K, MXFP4 (decode matvec, tiled matmul over several tokens; the other sums and readers on F32, Q8_0, Q4_K)", (t) => matmulParity(t, MATMUL_FORMATS_ALL, new Set(["F32", "Q8_0", "Q4_K"])));

test("webgpu weight arenas: repacked weights beside each other, rewritten slots, a weight straddling two bindings", () => arenaParity(MATMUL_FORMATS_ALL));

test("webgpu weights larger than a binding (a big vocabulary's embedding and output on a device that binds little): matmul, embed and embedLater run them as runs of rows, equal to the reference (F16, Q8_0 and Q6_K repacked, Q4_K's vec4 reader, MXFP4)", () => splitWeightParity([F16, Q8_0, Q4_K_FORMAT, Q6_K, MXFP4]));

test("webgpu rmsNorm, add, swiglu, sigmoidMul, swigluOai match the scalar reference (also in place)", async () => {
  const scalar = new ScalarBackend(), be = await gpuBackend();
  for (const [len, rows] of [[2048, 1], [128, 7], [45, 3]]) {
    const x = randomValues(len * rows, `rms-x-${len}-${rows}`, 3);
    const hw = hostF32("norm", randomValues(len, `rms-w-${len}`));
    const ref = bufOf(scalar, x);
    scalar.rmsNorm(ref, ref, scalar.upload(hw), 1e-6, len, rows);
    const w = be.upload(hw), xb = bufOf(be, x), out = be.alloc(len * rows);
    be.rmsNorm(out, xb, w, 1e-6, len, rows);
    be.rmsNorm(xb, xb, w, 1e-6, len, rows);
    const got = await be.read(out);
    assert.ok(sameBits(got, await be.read(xb)), "rmsNorm in place differs");
    const e = nmse(got, await scalar.read(ref));
    assert.ok(e < TOL, `rmsNorm len ${len} rows ${rows}: nmse ${e.toExponential(2)}`);
  }
  for (const n of [1, 67, 3000]) {
    const a = randomValues(n, `a-${n}`, 4), b = randomValues(n, `b-${n}`, 2);
    if (n > 4) a.set([100, -100, 80, -80]); // exp over- and underflow in silu and sigmoid
    for (const op of ["add", "swiglu", "sigmoidMul", "swigluOai"] as const) {
      // gpt-oss's clamped SwiGLU (alpha 1.702, limit 7: values past the clamps above)
      const call = (k: Backend, o: Buf, x: Buf, y: Buf) => (op === "swigluOai" ? k.swigluOai(o, x, y, n, 1.702, 7) : k[op](o, x, y, n));
      const ra = bufOf(scalar, a);
      call(scalar, ra, ra, bufOf(scalar, b));
      const ga = bufOf(be, a), gb = bufOf(be, b), out = be.alloc(n);
      call(be, out, ga, gb);
      call(be, ga, ga, gb);
      const got = await be.read(out);
      assert.ok(sameBits(got, await be.read(ga)), `${op} in place differs`);
      const e = nmse(got, await scalar.read(ra));
      assert.ok(e < TOL, `${op} n=${n}: nmse ${e.toExponential(2)}`);
    }
  }
});

test("webgpu rope (NeoX and NORM pairs, whole and partial heads, an offset, YaRN) matches the scalar reference", async () => {
  const scalar = new ScalarBackend(), be = await gpuBackend();
  // DeepSeek-V3's YaRN: factor 40 over 64 rotated dims of an original context of 4096.
  const yarn = { freqScale: 1 / 40, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1, nCtxOrig: 4096 };
  const cases: [number, number, number, number, RopeOptions | undefined][] = [
    [1, 8, 128, 128, undefined], [5, 4, 64, 64, undefined], [3, 2, 64, 16, undefined], [2, 3, 12, 2, undefined],
    [3, 4, 64, 64, { mode: "norm" }], [2, 2, 96, 64, { mode: "norm", offset: 32, yarn }], [2, 2, 64, 32, { offset: 16 }],
  ];
  for (const [nTok, nHead, hd, nRot, opts] of cases) {
    const x = randomValues(nTok * nHead * hd, `rope-${nTok}-${nHead}-${nRot}`, 2);
    const pos = Int32Array.from({ length: nTok }, (_, i) => 700 + 37 * i);
    const a = bufOf(scalar, x), b = bufOf(be, x);
    scalar.rope(a, pos, nHead, hd, 1e6, nRot, opts);
    be.rope(b, pos, nHead, hd, 1e6, nRot, opts);
    const got = await be.read(b);
    const e = nmse(got, await scalar.read(a));
    const what = `rope T=${nTok} heads ${nHead} nRot ${nRot} ${JSON.stringify(opts ?? {})}`;
    assert.ok(e < TOL, `${what}: nmse ${e.toExponential(2)}`);
    const off = opts?.offset ?? 0;
    for (let r = 0; r < nTok * nHead; r++) {
      const row = (v: Float32Array, from: number, to: number) => v.subarray(r * hd + from, r * hd + to);
      assert.ok(sameBits(row(got, 0, off), row(x, 0, off)) && sameBits(row(got, off + nRot, hd), row(x, off + nRot, hd)), `${what}: unroped values changed`);
    }
  }
});

test("webgpu kvStore and attention (decode, prefill after a prefix, GQA, peaked scores; gpt-oss's sinks, sliding window and f16 probabilities) match the scalar reference", async () => {
  const scalar = new ScalarBackend(), be = await gpuBackend();
  const sinkValues = randomValues(8, "sinks", 2);
  const cases: { nTokens: number; startPos: number; nHead: number; nHeadKv: number; headDim: number; window?: number; sinks?: "host" | "weight"; f16Probs?: boolean; vDim?: number }[] = [
    { nTokens: 1, startPos: 0, nHead: 4, nHeadKv: 2, headDim: 64 },
    { nTokens: 1, startPos: 300, nHead: 8, nHeadKv: 2, headDim: 128 },
    { nTokens: 13, startPos: 5, nHead: 8, nHeadKv: 2, headDim: 64 },
    { nTokens: 3, startPos: 2, nHead: 3, nHeadKv: 3, headDim: 12 },
    { nTokens: 1, startPos: 200, nHead: 8, nHeadKv: 2, headDim: 64, window: 128, sinks: "weight", f16Probs: true },
    { nTokens: 13, startPos: 5, nHead: 8, nHeadKv: 2, headDim: 64, window: 7, sinks: "host" },
    { nTokens: 3, startPos: 40, nHead: 3, nHeadKv: 3, headDim: 12, window: 16, f16Probs: true },
    { nTokens: 4, startPos: 9, nHead: 4, nHeadKv: 1, headDim: 72, vDim: 64 }, // MLA: V the first 64 of each K row
  ];
  for (const c of cases) {
    const nKeys = c.startPos + c.nTokens, kvDim = c.nHeadKv * c.headDim;
    const q = randomValues(c.nTokens * c.nHead * c.headDim, `aq-${nKeys}`, 3);
    const kPre = randomValues(c.startPos * kvDim, `ak-${nKeys}`, 3), vPre = randomValues(c.startPos * kvDim, `av-${nKeys}`);
    const kNew = randomValues(c.nTokens * kvDim, `akn-${nKeys}`, 3), vNew = randomValues(c.nTokens * kvDim, `avn-${nKeys}`);
    const run = async (b: Backend) => {
      const sinks = c.sinks === "host" ? sinkValues : c.sinks === "weight" ? b.upload(hostF32("blk.0.attn_sinks.weight", sinkValues.subarray(0, c.nHead))) : undefined;
      const p = { ...c, sinks, scale: 1 / Math.sqrt(c.headDim) };
      const kc = b.alloc((nKeys + 4) * kvDim), vc = b.alloc((nKeys + 4) * kvDim), o = b.alloc(c.nTokens * c.nHead * (c.vDim ?? c.headDim));
      b.write(kc, kPre);
      b.write(vc, vPre);
      b.kvStore(kc, vc, bufOf(b, kNew), bufOf(b, vNew), c.startPos, c.nTokens, kvDim);
      b.attention(o, bufOf(b, q), kc, vc, p);
      return b.read(o);
    };
    const e = nmse(await run(be), await run(scalar));
    assert.ok(e < TOL_ATTN, `${JSON.stringify(c)}: nmse ${e.toExponential(2)}`);
  }
  const q = new Float32Array(64), k = randomValues(9 * 64, "pk"), v = randomValues(9 * 64, "pv");
  q[0] = 400;
  const run = async (b: Backend) => {
    const o = b.alloc(64);
    b.attention(o, bufOf(b, q), bufOf(b, k), bufOf(b, v), { nTokens: 1, startPos: 8, nHead: 1, nHeadKv: 1, headDim: 64, scale: 1 });
    return b.read(o);
  };
  const e = nmse(await run(be), await run(scalar));
  assert.ok(e < TOL_ATTN, `peaked: nmse ${e.toExponential(2)}`);
});

test("webgpu gatherRows, copy (strided, f16-rounded) and zero equal the scalar reference bit for bit; scatterAddRows (a row twice) and addRows match it", async () => {
  const scalar = new ScalarBackend(), be = await gpuBackend();
  const x = randomValues(6 * 40, "rows-x", 3), base = randomValues(6 * 40, "rows-o");
  const rows = Int32Array.from([4, 1, 4, 0]), scales = Float32Array.from([0.5, -2, 1.25, 3]);
  const bias = hostF32("blk.0.attn_q.bias", randomValues(40, "bias"));
  const run = async (b: Backend) => {
    const xb = bufOf(b, x), g = b.alloc(4 * 40), o = bufOf(b, base), c = b.alloc(6 * 40), z = bufOf(b, x);
    b.gatherRows(g, xb, rows, 40);
    b.scatterAddRows(o, g, rows, scales, 40);
    b.addRows(o, b.upload(bias), 40, 5);
    b.copy(c, xb, { rows: 3, n: 17, src: { offset: 3, stride: 40 }, dst: { offset: 1, stride: 50 } });
    b.copy(c, xb, { rows: 2, n: 40, src: { offset: 80, stride: 40 }, dst: { offset: 160, stride: 40 }, roundF16: true });
    b.zero(z);
    return [...(await b.readMany([g, o, c, z]))];
  };
  const [got, want] = [await run(be), await run(scalar)];
  for (const [what, i] of [["gather", 0], ["copy", 2], ["zero", 3]] as const) assert.ok(sameBits(got[i], want[i]), `${what} differs`);
  // The reference rounds s·x + o once (f64), the GPU twice (f32).
  const e = nmse(got[1], want[1]);
  assert.ok(e < TOL, `scatter-add + addRows: nmse ${e.toExponential(2)}`);
  // Rows of two column blocks (the second partial), a row listed three times out of order, a row never listed.
  const L = 100, r3 = Int32Array.from([2, 0, 2, 2, 1]), s3 = Float32Array.from([0.5, -1, 2, 0.25, 3]);
  const x3 = randomValues(r3.length * L, "sa3-x", 2), o3 = randomValues(4 * L, "sa3-o", 2);
  const scatter = async (b: Backend) => {
    const o = bufOf(b, o3);
    b.scatterAddRows(o, bufOf(b, x3), r3, s3, L);
    return b.read(o);
  };
  const [g3, w3] = [await scatter(be), await scatter(scalar)];
  assert.ok(nmse(g3, w3) < TOL, `scatter-add over rows of ${L}: nmse ${nmse(g3, w3).toExponential(2)}`);
  assert.ok(sameBits(g3.subarray(3 * L), o3.subarray(3 * L)), "a row never listed is left as it was");
});

test("webgpu moeFfn over a prompt: experts with 4 tokens or more read their weights once per tile of 16 tokens, the rest per token; equals the per-expert reference", () =>
  moePromptParity([[MATMUL_FORMATS_ALL.find((f) => f.name === "Q8_0")!, 64, 96], [Q4_K_FORMAT, 256, 256]]));

test("webgpu moeFfn over a set of experts equals the per-expert reference", async () => {
  const scalar = new ScalarBackend(), be = await gpuBackend();
  const D = 64, F = 96, T = 5;
  for (const fmt of MATMUL_FORMATS_ALL.filter((f) => f.blockSize === 32 || f.blockSize === 1)) {
    const h = randomValues(T * D, `moe-h-${fmt.name}`, 2);
    const expert = (e: number, rows: number[], sc: number[]) => (b: Backend): ExpertRows => ({
      gate: b.upload(randomWeight(fmt, D, F, `g${e}${fmt.name}`)), up: b.upload(randomWeight(fmt, D, F, `u${e}${fmt.name}`)), down: b.upload(randomWeight(fmt, F, D, `d${e}${fmt.name}`)),
      rows: Int32Array.from(rows), scales: Float32Array.from(sc),
    });
    const set = [expert(0, [0, 2, 4], [0.5, 0.25, 1]), expert(1, [1, 2], [0.75, 0.125]), expert(2, [], [])];
    const ref = bufOf(scalar, new Float32Array(T * D));
    perExpertMoe(scalar, ref, bufOf(scalar, h), set.map((s) => s(scalar)), D, F);
    for (const intDot of fmt.name === "Q8_0" ? [false, true] : [false]) {
      be.intDot = intDot; // gate and up (rows of 64) against x quantised to 8 bits; down's rows of 96 keep f32
      const out = be.alloc(T * D);
      be.zero(out);
      be.moeFfn(out, bufOf(be, h), set.map((s) => s(be)));
      const e = nmse(await be.read(out), await scalar.read(ref));
      assert.ok(e < (intDot ? TOL_INT_X : TOL), `${fmt.name} moe${intDot ? ", integer dot" : ""}: nmse ${e.toExponential(2)}`);
    }
    be.intDot = false;
  }
});

/** Experts' [gate, up, down] written one record after another into one weight arena, as resident slots hold them. */
function inOneArena(be: WebGpuBackend, parts: HostWeight[][]): { gate: Weight; up: Weight; down: Weight }[] {
  const rec = parts[0].reduce((a, w) => a + tensorBytes(w), 0);
  const arena = be.allocWeights(parts.length * rec);
  return parts.map((ws, e) => {
    let at = e * rec;
    const [gate, up, down] = ws.map((w) => {
      arena.write(at, w.bytes.subarray(0, tensorBytes(w)));
      const v = arena.view(w, at);
      at += tensorBytes(w);
      return v;
    });
    return { gate, up, down };
  });
}

test("webgpu moeFfn of a decode token's experts in one buffer (gate+up, then down with the weighted sum added in one dispatch) adds into out as the per-expert reference, and into zeros as the general path bit for bit", async () => {
  const scalar = new ScalarBackend(), be = await gpuBackend();
  const D = 256, F = 256, n = 5;
  const parts = Array.from({ length: n }, (_, e) => [randomWeight(Q4_K_FORMAT, D, F, `dg${e}`), randomWeight(Q4_K_FORMAT, D, F, `du${e}`), randomWeight(Q4_K_FORMAT, F, D, `dd${e}`)]);
  const inArena = inOneArena(be, parts);
  const h = randomValues(D, "dec-h", 2), base = randomValues(D, "dec-out", 1), picked = [4, 1, 3], scales = [0.5, 0.3, 0.2];
  const rows = (b: Backend, ws: { gate: Weight; up: Weight; down: Weight }[]): ExpertRows[] => picked.map((e, j) => ({ ...ws[e], rows: Int32Array.of(0), scales: Float32Array.of(scales[j]) }));
  const ref = bufOf(scalar, base);
  perExpertMoe(scalar, ref, bufOf(scalar, h), rows(scalar, parts.map(([gate, up, down]) => ({ gate: scalar.upload(gate), up: scalar.upload(up), down: scalar.upload(down) }))), D, F);
  const run = async (fused: boolean, from = base) => {
    be.fuseDownSum = fused; // off: the general path (gate+up, down, scatter-add)
    try {
      const out = bufOf(be, from), d0 = be.counters.dispatches;
      be.moeFfn(out, bufOf(be, h), rows(be, inArena));
      return { v: await be.read(out), dispatches: be.counters.dispatches - d0 };
    } finally {
      be.fuseDownSum = true;
    }
  };
  const [fast, general] = [await run(true), await run(false)];
  assert.equal(fast.dispatches, 2, "gate+up, then down with the sum");
  assert.equal(general.dispatches, 3);
  const e = nmse(fast.v, await scalar.read(ref));
  assert.ok(e < TOL, `nmse vs the reference ${e.toExponential(2)}`);
  assert.ok(nmse(general.v, await scalar.read(ref)) < TOL);
  // Into zeros (as a layer's MoE sums): the same bits, the pairs summed in the same order (into values already
  // there the two round apart: the general path adds each pair to them, this one their sum).
  const zeros = new Float32Array(D);
  assert.ok(sameBits((await run(true, zeros)).v, (await run(false, zeros)).v), "the same sums in the same order as down then the scatter-add");
});

test("webgpu routing on the device: softmax top-k ids and weights as the reference's (ties to the lower id), and moeRouted from its tables equals moeFfn from the read-back routing bit for bit", async () => {
  const be = await gpuBackend();
  // 70 experts (not a multiple of the 64 threads), 7 tokens; token 3 has a 4-way tie at its top, token 5 all equal.
  const nE = 70, T = 7;
  const lg = randomValues(T * nE, "route-logits", 3);
  for (const e of [9, 2, 40, 69]) lg[3 * nE + e] = 5;
  lg.fill(0.25, 5 * nE, 6 * nE);
  for (const [k, normalize] of [[4, true], [8, false], [1, true]] as const) {
    const want = softmaxTopK(lg, T, nE, k, normalize);
    const r = be.routeOnDevice(bufOf(be, lg), T, { nExpert: nE, k, normalize });
    const got = decodeRoute(r, await be.read(r.buf));
    assert.deepEqual([...got.ids], [...want.ids], `top-${k} ids`);
    got.weights.forEach((w, i) => assert.ok(Math.abs(w - want.weights[i]) <= 1e-6 * Math.abs(want.weights[i]) + 1e-12, `top-${k} weight ${i}: ${w} vs ${want.weights[i]}`));
  }
  // Every expert of a "layer" in one arena, as resident slots hold them.
  const F = 256, nX = 6, k = 2;
  const fmt = Q4_K_FORMAT;
  const parts = Array.from({ length: nX }, (_, e) => [randomWeight(fmt, 256, F, `rg${e}`), randomWeight(fmt, 256, F, `ru${e}`), randomWeight(fmt, F, 256, `rd${e}`)]);
  const experts = inOneArena(be, parts);
  // A prompt (the routing kernel, then the tables) and a decode token, in each form of the MoE: the routing in a
  // dispatch of its own or inside gate+up's (one token), down then the combine or down with the weighted sum.
  for (const [fuseRouting, fuseDownSum, T2, reader] of [[false, false, 5, "word"], [false, false, 1, "word"], [true, true, 5, "word"], [true, true, 1, "word"], [false, false, 1, "pair"], [true, true, 1, "pair"], [false, false, 5, "vec4"], [true, true, 1, "vec4"], [false, false, 5, "int"], [true, true, 1, "int"]] as const) {
    [be.fuseRouting, be.fuseDownSum, be.q4kReader, be.intDot] = [fuseRouting, fuseDownSum, reader === "int" ? "word" : reader, reader === "int"];
    const lg2 = randomValues(T2 * nX, `route-logits-${T2}`, 2), h = randomValues(T2 * 256, `route-h-${T2}`, 2);
    const hb = bufOf(be, h), lb = bufOf(be, lg2);
    const r = be.routeOnDevice(lb, T2, { nExpert: nX, k, normalize: true }, experts);
    assert.ok(r.tables, "one arena: the pair tables are written");
    const onDevice = bufOf(be, new Float32Array(T2 * 256).fill(7)); // overwritten, not added to
    be.moeRouted(onDevice, hb, r);
    const words = await be.read(r.buf);
    const routing = { nTokens: T2, k, ...decodeRoute(r, words) };
    const want = softmaxTopK(lg2, T2, nX, k, true);
    assert.deepEqual([...routing.ids], [...want.ids], `T=${T2}: routing ids`);
    const fromHost = be.alloc(T2 * 256);
    be.zero(fromHost);
    be.moeFfn(fromHost, hb, bucketByExpert(routing).map((b) => ({ ...experts[b.expert], rows: b.rows, scales: b.scales })));
    const [a, b] = await be.readMany([onDevice, fromHost]);
    assert.ok(sameBits(a, b), `T=${T2}, fused ${fuseRouting}: device tables and host tables give other bits`);
    assert.ok(a.some((v) => v !== 0));
  }
  const lb = bufOf(be, randomValues(5 * nX, "route-logits-5", 2));
  const T2 = 5;
  // Experts of one layer in different buffers: no tables (the layer then reads its routing back).
  const apart = experts.map((e, i) => (i === 3 ? { gate: be.upload(parts[3][0]), up: be.upload(parts[3][1]), down: be.upload(parts[3][2]) } : e));
  assert.equal(be.routeOnDevice(lb, T2, { nExpert: nX, k, normalize: true }, apart).tables, false);
});

test("webgpu matmulSet (q, k, v of one type in one dispatch) equals a matmul each bit for bit", async () => {
  const be = await gpuBackend();
  for (const fmt of MATMUL_FORMATS_ALL) {
    const k = fmt.blockSize === 256 ? 512 : 96;
    const ns = [4100, 40, 40];
    const ws = ns.map((n, i) => be.upload(randomWeight(fmt, k, n, `set-${fmt.name}-${i}`)));
    const x = bufOf(be, randomValues(k, `set-x-${fmt.name}`, 2));
    const one = ns.map((n) => be.alloc(n)), set = ns.map((n) => be.alloc(n));
    ws.forEach((w, i) => be.matmul(one[i], w, x, 1));
    be.matmulSet(set, ws, x, 1);
    const got = await be.readMany([...one, ...set]);
    ns.forEach((_, i) => assert.ok(sameBits(got[ns.length + i], got[i]), `${fmt.name}: output ${i} differs`));
  }
});

test("webgpu matmulHeads (a 3-D weight per head: DeepSeek's attn_k_b / attn_v_b) matches the scalar reference", async () => {
  const scalar = new ScalarBackend(), be = await gpuBackend();
  for (const fmt of MATMUL_FORMATS_ALL.filter((f) => ["Q8_0", "F16", "BF16", "Q4_K"].includes(f.name))) {
    const k = fmt.blockSize === 256 ? 256 : 64, n = 24, nh = 3, T = 2;
    const flat = randomWeight(fmt, k, n * nh, `heads-${fmt.name}`);
    const hw = { ...flat, name: "blk.0.attn_k_b.weight", shape: [k, n, nh] };
    const x = randomValues(T * nh * k, `heads-x-${fmt.name}`, 2);
    const run = async (b: Backend) => {
      const o = b.alloc(T * nh * n);
      b.matmulHeads(o, b.upload(hw), bufOf(b, x), T);
      return b.read(o);
    };
    const e = nmse(await run(be), await run(scalar));
    assert.ok(e < TOL, `${fmt.name} matmulHeads: nmse ${e.toExponential(2)}`);
  }
});

test("webgpu rope of one position (decode: a row of a table shared by 4096 positions) equals that position's row in a prompt's own table bit for bit, across tables", async () => {
  const be = await gpuBackend();
  const nHead = 2, hd = 64;
  for (const nRot of [64, 32]) {
    for (const p0 of [0, 1, 4095, 4096, 4097, 12289]) {
      const x = randomValues(2 * nHead * hd, `rope1-${p0}`, 2);
      const one = bufOf(be, x.subarray(0, nHead * hd)), two = bufOf(be, x);
      be.rope(one, Int32Array.of(p0), nHead, hd, 1e6, nRot);
      be.rope(two, Int32Array.of(p0, p0 + 1), nHead, hd, 1e6, nRot);
      const [a, b] = await be.readMany([one, two]);
      assert.ok(sameBits(a, b.subarray(0, nHead * hd)), `position ${p0}, nRot ${nRot}: decode's row differs from the prompt table's`);
    }
  }
});

test("webgpu normRopeStore (per-head q/k norms, rope, KV store in one dispatch) equals rmsNorm, rope and kvStore bit for bit, whole and partial rope", async () => {
  const be = await gpuBackend(), scalar = new ScalarBackend();
  const nHead = 4, nHeadKv = 2, hd = 128, T = 3, start = 5, nCtx = 12;
  for (const nRot of [hd, 64]) {
    const pos = Int32Array.from({ length: T }, (_, t) => start + t);
    const qv = randomValues(T * nHead * hd, "nrs-q", 3), kv = randomValues(T * nHeadKv * hd, "nrs-k", 3), vv = randomValues(T * nHeadKv * hd, "nrs-v", 3);
    const qNorm = hostF32("q_norm", randomValues(hd, "nrs-qn", 1)), kNorm = hostF32("k_norm", randomValues(hd, "nrs-kn", 1));
    const cache = randomValues(nCtx * nHeadKv * hd, "nrs-cache", 1);
    const run = async (b: Backend, fused: boolean) => {
      const q = bufOf(b, qv), k = bufOf(b, kv), v = bufOf(b, vv), kc = bufOf(b, cache), vc = bufOf(b, cache);
      const qn = b.upload(qNorm), kn = b.upload(kNorm);
      if (fused) b.normRopeStore!(q, k, v, { qNorm: qn, kNorm: kn, eps: 1e-6, pos, nHead, nHeadKv, headDim: hd, freqBase: 1e6, nRot, kCache: kc, vCache: vc, startPos: start });
      else {
        b.rmsNorm(q, q, qn, 1e-6, hd, T * nHead);
        b.rmsNorm(k, k, kn, 1e-6, hd, T * nHeadKv);
        b.rope(q, pos, nHead, hd, 1e6, nRot);
        b.rope(k, pos, nHeadKv, hd, 1e6, nRot);
        b.kvStore(kc, vc, k, v, start, T, nHeadKv * hd);
      }
      return b.readMany([q, k, kc, vc]);
    };
    const [got, want, ref] = [await run(be, true), await run(be, false), await run(scalar, false)];
    ["q", "k", "k cache", "v cache"].forEach((what, i) => {
      assert.ok(sameBits(got[i], want[i]), `nRot ${nRot}: ${what} differs from the separate ops`);
      assert.ok(nmse(got[i], ref[i]) < TOL, `nRot ${nRot}: ${what} vs scalar nmse ${nmse(got[i], ref[i]).toExponential(2)}`);
    });
  }
});

test("webgpu normRopeAttention (a decode token's norms, rope, KV store and attention in one dispatch) equals normRopeStore then attention bit for bit; shapes it cannot fuse are declined untouched", async () => {
  const be = await gpuBackend(), scalar = new ScalarBackend();
  const nHead = 8, nHeadKv = 2, nCtx = 4100, eps = 1e-6, base = 1e6;
  for (const [hd, nRot] of [[128, 128], [128, 64], [64, 64]]) {
    const qv = randomValues(nHead * hd, "nra-q", 3), kv = randomValues(nHeadKv * hd, "nra-k", 3), vv = randomValues(nHeadKv * hd, "nra-v", 3);
    const norms = randomValues(2 * hd, "nra-norms", 1);
    const cache = randomValues(nCtx * nHeadKv * hd, "nra-cache", 1);
    const scale = 1 / Math.sqrt(hd);
    // Positions 0 (the token's own key only), 1, past the V loop's 4-key unrolling, and the second rope table's
    // first rows (a decode token's rope row comes from a table of 4096 positions), near the cache's end.
    for (const start of [0, 1, 9, 37, 4096, 4097]) {
      const pos = Int32Array.of(start);
      const run = async (b: Backend, how: "fused" | "separate" | "scalar") => {
        const q = bufOf(b, qv), k = bufOf(b, kv), v = bufOf(b, vv), kc = bufOf(b, cache), vc = bufOf(b, cache), out = b.alloc(nHead * hd);
        // Both norms in one arena, as a model's weights sit (the fused kernel reads them through one binding).
        const a = b.allocWeights(norms.byteLength);
        a.write(0, new Uint8Array(norms.buffer, norms.byteOffset, norms.byteLength));
        const qNorm = a.view({ name: "q_norm", type: F32.type, shape: [hd] }, 0), kNorm = a.view({ name: "k_norm", type: F32.type, shape: [hd] }, 4 * hd);
        const p = { qNorm, kNorm, eps, pos, nHead, nHeadKv, headDim: hd, freqBase: base, nRot, kCache: kc, vCache: vc, startPos: start };
        if (how === "fused") assert.equal(b.normRopeAttention!(out, q, k, v, { ...p, scale }), true, "fused");
        else {
          if (how === "separate") b.normRopeStore!(q, k, v, p);
          else {
            b.rmsNorm(q, q, qNorm, eps, hd, nHead);
            b.rmsNorm(k, k, kNorm, eps, hd, nHeadKv);
            b.rope(q, pos, nHead, hd, base, nRot);
            b.rope(k, pos, nHeadKv, hd, base, nRot);
            b.kvStore(kc, vc, k, v, start, 1, nHeadKv * hd);
          }
          b.attention(out, q, kc, vc, { nTokens: 1, startPos: start, nHead, nHeadKv, headDim: hd, scale });
        }
        return b.readMany([out, kc, vc]);
      };
      const [got, want, ref] = [await run(be, "fused"), await run(be, "separate"), await run(scalar, "scalar")];
      ["out", "k cache", "v cache"].forEach((what, i) => {
        assert.ok(sameBits(got[i], want[i]), `hd ${hd}, nRot ${nRot}, position ${start}: ${what} differs from normRopeStore then attention`);
        assert.ok(nmse(got[i], ref[i]) < TOL_ATTN, `hd ${hd}, nRot ${nRot}, position ${start}: ${what} vs scalar nmse ${nmse(got[i], ref[i]).toExponential(2)}`);
      });
    }
  }
  // Declined: two tokens, and heads wider than the kernel's 64 vec4 lanes; nothing recorded.
  const n = be.upload(hostF32("norm", randomValues(264, "nra-wide", 1)));
  const d0 = be.counters.dispatches;
  for (const [hd, T] of [[128, 2], [264, 1]] as const) {
    const b = (len: number) => be.alloc(len);
    const p = { qNorm: n, kNorm: n, eps, pos: Int32Array.from({ length: T }, (_, t) => t), nHead: 2, nHeadKv: 1, headDim: hd, freqBase: base, nRot: hd, kCache: b(4 * hd), vCache: b(4 * hd), startPos: 0, scale: 1 };
    assert.equal(be.normRopeAttention(b(2 * T * hd), b(2 * T * hd), b(T * hd), b(T * hd), p), false, `hd ${hd}, ${T} tokens`);
  }
  // Refused, naming the op and what is wrong (both ops check their operands the same way): norms of another length,
  // and a position past the cache.
  const b = (len: number) => be.alloc(len);
  const p = { qNorm: n, kNorm: n, eps, pos: Int32Array.of(3), nHead: 2, nHeadKv: 1, headDim: 128, freqBase: base, nRot: 128, kCache: b(4 * 128), vCache: b(4 * 128), startPos: 3, scale: 1 };
  const args = [b(256), b(256), b(128), b(128)] as const;
  assert.throws(() => be.normRopeAttention(...args, p), /webgpu normRopeAttention: norms 'norm', 'norm' must be F32 of 128 values/);
  assert.throws(() => be.normRopeStore(args[1], args[2], args[3], p), /webgpu normRopeStore: norms 'norm', 'norm' must be F32 of 128 values/);
  const a = be.allocWeights(4 * 256);
  a.write(0, new Uint8Array(randomValues(256, "nra-bad").buffer));
  const qNorm = a.view({ name: "q_norm", type: F32.type, shape: [128] }, 0), kNorm = a.view({ name: "k_norm", type: F32.type, shape: [128] }, 512);
  assert.throws(() => be.normRopeAttention(...args, { ...p, qNorm, kNorm, pos: Int32Array.of(4), startPos: 4 }), /normRopeAttention: positions \[4, 5\) overrun a cache of 4/);
  assert.equal(be.counters.dispatches, d0);
});

test("webgpu addRmsNorm (residual add and the next norm in one dispatch) equals add then rmsNorm bit for bit", async () => {
  const be = await gpuBackend();
  const D = 200, T = 3;
  const xv = randomValues(T * D, "arn-x", 2), yv = randomValues(T * D, "arn-y", 2), w = be.upload(hostF32("norm", randomValues(D, "arn-w", 1)));
  const x1 = bufOf(be, xv), y1 = bufOf(be, yv), h1 = be.alloc(T * D);
  be.addRmsNorm(x1, y1, h1, w, 1e-6, D, T);
  const x2 = bufOf(be, xv), y2 = bufOf(be, yv), h2 = be.alloc(T * D);
  be.add(x2, x2, y2, T * D);
  be.rmsNorm(h2, x2, w, 1e-6, D, T);
  const [a, b, c, d] = await be.readMany([x1, h1, x2, h2]);
  assert.ok(sameBits(a, c), "x differs");
  assert.ok(sameBits(b, d), "h differs");
});

test("webgpu profiler: every dispatch between profileBegin and profileEnd is timed under its pipeline key, past one full query set, and the results equal an unprofiled run", async () => {
  const be = await gpuBackend();
  const a = randomValues(256, "prof-a", 1), b = randomValues(256, "prof-b", 1);
  const run = async (profile: boolean) => {
    const x = bufOf(be, a), y = bufOf(be, b), o = be.alloc(256);
    if (profile) be.profileBegin();
    for (let i = 0; i < 1500; i++) { // 3000 dispatches: the 2048-pair query set is read and reused
      be.add(o, x, y, 256);
      be.add(x, o, y, 256);
    }
    const times = profile ? await be.profileEnd() : undefined;
    return { out: await be.read(x), times };
  };
  const plain = await run(false), timed = await run(true);
  assert.ok(sameBits(plain.out, timed.out), "profiling changed the results");
  const keys = [...timed.times!];
  assert.equal(keys.reduce((s, [, v]) => s + v.count, 0), 3000, `dispatches timed: ${JSON.stringify(keys)}`);
  assert.ok(keys.every(([, v]) => v.us > 0 && Number.isFinite(v.us)));
  await assert.rejects(be.profileEnd(), /not begun/);
});

test("webgpu close() right after uploads through mapped staging (their buffers still being mapped again) ends cleanly", async () => {
  await gpuDevice();
  const gpu = await openGpuDevice(); // a device of its own: close() destroys it
  assert.ok(!("reason" in gpu));
  const be = new WebGpuBackend(gpu);
  const w = randomWeight(MATMUL_FORMATS_ALL.find((f) => f.name === "Q8_0")!, 256, 64, "close-w");
  const a = be.allocWeights(4 * tensorBytes(w));
  for (let i = 0; i < 4; i++) a.write(i * tensorBytes(w), w.bytes);
  const got = await runMatmul(be, a.view(w, 0), randomValues(256, "close-x"), { k: 256, n: 64, t: 1 }); // submits: the staging maps again
  assert.ok(got.every(Number.isFinite));
  a.write(0, w.bytes); // staged, not yet submitted
  be.close(); // Dawn aborts the process if a map is left unsettled when its buffer goes
  await new Promise((r) => setTimeout(r, 50));
});

test("webgpu gated DeltaNet ops (conv1d + SiLU with its rolling state, L2 norm, gates, the delta rule with both head maps, gated RMS norm) match the scalar reference", async () => {
  const scalar = new ScalarBackend(), be = await gpuBackend();
  const C = 96, taps = 4, S = 16, nK = 2, nV = 4;
  const convW = { ...hostF32("blk.0.ssm_conv1d.weight", randomValues(C * taps, "conv-w")), shape: [taps, C] };
  const dtB = hostF32("blk.0.ssm_dt.bias", randomValues(nV, "dt")), aW = hostF32("blk.0.ssm_a", Float32Array.from(randomValues(nV, "a"), (v) => -Math.exp(v)));
  const normW = hostF32("blk.0.ssm_norm.weight", randomValues(S, "gn"));
  const run = async (b: Backend) => {
    const out: Float32Array[] = [];
    const state = bufOf(b, randomValues(C * (taps - 1), "conv-st"));
    const cw = b.upload(convW);
    for (const T of [5, 1]) { // a prompt, then a decode step from the state it left
      const o = b.alloc(T * C);
      b.convSilu(o, bufOf(b, randomValues(T * C, `conv-x-${T}`, 2)), state, cw, T, C);
      out.push(await b.read(o));
    }
    out.push(await b.read(state));
    const T = 3;
    const l2 = bufOf(b, randomValues(T * nK * S, "l2", 2)), l2o = b.alloc(T * nK * S);
    b.l2Norm(l2o, l2, 1e-6, S, T * nK);
    b.l2Norm(l2, l2, 1e-6, S, T * nK);
    out.push(await b.read(l2o), await b.read(l2));
    const alpha = bufOf(b, randomValues(T * nV, "alpha", 3)), betaRaw = bufOf(b, randomValues(T * nV, "beta", 3));
    b.deltaGates(alpha, betaRaw, alpha, betaRaw, b.upload(dtB), b.upload(aW), nV, T);
    out.push(await b.read(alpha), await b.read(betaRaw));
    for (const kvMap of ["interleave", "tile"] as const) {
      const q = bufOf(b, randomValues(T * nK * S, "dq", 1)), k = bufOf(b, randomValues(T * nK * S, "dk", 1)), v = bufOf(b, randomValues(T * nV * S, "dv", 1));
      const st = bufOf(b, randomValues(nV * S * S, "dst", 1)), next = b.alloc(nV * S * S), o = b.alloc(T * nV * S);
      b.gatedDeltaNet(o, q, k, v, alpha, betaRaw, st, next, { nTokens: T, nHeadK: nK, nHeadV: nV, headDim: S, kvMap });
      out.push(await b.read(o), await b.read(next), await b.read(st)); // st unchanged
      b.gatedDeltaNet(o, q, k, v, alpha, betaRaw, st, st, { nTokens: T, nHeadK: nK, nHeadV: nV, headDim: S, kvMap }); // in place
      out.push(await b.read(st));
    }
    const x = bufOf(b, randomValues(T * nV * S, "gx", 2)), gate = bufOf(b, randomValues(T * nV * S, "gz", 3)), go = b.alloc(T * nV * S);
    b.rmsNormGated(go, x, b.upload(normW), gate, 1e-6, S, T * nV);
    out.push(await b.read(go));
    return out;
  };
  const [got, want] = [await run(be), await run(scalar)];
  got.forEach((g, i) => {
    const e = nmse(g, want[i]);
    assert.ok(e < TOL_ATTN, `output ${i}: nmse ${e.toExponential(2)}`);
  });
});

test("webgpu ops refuse bad weights and shapes with errors naming the op and the weight, before recording anything", async () => {
  const b = await gpuBackend();
  const f32w = (name: string, n: number, shape = [n]) => b.upload({ ...hostF32(name, randomValues(n, name)), shape });
  const q8 = b.upload({ ...randomWeight(MATMUL_FORMATS_ALL.find((f) => f.name === "Q8_0")!, 64, 4, "conv-q8"), name: "blk.0.ssm_conv1d.weight" });
  const buf = (n: number) => bufOf(b, randomValues(n, `g${n}`));
  const d0 = b.counters.dispatches; // after the Q8_0 upload's repack
  const C = 8;
  assert.throws(() => b.convSilu(b.alloc(C), buf(C), buf(3 * C), q8, 1, C), /webgpu convSilu: weight 'blk\.0\.ssm_conv1d\.weight' must be F32/);
  assert.throws(() => b.convSilu(b.alloc(C), buf(C), buf(3 * C), f32w("blk.0.conv", 4 * 6, [4, 6]), 1, C), /convSilu: weight 'blk\.0\.conv' has 6 channels of 4 taps, expected 8 of at least 2/);
  const x = buf(C);
  assert.throws(() => b.convSilu(x, x, buf(3 * C), f32w("blk.0.conv", 4 * C, [4, C]), 1, C), /webgpu convSilu: out may not alias x/);
  assert.throws(() => b.convSilu(b.alloc(C), buf(C), buf(3 * C), f32w("blk.0.conv", 4 * C, [4, C]), 2, C), /convSilu: 2 tokens of 8 channels overrun its buffers/);
  assert.throws(() => b.rmsNormGated(b.alloc(16), buf(16), f32w("blk.0.ssm_norm.weight", 8), buf(16), 1e-6, 16, 1), /webgpu rmsNormGated: weight 'blk\.0\.ssm_norm\.weight' must be F32 of 16 values/);
  assert.throws(() => b.rmsNormGated(b.alloc(16), buf(16), f32w("n", 16), buf(8), 1e-6, 16, 1), /rmsNormGated: the gate holds 8 values, needs 16/);
  const g = buf(16);
  assert.throws(() => b.rmsNormGated(g, buf(16), f32w("n", 16), g, 1e-6, 16, 1), /webgpu rmsNormGated: out may not alias the gate/);
  assert.throws(() => b.deltaGates(buf(4), buf(4), buf(4), buf(4), f32w("blk.0.ssm_dt.bias", 2), f32w("blk.0.ssm_a", 4), 4, 1), /webgpu deltaGates: 'blk\.0\.ssm_dt\.bias' and 'blk\.0\.ssm_a' must be F32 of 4 values/);
  const gb = buf(4);
  assert.throws(() => b.deltaGates(gb, gb, buf(4), buf(4), f32w("dt", 4), f32w("a", 4), 4, 1), /webgpu deltaGates: g and beta are one buffer/);
  const dn = { nTokens: 1, nHeadK: 3, nHeadV: 4, headDim: 4, kvMap: "tile" as const };
  assert.throws(() => b.gatedDeltaNet(b.alloc(16), buf(12), buf(12), buf(16), buf(4), buf(4), buf(64), b.alloc(64), dn), /gatedDeltaNet: 4 value heads not a multiple of 3 key heads/);
  assert.throws(() => b.gatedDeltaNet(b.alloc(16), buf(8), buf(8), buf(16), buf(4), buf(4), buf(64), b.alloc(64), { ...dn, nTokens: 2, nHeadK: 2 }), /gatedDeltaNet: 2 tokens overrun its buffers/);
  const heads = b.upload({ ...hostF32("blk.0.attn_k_b.weight", randomValues(2 * 8 * 40, "kb")), shape: [40, 8, 2] });
  assert.throws(() => b.matmulHeads(b.alloc(16), heads, buf(80), 1), /webgpu matmulHeads: 'blk\.0\.attn_k_b\.weight' rows of 40 values are not whole units of 32/);
  const att = { nTokens: 1, startPos: 0, nHead: 4, nHeadKv: 2, headDim: 8, scale: 1 };
  assert.throws(() => b.attention(b.alloc(32), buf(32), buf(16), buf(16), { ...att, vDim: 9 }), /attention: vDim 9 not in \[1, headDim 8\]/);
  assert.throws(() => b.attention(b.alloc(32), buf(32), buf(16), buf(16), { ...att, window: 0 }), /attention: window 0 is not a positive integer/);
  assert.throws(() => b.attention(b.alloc(32), buf(32), buf(16), buf(16), { ...att, sinks: new Float32Array(3) }), /attention: 3 sinks for 4 heads/);
  assert.throws(() => b.attention(b.alloc(32), buf(32), buf(16), buf(16), { ...att, sinks: f32w("blk.0.attn_sinks.weight", 2) }), /webgpu attention: sinks 'blk\.0\.attn_sinks\.weight' must be F32 of 4 values/);
  assert.throws(() => b.attention(b.alloc(32), buf(32), buf(16), buf(16), { ...att, nHeadKv: 3 }), /attention: 4 heads are not a multiple of 3 KV heads/);
  assert.equal(b.counters.dispatches, d0, "nothing was recorded");
});

test("intDot: a decode norm quantises its output in its own dispatch, the same words as quant_x, until something writes it (write, an op, a copy)", async () => {
  const fused = await gpuBackend(), apart = await gpuBackend();
  [fused.intDot, apart.intDot, apart.fuseQuantX] = [true, true, false];
  const K = 256, N = 40;
  const ws = [Q4_K_FORMAT, MATMUL_FORMATS.find((f) => f.name === "Q8_0")!].map((fmt) => randomWeight(fmt, K, N, `qn-${fmt.name}`));
  const nw = hostF32("blk.0.ffn_norm.weight", randomValues(K, "qn-w", 2));
  const x0 = randomValues(K, "qn-x", 2), y0 = randomValues(K, "qn-y", 2), z0 = randomValues(K, "qn-z", 2);
  const run = async (be: WebGpuBackend) => {
    const [x, y, h, z] = [x0, y0, new Float32Array(K), z0].map((v) => bufOf(be, v));
    const w = be.upload(nw), wq = ws.map((hw) => be.upload(hw));
    const outs: Buf[] = [], quantX: number[] = [];
    const mv = () => {
      const d0 = be.counters.dispatches;
      for (const W of wq) {
        const o = be.alloc(N);
        be.matmul(o, W, h, 1);
        outs.push(o);
      }
      quantX.push(be.counters.dispatches - d0 - wq.length);
    };
    be.addRmsNorm(x, y, h, w, 1e-6, K, 1);
    mv(); // the norm's words
    be.write(h, z0.subarray(0, 64), 32);
    mv(); // written since: quant_x again
    be.addRmsNorm(x, y, h, w, 1e-6, K, 1);
    be.add(h, h, z, K);
    mv(); // an op wrote h
    be.addRmsNorm(x, y, h, w, 1e-6, K, 1);
    be.copy(h, z, { rows: 1, n: 16, src: { offset: 0, stride: K }, dst: { offset: 5, stride: K } });
    mv(); // a copy wrote h
    return { got: await be.readMany(outs), quantX };
  };
  const [a, b] = [await run(fused), await run(apart)];
  a.got.forEach((v, i) => assert.ok(sameBits(v, b.got[i]), `matvec ${i}: the norm's quantised words differ from quant_x's`));
  assert.deepEqual(a.quantX, [0, 2, 2, 2], "quant_x runs (once a matvec) only where h was written after the norm");
  assert.deepEqual(b.quantX, [2, 2, 2, 2]);
});

test("mapDelay: a read back that sleeps before it maps returns what the plain read does", async () => {
  const slept = await gpuBackend(), plain = await gpuBackend();
  slept.mapDelay = 1000; // any read that waited 1 µs or more sleeps (up to 50 ms) before the next of its size maps
  const x = randomValues(4096, "md-x", 2), y = randomValues(4096, "md-y", 2);
  const run = async (be: WebGpuBackend) => {
    const a = bufOf(be, x), b = bufOf(be, y), out: Float32Array[] = [];
    for (let i = 0; i < 3; i++) {
      be.add(a, a, b, 4096);
      out.push(await be.read(a));
    }
    return out;
  };
  const t0 = performance.now();
  const got = await run(slept);
  const ms = performance.now() - t0;
  const want = await run(plain);
  got.forEach((v, i) => assert.ok(sameBits(v, want[i]), `read ${i} differs`));
  assert.ok(ms >= 100, `the second and third reads sleep 50 ms each: ${ms.toFixed(0)} ms in all`);
});
