// Comparing our logits with llama.cpp's at one position: relative RMSE within a tolerance, and the same argmax
// wherever llama.cpp's top-2 margin clearly exceeds the error measured there.
import assert from "node:assert/strict";
import { relRmse, top2 } from "./llama-parity.js";
import { getTensor } from "../../src/format/gguf/accessors.js";
import { openGGUF, readTensorBytes } from "../../src/format/gguf/read.js";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { llamaGreedy } from "./llama.js";

export { relRmse, top2 };

/** Asserts err <= tol and, where llama.cpp's margin exceeds 4x the absolute error, the same argmax; returns err and whether argmax was compared. */
export function checkLogitsRow(ours: Float32Array, theirs: Float32Array, tol: number, where: string): { err: number; compared: boolean } {
  const err = relRmse(ours, theirs);
  assert.ok(err <= tol, `${where}: relative RMSE ${err.toExponential(3)} > ${tol}`);
  const t = top2(theirs);
  const absErr = err * Math.sqrt(theirs.reduce((a, x) => a + x * x, 0) / theirs.length);
  const compared = t.margin > 4 * absErr;
  if (compared) assert.equal(top2(ours).id, t.id, `${where}: argmax differs with llama.cpp margin ${t.margin.toFixed(4)}`);
  return { err, compared };
}

/**
 * The closest call expert selection made for one token (llama.cpp's rounding can pick the other side of a call
 * this close): kept vs dropped group (groups scored by their two best), and k-th vs (k+1)-th eligible expert, on
 * the biased scores (softmax or sigmoid of the router logits, plus the selection bias if any).
 */
export function selectionMargin(logits: Float32Array, o: { gating: "softmax" | "sigmoid"; bias?: Float32Array; k: number; nGroup?: number; nGroupUsed?: number }): number {
  const max = Math.max(...logits);
  const z = o.gating === "softmax" ? Array.from(logits, (l) => Math.exp(l - max)).reduce((a, b) => a + b, 0) : 1;
  const score = (l: number) => (o.gating === "softmax" ? Math.exp(l - max) / z : 1 / (1 + Math.exp(-l)));
  const sel = Array.from(logits, (l, e) => score(l) + (o.bias ? o.bias[e] : 0));
  const desc = (v: number[]) => [...v].sort((a, b) => b - a);
  let margin = Infinity;
  let eligible = sel;
  const nGroup = o.nGroup ?? 0, used = o.nGroupUsed ?? nGroup;
  if (nGroup > 1) {
    const per = sel.length / nGroup;
    const gs = Array.from({ length: nGroup }, (_, g) => desc(sel.slice(g * per, (g + 1) * per)).slice(0, 2).reduce((a, b) => a + b, 0));
    const kept = desc(gs)[used - 1];
    margin = kept - desc(gs)[used];
    eligible = sel.filter((_, e) => gs[Math.floor(e / per)] >= kept);
  }
  const s = desc(eligible);
  return Math.min(margin, s[o.k - 1] - s[o.k]);
}

/** Each MoE layer's exp_probs_b from the file. */
export async function selectionBiases(path: string, nLayer: number): Promise<Map<number, Float32Array>> {
  const file = await openGGUF(path);
  try {
    const out = new Map<number, Float32Array>();
    for (let l = 0; l < nLayer; l++) {
      const t = file.tensors.find((x) => x.name === `blk.${l}.exp_probs_b.bias`);
      if (t) out.set(l, new Float32Array((await readTensorBytes(file, getTensor(file, t.name))).slice().buffer));
    }
    return out;
  } finally {
    await file.source.close();
  }
}

/**
 * Teacher-forced rows against llama.cpp's: row promptLen - 1 + i of `all` ([rows, V]) against ref[i], each within
 * tol with argmax compared where the margin allows (checkLogitsRow), except positions whose routing made a
 * selection closer than nearTie (margin[row]) and missed tol: those are counted, at most maxExempt.
 */
export function checkTeacherForced(all: Float32Array, ref: readonly Float32Array[], o: { promptLen: number; tol: number; margin: Float64Array; nearTie: number; maxExempt: number }): { worst: number; mean: number; compared: number; exempt: number } {
  const V = ref[0].length, N = ref.length;
  let worst = 0, sum = 0, compared = 0, exempt = 0;
  for (let i = 0; i < N; i++) {
    const p = o.promptLen - 1 + i;
    const ours = all.subarray(p * V, (p + 1) * V);
    if (relRmse(ours, ref[i]) > o.tol && o.margin[p] < o.nearTie) {
      exempt++;
      continue;
    }
    const c = checkLogitsRow(ours, ref[i], o.tol, `position ${i} (selection margin ${o.margin[p].toExponential(2)})`);
    worst = Math.max(worst, c.err);
    sum += c.err;
    if (c.compared) compared++;
  }
  assert.ok(exempt <= o.maxExempt, `${exempt} positions exempt as selection near-ties (max ${o.maxExempt})`);
  assert.ok(compared >= N / 2, `argmax compared at only ${compared}/${N} positions`);
  return { worst, mean: sum / (N - exempt), compared, exempt };
}

/** An onRoute hook recording, per token row, the closest selection call of any MoE layer, and which layers routed. */
export function marginRecorder(nTokens: number, nExpert: number, selection: (layer: number) => Parameters<typeof selectionMargin>[1]) {
  const margin = new Float64Array(nTokens).fill(Infinity);
  const routed = new Set<number>();
  const onRoute = (layer: number, r: { nTokens: number }, logits: Float32Array) => {
    routed.add(layer);
    for (let t = 0; t < r.nTokens; t++) margin[t] = Math.min(margin[t], selectionMargin(logits.subarray(t * nExpert, (t + 1) * nExpert), selection(layer)));
  };
  return { margin, routed, onRoute };
}

/**
 * The cases and bounds of the softmax-routed golden tests (Mixtral, OLMoE): F16 on the scalar reference, Q8_0 on the
 * native kernels (activations quantised to Q8_0 as llama.cpp does); relative RMSE bound per type (each case prints
 * what it measured); a selection near-tie (k-th vs (k+1)-th softmax probability this close: llama.cpp's rounding can
 * pick the other expert) is exempt from the bound, counted and capped.
 */
export const SOFTMAX_MOE_GOLDEN = {
  cases: [{ type: "F16", backend: "scalar" }, { type: "Q8_0", backend: "native" }] as const,
  tol: { F16: 0.002, Q8_0: 0.02 } as Record<string, number>,
  nearTie: 0.004,
  maxExempt: 4,
};

/**
 * The standard golden case for a routed-MoE model at `path`: llama.cpp's greedy run (flash attention off) on
 * `llamaPrompt` (default `prompt`), our tokenization of `prompt` equal to its, then checkTeacherForced over N =
 * ref.logits.length positions with softmax top-k selection margins; every layer must route. `inspect` sees the
 * loaded model first. Returns a one-line summary.
 */
export async function softmaxMoeGolden(path: string, o: {
  prompt: string; llamaPrompt?: string; n: number; backend: "scalar" | "native" | "wasm"; tol: number; nearTie?: number; maxExempt?: number; label: string;
  inspect?: (lm: LoadedModel, prompt: number[]) => void;
}): Promise<string> {
  const ref = await llamaGreedy(path, o.llamaPrompt ?? o.prompt, o.n, { flashAttention: false });
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256, backend: o.backend, expertIo: "resident" }));
  try {
    const info = lm.model.info;
    const prompt = lm.tokenizer.encode(o.prompt, { parseSpecial: true });
    assert.deepEqual(prompt, ref.promptTokens, "prompt tokenization differs from llama.cpp");
    o.inspect?.(lm, prompt);
    const tokens = [...prompt, ...ref.tokens.slice(0, o.n - 1)];
    const { margin, routed, onRoute } = marginRecorder(tokens.length, info.nExpert, () => ({ gating: "softmax", k: info.nExpertUsed }));
    const all = await lm.model.forward(Int32Array.from(tokens), lm.model.makeCache(256), { logits: "all", hooks: { onRoute } });
    assert.equal(routed.size, info.nLayer, "every layer routes");
    const { worst, mean, compared, exempt } = checkTeacherForced(all, ref.logits, { promptLen: prompt.length, tol: o.tol, margin, nearTie: o.nearTie ?? SOFTMAX_MOE_GOLDEN.nearTie, maxExempt: o.maxExempt ?? SOFTMAX_MOE_GOLDEN.maxExempt });
    return `${o.label}: ${tokens.length} positions, relative RMSE worst ${worst.toExponential(3)}, mean ${mean.toExponential(3)}; argmax compared at ${compared}/${o.n} positions, ${exempt} near-tie positions exempt`;
  } finally {
    await lm.close();
  }
}
