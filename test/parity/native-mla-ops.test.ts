// The native kernels of the DeepSeek (MLA) and Qwen3-Next / Qwen3.5 (gated DeltaNet) forward passes held to the
// scalar reference on every kernel set this CPU runs, 1 and 2 threads agreeing bit for bit: attention with narrow V
// heads and f16 probabilities, per-head matmul, causal conv1d + SiLU with its rolling state, L2 norm, gated RMSNorm,
// sigmoid gate, delta-rule gates and the f16-rounding row copy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { NativeBackend } from "../../src/backends/cpu/native.js";
import type { AttentionParams, Backend, CopyParams, HostWeight } from "../../src/backends/backend.js";
import { F16, F32, Q8_0, Q4_K, type QuantFormat } from "../../src/quant/index.js";
import { needNative, randomValues, randomWeight, bufOf, everyKernelLevel, MATMUL_TOL } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";

const TOL_ATTN = 1e-5; // f32 dot products and V sums vs the reference's f64; an f16 probability may round the other way
const TOL_F64 = 1e-12; // f64 maths like the reference: equal but for the last bit of an exp

const f32w = (name: string, shape: number[], values: Float32Array): HostWeight => {
  const bytes = new Uint8Array(values.length * 4 + 1).subarray(1); // odd offset: the addon must not assume alignment
  bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.length * 4));
  return { name, type: F32.type, shape, bytes };
};

/** Runs `fn` on the scalar reference, then on every native kernel set (1 and 2 threads), checking nmse <= tol. */
async function parity(what: string, tol: number, fn: (be: Backend) => Promise<Float32Array>): Promise<number> {
  const a = needNative();
  const ref = await fn(new ScalarBackend());
  let worst = 0;
  await everyKernelLevel(a, (be) => fn(be), (got, level) => {
    assert.equal(got.length, ref.length);
    const e = tol === 0 ? (sameBits(got, ref) ? 0 : Infinity) : nmse(got, ref);
    worst = Math.max(worst, e);
    assert.ok(e <= tol, `${what} ${level}: nmse ${e.toExponential(2)} > ${tol}`);
  });
  return worst;
}

test("native attention with narrow V heads and f16 probabilities (MLA) matches the scalar backend", async (t) => {
  let worst = 0;
  const mla = { nHead: 16, nHeadKv: 1, headDim: 576, vDim: 512, f16Probs: true, scale: 0.07 };
  const cases: AttentionParams[] = [
    { ...mla, nTokens: 1, startPos: 0 },
    { ...mla, nTokens: 1, startPos: 300 }, // decode: several key chunks
    { ...mla, nTokens: 17, startPos: 5 }, // prefill: causal ends inside chunks
    { ...mla, nTokens: 3, startPos: 70, f16Probs: false },
    { nTokens: 5, startPos: 9, nHead: 8, nHeadKv: 2, headDim: 64, vDim: 44, scale: 0.125 }, // GQA, V width not a multiple of 8
    { nTokens: 4, startPos: 3, nHead: 4, nHeadKv: 4, headDim: 72, scale: 0.1, f16Probs: true }, // V = the whole head
  ];
  for (const p of cases) {
    const vd = p.vDim ?? p.headDim, kvDim = p.nHeadKv * p.headDim, nPos = p.startPos + p.nTokens;
    const q = randomValues(p.nTokens * p.nHead * p.headDim, `mq-${p.nTokens}-${p.headDim}`, 1);
    const kv = randomValues(nPos * kvDim, `mkv-${nPos}-${kvDim}`, 1);
    const e = await parity(JSON.stringify(p), TOL_ATTN, async (be) => {
      const out = be.alloc(p.nTokens * p.nHead * vd), cache = bufOf(be, kv);
      be.attention(out, bufOf(be, q), cache, p.vDim === undefined ? bufOf(be, kv) : cache, p); // MLA: V is a view of the K rows
      return be.read(out);
    });
    worst = Math.max(worst, e);
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("native matmulHeads (one pool run over every head) matches the scalar backend", async (t) => {
  let worst = 0;
  const cases: [QuantFormat, number, number, number, number][] = [
    [Q8_0, 128, 512, 16, 1], // DeepSeek attn_k_b: nope 128 -> latent 512 per head
    [Q8_0, 512, 128, 16, 3], // attn_v_b, a few tokens
    [F16, 64, 40, 5, 2],
    [F32, 32, 24, 3, 4],
    [Q4_K, 256, 16, 4, 1],
  ];
  for (const [f, k, n, h, T] of cases) {
    const w = randomWeight(f, k, n * h, `mh-${f.name}-${k}-${n}`);
    const x = randomValues(T * h * k, `mhx-${k}-${h}-${T}`, 2);
    const e = await parity(`${f.name} [${k}, ${n}, ${h}] T ${T}`, MATMUL_TOL[f.name], async (be) => {
      const wt = be.upload({ ...w, shape: [k, n, h] }), out = be.alloc(T * h * n);
      be.matmulHeads(out, wt, bufOf(be, x), T);
      return be.read(out);
    });
    worst = Math.max(worst, e);
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("native convSilu matches the scalar backend, outputs and rolled state, decode and batch", async (t) => {
  let worst = 0;
  for (const [C, T, taps] of [[8192, 1, 4], [300, 5, 4], [64, 2, 3], [17, 7, 4]]) {
    const w = randomValues(C * taps, `cw-${C}-${taps}`), x = randomValues(T * C, `cx-${C}-${T}`, 2), s0 = randomValues(C * (taps - 1), `cs-${C}`, 2);
    const e = await parity(`C ${C} T ${T} taps ${taps}`, TOL_F64, async (be) => {
      const out = be.alloc(T * C), st = bufOf(be, s0);
      be.convSilu(out, bufOf(be, x), st, be.upload(f32w("ssm_conv1d", [taps, C], w)), T, C);
      return Float32Array.from([...(await be.read(out)), ...(await be.read(st))]);
    });
    worst = Math.max(worst, e);
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("native l2Norm, rmsNormGated, sigmoidMul and deltaGates match the scalar backend (in place too)", async (t) => {
  let worst = 0;
  for (const [len, rows] of [[128, 32], [128, 1], [32, 200], [45, 3]]) {
    const x = randomValues(len * rows, `nx-${len}-${rows}`, 3), z = randomValues(len * rows, `nz-${len}-${rows}`, 3), w = randomValues(len, `nw-${len}`);
    worst = Math.max(worst, await parity(`l2Norm ${len}x${rows}`, TOL_F64, async (be) => {
      const b = bufOf(be, x);
      be.l2Norm(b, b, 1e-6, len, rows);
      return be.read(b);
    }));
    worst = Math.max(worst, await parity(`rmsNormGated ${len}x${rows}`, TOL_F64, async (be) => {
      const out = be.alloc(len * rows);
      be.rmsNormGated(out, bufOf(be, x), be.upload(f32w("ssm_norm", [len], w)), bufOf(be, z), 1e-6, len, rows);
      return be.read(out);
    }));
    worst = Math.max(worst, await parity(`sigmoidMul ${len * rows}`, TOL_F64, async (be) => {
      const b = bufOf(be, x);
      be.sigmoidMul(b, b, bufOf(be, z), len * rows);
      return be.read(b);
    }));
  }
  for (const [nHead, rows] of [[32, 1], [8, 7]]) {
    const alpha = randomValues(nHead * rows, `ga-${nHead}`, 4), br = randomValues(nHead * rows, `gb-${nHead}`, 4);
    const dt = randomValues(nHead, `gdt-${nHead}`, 2), a = randomValues(nHead, `gA-${nHead}`, 1).map((v) => -Math.exp(v));
    dt[0] = 30; // softplus past ggml's threshold: linear
    worst = Math.max(worst, await parity(`deltaGates ${nHead}x${rows}`, TOL_F64, async (be) => {
      const g = bufOf(be, alpha), beta = bufOf(be, br);
      be.deltaGates(g, beta, g, beta, be.upload(f32w("ssm_dt.bias", [nHead], dt)), be.upload(f32w("ssm_a", [nHead], a)), nHead, rows);
      return Float32Array.from([...(await be.read(g)), ...(await be.read(beta))]);
    }));
  }
  t.diagnostic(`worst nmse ${worst.toExponential(2)}`);
});

test("native copy (strided rows, rounded to f16 on the way) equals the scalar backend bit for bit", async () => {
  const x = randomValues(40 * 96, "copy-x", 70_000); // past f16's range: infinities; tiny values: subnormals
  for (let i = 0; i < x.length; i += 7) x[i] *= 1e-9;
  const cases: CopyParams[] = [
    { rows: 40, n: 64, src: { offset: 32, stride: 96 }, dst: { offset: 8, stride: 72 }, roundF16: true },
    { rows: 40, n: 96, src: { offset: 0, stride: 96 }, dst: { offset: 0, stride: 100 } },
    { rows: 1, n: 5, src: { offset: 3, stride: 0 }, dst: { offset: 1, stride: 0 }, roundF16: true },
  ];
  for (const p of cases) await parity(JSON.stringify(p), 0, async (be) => {
    const out = bufOf(be, randomValues(40 * 100, "copy-o"));
    be.copy(out, bufOf(be, x), p);
    return be.read(out);
  });
  const be = new NativeBackend({ threads: 1 });
  assert.throws(() => be.copy(be.alloc(10), be.alloc(10), { rows: 2, n: 7, src: { offset: 0, stride: 4 }, dst: { offset: 0, stride: 4 } }), RangeError);
});
