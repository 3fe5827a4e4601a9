// The inputs the gpt-oss kernel parity tests (native and wasm) hold to the scalar reference: attention with sinks
// and a sliding window (decode and prefill, as SlidingWindowState hands them over, and wider caches than the window),
// the clamped SwiGLU past its limits, bias rows, f16-rounding copies and the experts' scatter-add; `tol` as in mla-cases.ts (0: the same bits). A fast backend must
// run each in its own kernel: its reference refuses the op.
import type { AttentionParams, Backend, CopyParams } from "../../src/backends/backend.js";
import { bufOf, randomValues } from "./parity.js";
import { f32w, once, TOL_ATTN, TOL_F64, type OpCase } from "./mla-cases.js";

/**
 * be seen through a view whose reference backend refuses `op`: a case then holds the backend's own kernel to the
 * reference, never the reference it could hand the op over to. The scalar backend (no reference) is itself.
 */
function ownKernel(be: Backend, op: string): Backend {
  const ref = (be as unknown as { ref?: object }).ref;
  if (!ref) return be;
  const refuse = () => {
    throw new Error(`${be.name} handed ${op} over to the scalar reference`);
  };
  return Object.create(be, { ref: { value: Object.create(ref, { [op]: { value: refuse } }) } }) as Backend;
}

function attentionCases(): OpCase[] {
  // gpt-oss-20b's heads (64 query heads over 8 kv heads of 64), fewer of them; f16 probabilities as its f16 cache runs.
  const g = { nHead: 8, nHeadKv: 2, headDim: 64, scale: 0.125, f16Probs: true };
  const cases: [AttentionParams, "weight" | "array" | "none"][] = [
    [{ ...g, nTokens: 1, startPos: 0, window: 128 }, "weight"],
    [{ ...g, nTokens: 1, startPos: 127, window: 128 }, "weight"], // decode over a full window (the state's window - 1 held rows)
    [{ ...g, nTokens: 1, startPos: 300, window: 128 }, "array"], // a cache wider than the window: leading key chunks masked
    [{ ...g, nTokens: 1, startPos: 300 }, "weight"], // a full-attention layer: sinks alone, several key chunks
    [{ ...g, nTokens: 40, startPos: 7, window: 16 }, "weight"], // prefill: the window slides inside the batch
    [{ ...g, nTokens: 9, startPos: 0, window: 1 }, "array"], // each token sees itself only
    [{ ...g, nTokens: 6, startPos: 20, window: 8, f16Probs: false }, "weight"],
    [{ ...g, nTokens: 5, startPos: 3, window: 4 }, "none"], // a window without sinks
    [{ ...g, nTokens: 3, startPos: 50, nHeadKv: 8, headDim: 72, window: 30 }, "weight"], // no GQA, a head width not a multiple of 16
    // A long full-attention cache, last: staging it grows wasm memory after the sinks weight was placed in it.
    [{ ...g, nTokens: 1, startPos: 6000 }, "weight"],
  ];
  return cases.map(([p, sinkKind]) => {
    const kvDim = p.nHeadKv * p.headDim, nPos = p.startPos + p.nTokens;
    const inputs = once(() => {
      const sinks = randomValues(p.nHead, `gs-${p.nHead}`, 3);
      sinks[1] = 40; // a sink that takes nearly all the mass
      sinks[2] = -40; // one that takes none
      return { q: randomValues(p.nTokens * p.nHead * p.headDim, `gq-${p.nTokens}-${p.headDim}`, 2), k: randomValues(nPos * kvDim, `gk-${nPos}-${kvDim}`, 2),
        v: randomValues(nPos * kvDim, `gv-${nPos}-${kvDim}`, 1), sinks };
    });
    return { op: "attention", label: `sinks ${sinkKind} ${JSON.stringify(p)}`, tol: TOL_ATTN, async run(backend: Backend) {
      const be = ownKernel(backend, "attention"), { q, k, v, sinks } = inputs(), out = be.alloc(p.nTokens * p.nHead * p.headDim);
      const s = sinkKind === "none" ? undefined : sinkKind === "array" ? sinks : be.upload(f32w("attn_sinks", [p.nHead], sinks));
      be.attention(out, bufOf(be, q), bufOf(be, k), bufOf(be, v), { ...p, sinks: s });
      return be.read(out);
    } };
  });
}

function swigluOaiCases(): OpCase[] {
  return [1, 7, 2880 * 4 + 3].map((n) => ({
    op: "swigluOai", label: `n ${n}`, tol: TOL_F64,
    async run(backend) {
      const be = ownKernel(backend, "swigluOai");
      const g = bufOf(be, randomValues(n, `og-${n}`, 12)), u = bufOf(be, randomValues(n, `ou-${n}`, 12)); // past ±7: both clamps
      be.swigluOai(g, g, u, n, 1.702, 7);
      return be.read(g);
    },
  }));
}

function addRowsCases(): OpCase[] {
  return [[2880, 1], [45, 3], [64, 33]].map(([len, rows]) => ({
    op: "addRows", label: `${len}x${rows}`, tol: 0,
    async run(backend) {
      const be = ownKernel(backend, "addRows");
      const out = bufOf(be, randomValues(len * rows, `ar-${len}-${rows}`, 4));
      be.addRows(out, be.upload(f32w("bias", [len], randomValues(len, `ab-${len}`))), len, rows); // a bias at an odd byte offset
      return be.read(out);
    },
  }));
}

/** The f16 rounding of gpt-oss's cache stores and of q before K·q (contiguous), and strided rows; past f16's range too. */
function roundingCopyCases(): OpCase[] {
  const cases: CopyParams[] = [
    { rows: 1, n: 17 * 512, src: { offset: 0, stride: 0 }, dst: { offset: 3 * 512, stride: 0 }, roundF16: true },
    { rows: 9, n: 64, src: { offset: 5, stride: 130 }, dst: { offset: 1, stride: 70 }, roundF16: true },
  ];
  return cases.map((p) => ({
    op: "copy", label: `rounding ${JSON.stringify(p)}`, tol: 0,
    async run(backend) {
      const be = ownKernel(backend, "copy"), x = randomValues(20 * 512, "rc-x", 70_000);
      for (let i = 0; i < x.length; i += 5) x[i] *= 1e-9; // f16 subnormals
      const out = bufOf(be, randomValues(20 * 512, "rc-o"));
      be.copy(out, bufOf(be, x), p);
      return be.read(out);
    },
  }));
}

/** The experts' weighted scatter-add into the layer output (rows in any order, as a bucket lists its tokens). */
function scatterAddCases(): OpCase[] {
  return [[2880, [0]], [2880, [5, 1, 3]], [45, [2, 0]]].map(([len, rows]) => {
    const n = len as number, r = Int32Array.from(rows as number[]);
    // wasm sums in f64 as the reference (the same bits); native in f32 (the order moeFfn's own scatter keeps).
    return { op: "scatterAddRows", label: `${n} x rows [${r}]`, tol: TOL_F64, async run(backend: Backend) {
      const be = ownKernel(backend, "scatterAddRows"), out = bufOf(be, randomValues(6 * n, `sa-o-${n}`, 3));
      be.scatterAddRows(out, bufOf(be, randomValues(r.length * n, `sa-x-${n}`)), r, randomValues(r.length, "sa-s"), n);
      return be.read(out);
    } };
  });
}

/** Every case, by op. */
export function gptossOpCases(): OpCase[] {
  return [...attentionCases(), ...swigluOaiCases(), ...addRowsCases(), ...roundingCopyCases(), ...scatterAddCases()];
}
