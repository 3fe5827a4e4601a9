// Pure gating functions: router logits in, expert ids and mixing weights out. The ids are the I/O
// request the expert store serves, so nothing here touches weights or storage.

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

/** A gating function: router logits [nTokens, nExpert] -> each token's experts and mixing weights. */
export type RouteFn = (logits: Float32Array, nTokens: number) => Routing;

/** Softmax over all experts, top k, renormalised or not, as a RouteFn. */
export function softmaxTopKRoute(nExpert: number, k: number, normalize: boolean): RouteFn {
  return (logits, nTokens) => softmaxTopK(logits, nTokens, nExpert, k, normalize);
}

/** Softmax over all experts, keep the top k, optionally renormalise them to sum to 1 (Qwen3-MoE, Mixtral). */
export function softmaxTopK(logits: Float32Array, nTokens: number, nExpert: number, k: number, normalize: boolean): Routing {
  if (k < 1 || k > nExpert) throw new RangeError(`top-k ${k} out of range for ${nExpert} experts`);
  const ids = new Int32Array(nTokens * k);
  const weights = new Float32Array(nTokens * k);
  const probs = new Float64Array(nExpert);
  const taken = new Uint8Array(nExpert);
  for (let t = 0; t < nTokens; t++) {
    const row = logits.subarray(t * nExpert, (t + 1) * nExpert);
    let max = -Infinity;
    for (let e = 0; e < nExpert; e++) if (row[e] > max) max = row[e];
    let sum = 0;
    for (let e = 0; e < nExpert; e++) sum += (probs[e] = Math.exp(row[e] - max));
    for (let e = 0; e < nExpert; e++) probs[e] /= sum;
    // k passes of selection (k is small; a full sort per token cost more than the softmax). Equal scores
    // keep the lower id first, as a stable index argsort does.
    taken.fill(0);
    let kept = 0;
    for (let j = 0; j < k; j++) {
      let best = -1;
      for (let e = 0; e < nExpert; e++) if (!taken[e] && (best < 0 || probs[e] > probs[best])) best = e;
      taken[best] = 1;
      ids[t * k + j] = best;
      kept += probs[best];
    }
    for (let j = 0; j < k; j++) {
      const p = probs[ids[t * k + j]];
      weights[t * k + j] = normalize ? p / kept : p;
    }
  }
  return { nTokens, k, ids, weights };
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
