// Routing statistics of a token stream, from per-layer expert ids: how skewed expert popularity is and
// how much consecutive tokens reuse experts. Every cache figure should name the routing it was measured on.
import type { Trace } from "../experts/trace.js";
import { NOMINAL_RECORD_BYTES } from "../experts/trace-jsonl.js";

/**
 * The prose the real-like profile is calibrated on (~160 Qwen3 tokens, read one per forward as the real
 * captures were): plain text without a repeated passage, which would replay its routing and flatter every cache.
 */
export const CALIBRATION_PROSE =
  "The harbour town woke slowly that winter. Fishing boats stayed tied to the pier while their owners argued about the price of diesel, " +
  "the weather forecast, and whether the new mayor would ever repair the lighthouse. Children ran past the bakery, where the smell of " +
  "cinnamon drifted into the cold street. An old sailor sat on a bench near the chapel, reading yesterday's newspaper and counting gulls. " +
  "By noon the fog had lifted, revealing distant islands, grey cliffs and a cargo ship heading north toward the open sea. Nobody " +
  "noticed the small wooden crate that had washed ashore beside the slipway, its lid sealed with wax and stamped with a crown. " +
  "Late in the afternoon a schoolteacher found it, carried it to the harbour office and asked the clerk to fetch a hammer. Inside " +
  "lay letters tied with faded ribbon, a brass compass and a map of the coast drawn by hand.";

export interface RoutingStats {
  /** Share of all routings taken by the most popular quarter of experts (uniform: 0.25), mean over layers. */
  topQuarterShare: number;
  /** Fraction of a token's experts that the previous token in the same layer also used (uniform: k / nExpert). */
  reuse: number;
  /** k / nExpert: what reuse is for independent uniform routing. */
  uniformReuse: number;
}

export class RoutingRecorder {
  private readonly counts: Float64Array[];
  private readonly prev: (Set<number> | undefined)[];
  private reused = 0;
  private pairs = 0;

  constructor(readonly nLayer: number, readonly nExpert: number, readonly k: number) {
    this.counts = Array.from({ length: nLayer }, () => new Float64Array(nExpert));
    this.prev = new Array(nLayer).fill(undefined);
  }

  /** Record one layer's routing for a batch of consecutive tokens: ids [nTokens * k]. */
  record(layer: number, ids: Int32Array, nTokens: number): void {
    for (let t = 0; t < nTokens; t++) {
      const cur = new Set<number>();
      for (let j = 0; j < this.k; j++) {
        const e = ids[t * this.k + j];
        cur.add(e);
        this.counts[layer][e]++;
      }
      const p = this.prev[layer];
      if (p) {
        for (const e of cur) if (p.has(e)) this.reused++;
        this.pairs += this.k;
      }
      this.prev[layer] = cur;
    }
  }

  stats(): RoutingStats {
    const q = Math.max(1, Math.round(this.nExpert / 4));
    let share = 0;
    for (const c of this.counts) {
      const sorted = [...c].sort((a, b) => b - a);
      const total = sorted.reduce((a, b) => a + b, 0);
      share += total ? sorted.slice(0, q).reduce((a, b) => a + b, 0) / total : 0;
    }
    return { topQuarterShare: share / this.nLayer, reuse: this.pairs ? this.reused / this.pairs : 0, uniformReuse: this.k / this.nExpert };
  }
}

/** The statistics issue 17 compares real and synthetic routing by, per layer and summarised over layers. */
export interface LayerSpread {
  mean: number;
  min: number;
  max: number;
  /** Standard deviation over layers: how much layers differ (real routers differ a lot). */
  sd: number;
}

export interface TraceRoutingStats {
  /** |ids_t ∩ ids_t-1| / k, averaged over tokens, per layer. */
  overlap: LayerSpread;
  /** Share of a layer's routings taken by its nExpert / 8 most used experts (16 of 128). */
  topEighthShare: LayerSpread;
  /** Distinct experts a layer touches in its first `window` tokens. */
  distinct: LayerSpread;
  /** Tokens the distinct count was taken over (the window, or fewer where the trace is shorter). */
  window: number;
  k: number;
  nExpert: number;
}

function spread(xs: number[]): LayerSpread {
  if (xs.length === 0) return { mean: NaN, min: NaN, max: NaN, sd: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length);
  return { mean, min: Math.min(...xs), max: Math.max(...xs), sd };
}

/**
 * Routing statistics of per-layer token streams: layers[l] is layer l's expert ids, one array of k per
 * token in order (empty: no routing captured, skipped). Layers with no routing at all are left out.
 */
export function layerRoutingStats(layers: Int32Array[][], nExpert: number, k: number, window = 156): TraceRoutingStats {
  const overlap: number[] = [], top: number[] = [], distinct: number[] = [];
  const q = Math.max(1, Math.round(nExpert / 8));
  let win = 0;
  for (const toks of layers) {
    const routed = toks.filter((ids) => ids.length > 0);
    if (routed.length === 0) continue;
    const counts = new Float64Array(nExpert);
    let same = 0, pairs = 0;
    let prev: Int32Array | undefined;
    for (const ids of toks) {
      if (ids.length === 0) { prev = undefined; continue; } // a lost record breaks the pair
      for (const e of ids) counts[e]++;
      if (prev) {
        for (const e of ids) if (prev.includes(e)) same++;
        pairs += k;
      }
      prev = ids;
    }
    if (pairs) overlap.push(same / pairs);
    const sorted = [...counts].sort((a, b) => b - a);
    const total = sorted.reduce((a, b) => a + b, 0);
    top.push(sorted.slice(0, q).reduce((a, b) => a + b, 0) / total);
    const first = routed.slice(0, window);
    win = Math.max(win, first.length);
    distinct.push(new Set(first.flatMap((ids) => [...ids])).size);
  }
  return { overlap: spread(overlap), topEighthShare: spread(top), distinct: spread(distinct), window: win, k, nExpert };
}

/** layerRoutingStats of a trace: its calls' routes split into tokens, in order, per layer with experts. */
export function traceRoutingStats(trace: Trace, window = 156): TraceRoutingStats {
  const m = trace.header.model;
  const layers: Int32Array[][] = Array.from({ length: m.nLayer }, () => []);
  for (const call of trace.calls) {
    call.routes.forEach((r, l) => {
      if (r === null) return;
      if (r.length === 0) layers[l].push(r);
      else for (let t = 0; t < call.nTokens; t++) layers[l].push(r.subarray(t * m.k, (t + 1) * m.k));
    });
  }
  return layerRoutingStats(layers.filter((ts) => ts.length > 0), m.nExpert, m.k, window);
}

/** One line: mean [min-max] of each statistic. */
export function formatRoutingStats(s: TraceRoutingStats): string {
  const f = (x: LayerSpread, d: number) => `${x.mean.toFixed(d)} [${x.min.toFixed(d)}-${x.max.toFixed(d)}, sd ${x.sd.toFixed(d)}]`;
  return `overlap ${f(s.overlap, 2)}; top-${Math.max(1, Math.round(s.nExpert / 8))} share ${f(s.topEighthShare, 2)}; ` +
    `distinct in ${s.window} tokens ${f(s.distinct, 0)} of ${s.nExpert} (k ${s.k})`;
}

/**
 * Per-layer token streams (layers[l][t]: token t's ids, one forward per token) as a decode-only trace, one
 * call per token with the imported captures' nominal record size: replayed as the real traces are.
 */
export function tokenTrace(layers: Int32Array[][], nExpert: number, k: number, name: string, routing: Record<string, unknown> | null): Trace {
  const n = layers[0]?.length ?? 0;
  return {
    header: { model: { architecture: "qwen3moe", name, nLayer: layers.length, nExpert, k, recordBytes: new Array(layers.length).fill(NOMINAL_RECORD_BYTES) }, routing },
    calls: Array.from({ length: n }, (_, t) => ({ phase: "decode" as const, nTokens: 1, routes: layers.map((l) => l[t]) })),
  };
}
