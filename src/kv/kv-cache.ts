// Per-layer key/value cache (full attention). Rows are cache positions, each kvDim = nHeadKv * headDim f32.
import type { Backend, Buf } from "../backends/backend.js";

export interface KVLayer {
  readonly k: Buf; // [nCtx, kvDim]
  readonly v: Buf; // [nCtx, kvDim]
}

export class KVCache {
  readonly layers: KVLayer[];
  /** Positions filled so far; the next token goes to position `length`. */
  length = 0;

  constructor(
    private readonly backend: Backend,
    readonly nLayer: number,
    readonly nCtx: number,
    readonly kvDim: number,
  ) {
    this.layers = Array.from({ length: nLayer }, () => ({ k: backend.alloc(nCtx * kvDim), v: backend.alloc(nCtx * kvDim) }));
  }

  /** Forget everything after `length` positions (0 clears the cache). */
  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new RangeError(`cannot truncate KV cache of ${this.length} positions to ${length}`);
    this.length = length;
  }

  free(): void {
    for (const l of this.layers) {
      this.backend.free(l.k);
      this.backend.free(l.v);
    }
  }
}
