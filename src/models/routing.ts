// Pure gating functions: router logits in, expert ids and mixing weights out. The ids are the I/O
// request the expert store serves, so nothing here touches weights or storage.
import type { RouteSpec } from "../backends/backend.js";

export interface Routing {
  /** Tokens routed. */
  nTokens: number;
  /** Experts per token. */
  k: number;
  /** [nTokens * k] expert ids, each token's in descending score order. */
  ids: Int32Array;
  /** [nTokens * k] mixing weights matching ids. */
  weights: Float32Array;
}

/**
 * A gating function: router logits [nTokens, nExpert] -> each token's experts and mixing weights. `spec`, where
 * present, says it is plain softmax top-k, which a backend may then compute on its device (routeOnDevice).
 */
export type RouteFn = ((logits: Float32Array, nTokens: number) => Routing) & { readonly spec?: RouteSpec };

/** Softmax over all experts, top k, renormalised or not, as a RouteFn. */
export function softmaxTopKRoute(nExpert: number, k: number, normalize: boolean): RouteFn {
  return Object.assign((logits: Float32Array, nTokens: number) => softmaxTopK(logits, nTokens, nExpert, k, normalize), { spec: { nExpert, k, normalize } });
}

/** Softmax over all experts, keep the top k, optionally renormalise them to sum to 1 (Qwen3-MoE, Mixtral). */
export function softmaxTopK(logits: Float32Array, nTokens: number, nExpert: number, k: number, normalize: boolean): Routing {
  if (k < 1 || k > nExpert) throw new RangeError(`top-k ${k} out of range for ${nExpert} experts`);
  const ids = new Int32Array(nTokens * k);
  const weights = new Float32Array(nTokens * k);
  const probs = new Float64Array(nExpert);
  const taken = new Uint8Array(nExpert);
  for (let t = 0; t < nTokens; t++) {
    softmax(logits.subarray(t * nExpert, (t + 1) * nExpert), probs);
    const sel = ids.subarray(t * k, (t + 1) * k);
    selectTopK(probs, sel, taken);
    mixWeights(probs, sel, weights.subarray(t * k, (t + 1) * k), normalize ? 0 : undefined, 1);
  }
  return { nTokens, k, ids, weights };
}

/**
 * gpt-oss (llama.cpp's SOFTMAX_WEIGHT gating): the top k of the raw router logits, weighted by a softmax over those
 * k logits alone, not renormalised further.
 */
export function topKSoftmaxRoute(nExpert: number, k: number): RouteFn {
  if (k < 1 || k > nExpert) throw new RangeError(`top-k ${k} out of range for ${nExpert} experts`);
  const raw = new Float64Array(nExpert), taken = new Uint8Array(nExpert);
  const chosen = new Float32Array(k), w = new Float64Array(k);
  return (logits, nTokens) => {
    const ids = new Int32Array(nTokens * k);
    const weights = new Float32Array(nTokens * k);
    for (let t = 0; t < nTokens; t++) {
      raw.set(logits.subarray(t * nExpert, (t + 1) * nExpert));
      const sel = ids.subarray(t * k, (t + 1) * k);
      selectTopK(raw, sel, taken);
      sel.forEach((e, j) => (chosen[j] = raw[e]));
      softmax(chosen, w);
      weights.set(w, t * k);
    }
    return { nTokens, k, ids, weights };
  };
}

export interface GroupTopKOptions {
  nExpert: number;
  k: number;
  /** Scores from router logits: softmax over all experts (DeepSeek-V2) or an independent sigmoid each (V3, GLM-4.5). */
  gating: "softmax" | "sigmoid";
  /** exp_probs_b [nExpert]: added to the scores for selection only; the mixing weights stay unbiased. */
  selectionBias?: Float32Array;
  /** expert_group_count / expert_group_used_count: experts are nGroup contiguous blocks, only the nGroupUsed best are eligible. */
  nGroup?: number;
  nGroupUsed?: number;
  /** expert_weights_norm: the k weights divided by their sum (clamped below at f16's smallest normal, as llama.cpp). */
  normalize: boolean;
  /** expert_weights_scale: the weights times this (0 or 1: none). */
  scale?: number;
}

// llama.cpp clamps the weight sum here before dividing (the smallest normal f16).
const MIN_WEIGHT_SUM = 6.103515625e-5;

/**
 * DeepSeek-V3 / GLM-4.5 routing as llama.cpp's build_moe_ffn computes it: scores = gating(logits); selection
 * on scores + bias; with groups, a group's score is the sum of its two best biased scores and only the
 * nGroupUsed best groups compete (llama.cpp uses the top-2 sum for DeepSeek-V2's groups too); the top k of
 * the eligible experts; weights = their unbiased scores, normalised and scaled as asked.
 */
export function groupTopKRoute(o: GroupTopKOptions): RouteFn {
  const { nExpert: E, k, selectionBias: bias } = o;
  const nGroup = o.nGroup ?? 1, nGroupUsed = o.nGroupUsed ?? nGroup;
  if (k < 1 || k > E) throw new RangeError(`top-k ${k} out of range for ${E} experts`);
  if (bias && bias.length !== E) throw new RangeError(`selection bias has ${bias.length} values for ${E} experts`);
  const grouped = nGroup > 1;
  const perGroup = E / nGroup;
  if (grouped) {
    if (!Number.isInteger(perGroup) || perGroup < 2) throw new RangeError(`${E} experts do not split into ${nGroup} groups of at least 2`);
    if (nGroupUsed < 1 || nGroupUsed > nGroup) throw new RangeError(`${nGroupUsed} groups used out of range for ${nGroup} groups`);
    if (k > nGroupUsed * perGroup) throw new RangeError(`top-k ${k} exceeds the ${nGroupUsed * perGroup} experts of ${nGroupUsed} groups`);
  }
  const scale = o.scale && o.scale !== 1 ? o.scale : 1;
  const scores = new Float64Array(E), sel = new Float64Array(E);
  const taken = new Uint8Array(E);
  const gScore = new Float64Array(grouped ? nGroup : 0), gIds = new Int32Array(grouped ? nGroupUsed : 0), gTaken = new Uint8Array(gScore.length);
  return (logits, nTokens) => {
    const ids = new Int32Array(nTokens * k);
    const weights = new Float32Array(nTokens * k);
    for (let t = 0; t < nTokens; t++) {
      const row = logits.subarray(t * E, (t + 1) * E);
      if (o.gating === "softmax") softmax(row, scores);
      else for (let e = 0; e < E; e++) scores[e] = 1 / (1 + Math.exp(-row[e]));
      for (let e = 0; e < E; e++) sel[e] = bias ? scores[e] + bias[e] : scores[e];
      if (grouped) {
        for (let g = 0; g < nGroup; g++) {
          let a = -Infinity, b = -Infinity; // the group's two best
          for (let e = g * perGroup; e < (g + 1) * perGroup; e++) {
            if (sel[e] > a) [a, b] = [sel[e], a];
            else if (sel[e] > b) b = sel[e];
          }
          gScore[g] = a + b;
        }
        selectTopK(gScore, gIds, gTaken);
        gTaken.fill(0);
        for (const g of gIds) gTaken[g] = 1;
        for (let e = 0; e < E; e++) if (!gTaken[Math.floor(e / perGroup)]) sel[e] = -Infinity;
      }
      const chosen = ids.subarray(t * k, (t + 1) * k);
      selectTopK(sel, chosen, taken);
      mixWeights(scores, chosen, weights.subarray(t * k, (t + 1) * k), o.normalize ? MIN_WEIGHT_SUM : undefined, scale);
    }
    return { nTokens, k, ids, weights };
  };
}

function softmax(row: Float32Array, out: Float64Array): void {
  let max = -Infinity;
  for (let e = 0; e < row.length; e++) if (row[e] > max) max = row[e];
  let sum = 0;
  for (let e = 0; e < row.length; e++) sum += (out[e] = Math.exp(row[e] - max));
  for (let e = 0; e < row.length; e++) out[e] /= sum;
}

/**
 * ids = indices of the ids.length largest scores, descending, by repeated selection (k is small; a full sort per
 * token cost more than the softmax). Equal scores keep the lower index first, as a stable index argsort does.
 */
function selectTopK(scores: Float64Array, ids: Int32Array, taken: Uint8Array): void {
  taken.fill(0);
  for (let j = 0; j < ids.length; j++) {
    let best = -1;
    for (let e = 0; e < scores.length; e++) if (!taken[e] && (best < 0 || scores[e] > scores[best])) best = e;
    taken[best] = 1;
    ids[j] = best;
  }
}

/** out[j] = scores[ids[j]], divided by their sum (at least minSum) when minSum is given, times scale. */
function mixWeights(scores: Float64Array, ids: Int32Array, out: Float32Array, minSum: number | undefined, scale: number): void {
  let sum = 0;
  for (const e of ids) sum += scores[e];
  const div = minSum === undefined ? 1 : Math.max(sum, minSum);
  for (let j = 0; j < ids.length; j++) out[j] = (scores[ids[j]] / div) * scale;
}

export interface ExpertBucket {
  expert: number;
  /** Token rows routed to this expert. */
  rows: Int32Array;
  /** The mixing weight of this expert for each of those rows. */
  scales: Float32Array;
}

/** Group token rows by expert (the bucketed MoE loop runs each expert once over its rows), ids ascending. */
export function bucketByExpert(r: Routing): ExpertBucket[] {
  const byExpert = new Map<number, { rows: number[]; scales: number[] }>();
  for (let t = 0; t < r.nTokens; t++) {
    for (let j = 0; j < r.k; j++) {
      const e = r.ids[t * r.k + j];
      let b = byExpert.get(e);
      if (!b) byExpert.set(e, (b = { rows: [], scales: [] }));
      b.rows.push(t);
      b.scales.push(r.weights[t * r.k + j]);
    }
  }
  return [...byExpert.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([expert, b]) => ({ expert, rows: Int32Array.from(b.rows), scales: Float32Array.from(b.scales) }));
}
