// Routing statistics of a token stream, from per-layer expert ids: how skewed expert popularity is and
// how much consecutive tokens reuse experts. Every cache figure should name the routing it was measured on.

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
