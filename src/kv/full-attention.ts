// Full-attention KV state of one layer: K and V rows for every cache position, f32, kvDim = nHeadKv * headDim.
// (f16 rows would halve it; they belong here, behind the same interface, with kvStore/attention reading f16.)
import type { Backend, Buf } from "../backends/backend.js";
import type { LayerState } from "./state.js";

/** The K and V rows a forward's attention reads (query row t sits at startPos + t), and its window if any. */
export interface KvRows {
  k: Buf;
  v: Buf;
  startPos: number;
  window?: number;
}

export class FullAttentionState implements LayerState {
  readonly kind = "full";
  readonly k: Buf; // [nCtx, kvDim]
  readonly v: Buf; // [nCtx, kvDim]
  length = 0;

  constructor(
    private readonly backend: Backend,
    readonly nCtx: number,
    readonly kvDim: number,
  ) {
    this.k = backend.alloc(nCtx * kvDim);
    this.v = backend.alloc(nCtx * kvDim);
  }

  /** Bytes of f32 K and V rows for nCtx positions (budgets are computed before any state exists). */
  static bytesFor(nCtx: number, kvDim: number): number {
    return 2 * 4 * nCtx * kvDim;
  }

  get bytes(): number {
    return FullAttentionState.bytesFor(this.nCtx, this.kvDim);
  }

  /** Store this forward's k, v rows [T, kvDim] at the current length (rounded to f16 as llama.cpp's cache holds them, if asked). */
  store(k: Buf, v: Buf, nTokens: number, roundF16 = false): KvRows {
    const start = this.length, D = this.kvDim;
    if (start + nTokens > this.nCtx) throw new RangeError(`KV cache of ${this.nCtx} positions cannot hold ${start + nTokens}`);
    if (!roundF16) this.backend.kvStore(this.k, this.v, k, v, start, nTokens, D);
    else {
      const p = { rows: 1, n: nTokens * D, src: { offset: 0, stride: 0 }, dst: { offset: start * D, stride: 0 }, roundF16 };
      this.backend.copy(this.k, k, p);
      this.backend.copy(this.v, v, p);
    }
    return { k: this.k, v: this.v, startPos: start };
  }

  /** As store(), with the rows written by `write` (an op that also computes them: the backend's normRopeStore). */
  storeBy(nTokens: number, write: (k: Buf, v: Buf, startPos: number) => void): KvRows {
    const start = this.length;
    if (start + nTokens > this.nCtx) throw new RangeError(`KV cache of ${this.nCtx} positions cannot hold ${start + nTokens}`);
    write(this.k, this.v, start);
    return { k: this.k, v: this.v, startPos: start };
  }

  canTruncate(n: number): boolean {
    return n >= 0 && n <= this.length;
  }

  truncate(n: number): void {
    if (!this.canTruncate(n)) throw new RangeError(`cannot truncate a KV cache of ${this.length} positions to ${n}`);
    this.length = n;
  }

  advance(n: number): void {
    if (this.length + n > this.nCtx) throw new RangeError(`KV cache of ${this.nCtx} positions cannot hold ${this.length + n}`);
    this.length += n;
  }

  savedBytes(length: number): number {
    return 2 * 4 * length * this.kvDim;
  }

  /** K rows then V rows of the positions in use. */
  async save(): Promise<Uint8Array> {
    const n = this.length * this.kvDim;
    const out = new Float32Array(2 * n);
    out.set((await this.backend.read(this.k)).subarray(0, n), 0);
    out.set((await this.backend.read(this.v)).subarray(0, n), n);
    return new Uint8Array(out.buffer);
  }

  load(bytes: Uint8Array, length: number): void {
    if (length > this.nCtx) throw new RangeError(`a KV state of ${length} positions does not fit ${this.nCtx}`);
    if (bytes.byteLength !== this.savedBytes(length)) throw new RangeError(`KV state of ${length} positions needs ${this.savedBytes(length)} bytes, got ${bytes.byteLength}`);
    const n = length * this.kvDim;
    // Copy out: the bytes may sit at an offset that is not 4-aligned inside a file buffer.
    const rows = new Float32Array(2 * n);
    new Uint8Array(rows.buffer).set(bytes);
    if (n > 0) {
      this.backend.write(this.k, rows.subarray(0, n), 0);
      this.backend.write(this.v, rows.subarray(n), 0);
    }
    this.length = length;
  }

  free(): void {
    this.backend.free(this.k);
    this.backend.free(this.v);
  }
}

/** A layer state a model made as full attention (refuses another kind: the cache came from another model). */
export function fullAttention(s: LayerState): FullAttentionState {
  if (!(s instanceof FullAttentionState)) throw new TypeError(`expected a full-attention layer state, got '${s.kind}' (a cache made by another model?)`);
  return s;
}
