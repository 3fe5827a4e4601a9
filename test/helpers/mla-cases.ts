// The inputs the MLA / gated-DeltaNet kernel parity tests (native and wasm) hold to the scalar reference: each case
// runs one op on a backend and reads the result back; `tol` is the normalised MSE allowed (0: the same bits).
import type { AttentionParams, Backend, CopyParams, DeltaNetParams, HostWeight, RopeOptions } from "../../src/backends/backend.js";
import { F16, F32, Q8_0, Q4_K, type QuantFormat } from "../../src/quant/index.js";
import { randomValues, randomWeight, bufOf, MATMUL_TOL } from "./parity.js";

export interface OpCase {
  op: string;
  label: string;
  tol: number;
  run(be: Backend): Promise<Float32Array>;
}

export const TOL_ATTN = 1e-5; // f32 dot products and V sums vs the reference's f64; an f16 probability may round the other way
export const TOL_F64 = 1e-12; // f64 maths like the reference: equal but for the last bit of an exp
const TOL_DELTA = 1e-10; // f32 state rounded at the same points as the reference, f64 sums

/** F32 weight bytes at an odd offset (kernels must not assume alignment). */
export const f32w = (name: string, shape: number[], values: Float32Array): HostWeight => {
  const bytes = new Uint8Array(values.length * 4 + 1).subarray(1);
  bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.length * 4));
  return { name, type: F32.type, shape, bytes };
};

async function cat(...bs: Promise<Float32Array>[]): Promise<Float32Array> {
  const parts = await Promise.all(bs), out = new Float32Array(parts.reduce((a, b) => a + b.length, 0));
  let at = 0;
  for (const b of parts) out.set(b, (at += b.length) - b.length);
  return out;
}

/** fn's value, computed on the first call only: a case's inputs are made once for every backend it runs on. */
export function once<T>(fn: () => T): () => T {
  let v: { t: T } | undefined;
  return () => (v ??= { t: fn() }).t;
}

function attentionCases(): OpCase[] {
  const mla = { nHead: 16, nHeadKv: 1, headDim: 576, vDim: 512, f16Probs: true, scale: 0.07 };
  const cases: AttentionParams[] = [
    { ...mla, nTokens: 1, startPos: 0 },
    { ...mla, nTokens: 1, startPos: 300 }, // decode: several key chunks
    { ...mla, nTokens: 17, startPos: 5 }, // prefill: causal ends inside chunks
    { ...mla, nTokens: 3, startPos: 70, f16Probs: false },
    { nTokens: 5, startPos: 9, nHead: 8, nHeadKv: 2, headDim: 64, vDim: 44, scale: 0.125 }, // GQA, V width not a multiple of 8
    { nTokens: 4, startPos: 3, nHead: 4, nHeadKv: 4, headDim: 72, scale: 0.1, f16Probs: true }, // V = the whole head
  ];
  return cases.map((p) => {
    const vd = p.vDim ?? p.headDim, kvDim = p.nHeadKv * p.headDim, nPos = p.startPos + p.nTokens;
    const inputs = once(() => [randomValues(p.nTokens * p.nHead * p.headDim, `mq-${p.nTokens}-${p.headDim}`, 1), randomValues(nPos * kvDim, `mkv-${nPos}-${kvDim}`, 1)]);
    return { op: "attention", label: JSON.stringify(p), tol: TOL_ATTN, async run(be: Backend) {
      const [q, kv] = inputs();
      const out = be.alloc(p.nTokens * p.nHead * vd), cache = bufOf(be, kv);
      be.attention(out, bufOf(be, q), cache, p.vDim === undefined ? bufOf(be, kv) : cache, p); // MLA: V is a view of the K rows
      return be.read(out);
    } };
  });
}

function matmulHeadsCases(): OpCase[] {
  const cases: [QuantFormat, number, number, number, number][] = [
    [Q8_0, 128, 512, 16, 1], // DeepSeek attn_k_b: nope 128 -> latent 512 per head
    [Q8_0, 512, 128, 16, 2], // attn_v_b, two tokens
    [F16, 64, 40, 5, 2],
    [F32, 32, 24, 3, 4],
    [Q4_K, 256, 16, 4, 1],
  ];
  return cases.map(([f, k, n, h, T]) => {
    const inputs = once(() => ({ w: randomWeight(f, k, n * h, `mh-${f.name}-${k}-${n}`), x: randomValues(T * h * k, `mhx-${k}-${h}-${T}`, 2) }));
    return { op: "matmulHeads", label: `${f.name} [${k}, ${n}, ${h}] T ${T}`, tol: MATMUL_TOL[f.name], async run(be: Backend) {
      const { w, x } = inputs(), out = be.alloc(T * h * n);
      be.matmulHeads(out, be.upload({ ...w, shape: [k, n, h] }), bufOf(be, x), T);
      return be.read(out);
    } };
  });
}

function convCases(): OpCase[] {
  return [[8192, 1, 4], [300, 5, 4], [64, 2, 3], [17, 7, 4]].map(([C, T, taps]) => ({
    op: "convSilu", label: `C ${C} T ${T} taps ${taps}`, tol: TOL_F64,
    async run(be) {
      const w = randomValues(C * taps, `cw-${C}-${taps}`), x = randomValues(T * C, `cx-${C}-${T}`, 2);
      const out = be.alloc(T * C), st = bufOf(be, randomValues(C * (taps - 1), `cs-${C}`, 2));
      be.convSilu(out, bufOf(be, x), st, be.upload(f32w("ssm_conv1d", [taps, C], w)), T, C);
      return cat(be.read(out), be.read(st));
    },
  }));
}

function normCases(): OpCase[] {
  return [[128, 32], [128, 1], [32, 200], [45, 3]].flatMap(([len, rows]): OpCase[] => {
    const x = randomValues(len * rows, `nx-${len}-${rows}`, 3), z = randomValues(len * rows, `nz-${len}-${rows}`, 3), w = randomValues(len, `nw-${len}`);
    const label = `${len}x${rows}`;
    return [
      { op: "l2Norm", label, tol: TOL_F64, async run(be) {
        const b = bufOf(be, x);
        be.l2Norm(b, b, 1e-6, len, rows);
        return be.read(b);
      } },
      { op: "rmsNormGated", label, tol: TOL_F64, async run(be) {
        const out = be.alloc(len * rows);
        be.rmsNormGated(out, bufOf(be, x), be.upload(f32w("ssm_norm", [len], w)), bufOf(be, z), 1e-6, len, rows);
        return be.read(out);
      } },
      { op: "sigmoidMul", label, tol: TOL_F64, async run(be) {
        const b = bufOf(be, x);
        be.sigmoidMul(b, b, bufOf(be, z), len * rows);
        return be.read(b);
      } },
    ];
  });
}

function gateCases(): OpCase[] {
  return [[32, 1], [8, 7]].map(([nHead, rows]) => ({
    op: "deltaGates", label: `${nHead}x${rows}`, tol: TOL_F64,
    async run(be) {
      const dt = randomValues(nHead, `gdt-${nHead}`, 2), a = randomValues(nHead, `gA-${nHead}`, 1).map((v) => -Math.exp(v));
      dt[0] = 30; // softplus past ggml's threshold: linear
      const g = bufOf(be, randomValues(nHead * rows, `ga-${nHead}`, 4)), beta = bufOf(be, randomValues(nHead * rows, `gb-${nHead}`, 4));
      be.deltaGates(g, beta, g, beta, be.upload(f32w("ssm_dt.bias", [nHead], dt)), be.upload(f32w("ssm_a", [nHead], a)), nHead, rows);
      return cat(be.read(g), be.read(beta));
    },
  }));
}

/** The delta rule from a nonzero state, L2-normed q and k as the model feeds them; in place or into another buffer. */
function deltaCases(): OpCase[] {
  const shapes: [number, number, number, number, DeltaNetParams["kvMap"], boolean][] = [
    [1, 2, 6, 16, "interleave", true], [5, 2, 6, 16, "tile", false], [3, 4, 8, 128, "tile", true], [1, 4, 16, 128, "interleave", false],
  ];
  return shapes.map(([T, nHeadK, nHeadV, S, kvMap, inPlace]) => {
    const inputs = once(() => {
      const seed = `${kvMap}-${T}-${nHeadV}-${S}`;
      const q = randomValues(T * nHeadK * S, `${seed}-q`), k = randomValues(T * nHeadK * S, `${seed}-k`), v = randomValues(T * nHeadV * S, `${seed}-v`, 2);
      for (const x of [q, k]) for (let r = 0; r < x.length; r += S) {
        const row = x.subarray(r, r + S), n = Math.hypot(...row);
        row.forEach((y, i) => (row[i] = y / n));
      }
      const g = randomValues(T * nHeadV, `${seed}-g`).map((x) => -Math.abs(x)), beta = randomValues(T * nHeadV, `${seed}-b`).map((x) => 1 / (1 + Math.exp(-x)));
      return { q, k, v, g, beta, s0: randomValues(nHeadV * S * S, `${seed}-s`, 0.3) };
    });
    return { op: "gatedDeltaNet", label: `T ${T} ${nHeadK}/${nHeadV} S ${S} ${kvMap}${inPlace ? " in place" : ""}`, tol: TOL_DELTA, async run(be: Backend) {
      const { q, k, v, g, beta, s0 } = inputs();
      const state = bufOf(be, s0), next = inPlace ? state : be.alloc(s0.length), out = be.alloc(T * nHeadV * S);
      be.gatedDeltaNet(out, bufOf(be, q), bufOf(be, k), bufOf(be, v), bufOf(be, g), bufOf(be, beta), state, next, { nTokens: T, nHeadK, nHeadV, headDim: S, kvMap });
      return cat(be.read(out), be.read(next), be.read(state)); // out of place: the input state unchanged
    } };
  });
}

function copyCases(): OpCase[] {
  const cases: CopyParams[] = [
    { rows: 40, n: 64, src: { offset: 32, stride: 96 }, dst: { offset: 8, stride: 72 }, roundF16: true },
    { rows: 40, n: 96, src: { offset: 0, stride: 96 }, dst: { offset: 0, stride: 100 } },
    { rows: 1, n: 5, src: { offset: 3, stride: 0 }, dst: { offset: 1, stride: 0 }, roundF16: true },
  ];
  return cases.map((p) => ({
    op: "copy", label: JSON.stringify(p), tol: 0,
    async run(be) {
      const x = randomValues(40 * 96, "copy-x", 70_000); // past f16's range: infinities; tiny values: subnormals
      for (let i = 0; i < x.length; i += 7) x[i] *= 1e-9;
      const out = bufOf(be, randomValues(40 * 100, "copy-o"));
      be.copy(out, bufOf(be, x), p);
      return be.read(out);
    },
  }));
}

/** DeepSeek's rope (NORM pairs over the last nRot values of a head, YaRN x40) and other variants: the reference's angles. */
function ropeCases(): OpCase[] {
  const yarn = { freqScale: 1 / 40, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1, nCtxOrig: 4096 };
  const cases: [number, number, number, number, RopeOptions][] = [
    [1, 16, 192, 64, { mode: "norm", offset: 128, yarn }], // q_pe of every head
    [5, 1, 576, 64, { mode: "norm", offset: 512, yarn }], // k_pe of the latent row
    [3, 4, 96, 32, { mode: "norm", yarn: { ...yarn, extFactor: 0 } }],
    [2, 3, 64, 16, { offset: 8 }], // NeoX pairs from an offset
  ];
  return cases.map(([T, nHead, hd, nRot, opts]) => ({
    op: "rope", label: `T ${T} heads ${nHead} hd ${hd} nRot ${nRot} ${JSON.stringify(opts)}`, tol: 0,
    async run(be) {
      const x = bufOf(be, randomValues(T * nHead * hd, `rope-${T}-${hd}`, 2));
      be.rope(x, Int32Array.from({ length: T }, (_, i) => 4090 + 3 * i), nHead, hd, 10000, nRot, opts);
      return be.read(x);
    },
  }));
}

/** Every case, by op. */
export function mlaOpCases(): OpCase[] {
  return [...ropeCases(), ...attentionCases(), ...matmulHeadsCases(), ...convCases(), ...normCases(), ...gateCases(), ...deltaCases(), ...copyCases()];
}
