// Sliding-window KV state of one layer (gpt-oss's SWA layers): only the last positions a window of `window` keys
// can still see, never the whole context. Rows are held in position order, row 0 the oldest held position; it holds
// `capacity` of them (window − 1 the next token needs, plus as many again so a rollback of up to `window` tokens
// keeps its window). A forward gathers the held window and its own rows into caller scratch (contiguous, as the
// attention kernel reads them) and writes the new held rows into a second buffer that becomes current only at
// advance(): a forward that fails or is aborted leaves the state as it was, as a KV cache whose length did not move.
// checkpoint() keeps a copy of the window at the current length (sessions set one after each prompt), so the next
// turn's prompt, diverging inside the reply (gpt-oss's template drops the reasoning it generated), rolls back there
// instead of to 0.
import type { Backend, Buf } from "../backends/backend.js";
import type { KvRows } from "./full-attention.js";
import type { LayerState } from "./state.js";

export class SlidingWindowState implements LayerState {
  readonly kind = "sliding";
  /** Rows held at most: window − 1 for the next token, plus `window` for rollbacks (never more than nCtx). */
  readonly capacity: number;
  /** K and V rows [capacity, kvDim], current and next. */
  private readonly bufs: [{ k: Buf; v: Buf }, { k: Buf; v: Buf }];
  private cur = 0;
  /** Positions held: [length − held, length). */
  private held = 0;
  /** What the forward in progress wrote into the next buffer: its token count and the rows it holds. */
  private pending: { nTokens: number; held: number } | undefined;
  /** The window - 1 rows before checkpointLength (checkpoint / truncate), and how many of them there are. */
  private readonly ckpt: { k: Buf; v: Buf };
  private ckptHeld = 0;
  checkpointLength: number | undefined;
  length = 0;

  constructor(
    private readonly backend: Backend,
    readonly nCtx: number,
    readonly kvDim: number,
    readonly window: number,
  ) {
    if (!(Number.isInteger(window) && window >= 1)) throw new RangeError(`sliding window ${window} is not a positive integer`);
    this.capacity = SlidingWindowState.capacityFor(nCtx, window);
    const pair = () => ({ k: backend.alloc(this.capacity * kvDim), v: backend.alloc(this.capacity * kvDim) });
    this.bufs = [pair(), pair()];
    this.ckpt = { k: backend.alloc(Math.max(1, window - 1) * kvDim), v: backend.alloc(Math.max(1, window - 1) * kvDim) };
  }

  private static capacityFor(nCtx: number, window: number): number {
    return Math.max(1, Math.min(nCtx, 2 * window - 1));
  }

  /** Backend bytes for a context of nCtx (budgets are computed before any state exists): two buffers and the checkpoint's, K and V. */
  static bytesFor(nCtx: number, kvDim: number, window: number): number {
    return 2 * 4 * (2 * SlidingWindowState.capacityFor(nCtx, window) + Math.max(1, window - 1)) * kvDim;
  }

  get bytes(): number {
    return SlidingWindowState.bytesFor(this.nCtx, this.kvDim, this.window);
  }

  /** Rows the window of a forward starting at the current length reads from the held ones. */
  private get prev(): number {
    return Math.min(this.held, this.window - 1);
  }

  /**
   * Store this forward's k, v rows [T, kvDim]; returns the rows its attention reads: the held window then the new
   * rows, in kScratch / vScratch (at least (window − 1 + T) · kvDim each), the first new row at startPos.
   */
  store(k: Buf, v: Buf, nTokens: number, kScratch: Buf, vScratch: Buf, roundF16 = false): KvRows {
    const be = this.backend, D = this.kvDim, T = nTokens;
    if (this.length + T > this.nCtx) throw new RangeError(`sliding KV state of ${this.nCtx} positions cannot hold ${this.length + T}`);
    const src = this.bufs[this.cur], dst = this.bufs[1 - this.cur];
    const prev = this.prev, rows = prev + T;
    if (kScratch.length < rows * D || vScratch.length < rows * D) throw new RangeError(`sliding KV scratch of ${kScratch.length} values cannot hold ${rows} rows of ${D}`);
    const move = (from: Buf, to: Buf, n: number, srcRow: number, dstRow: number, f16 = false) =>
      n > 0 && be.copy(to, from, { rows: 1, n: n * D, src: { offset: srcRow * D, stride: 0 }, dst: { offset: dstRow * D, stride: 0 }, roundF16: f16 });
    for (const [held, fresh, scratch] of [[src.k, k, kScratch], [src.v, v, vScratch]] as const) {
      move(held, scratch, prev, this.held - prev, 0);
      move(fresh, scratch, T, 0, prev, roundF16);
    }
    // The next held rows: the latest min(capacity, held + T) positions, older ones from the held rows, the rest from scratch.
    const next = Math.min(this.capacity, this.held + T);
    const old = Math.max(0, next - rows);
    for (const [held, scratch, out] of [[src.k, kScratch, dst.k], [src.v, vScratch, dst.v]] as const) {
      move(held, out, old, this.held - prev - old, 0);
      move(scratch, out, next - old, rows - (next - old), old);
    }
    this.pending = { nTokens: T, held: next };
    return { k: kScratch, v: vScratch, startPos: prev, window: this.window };
  }

  /** Whether the next token at n has its window among the held rows: positions [n − window + 1, n). */
  private holds(n: number): boolean {
    return n >= 0 && n <= this.length && Math.max(0, n - this.window + 1) >= this.length - this.held;
  }

  canTruncate(n: number): boolean {
    return n === 0 || this.holds(n) || (n === this.checkpointLength && n <= this.length);
  }

  checkpoint(): void {
    const n = this.prev, from = this.held - n;
    const p = { rows: 1, n: n * this.kvDim, src: { offset: from * this.kvDim, stride: 0 }, dst: { offset: 0, stride: 0 } };
    if (n > 0) {
      this.backend.copy(this.ckpt.k, this.bufs[this.cur].k, p);
      this.backend.copy(this.ckpt.v, this.bufs[this.cur].v, p);
    }
    this.ckptHeld = n;
    this.checkpointLength = this.length;
  }

  truncate(n: number): void {
    if (!this.canTruncate(n)) {
      const ck = this.checkpointLength === undefined ? "" : ` or its checkpoint at ${this.checkpointLength}`;
      throw new RangeError(`a sliding-window state of ${this.length} positions (the last ${this.held} held${ck}) cannot be truncated to ${n}`);
    }
    if (n === 0) this.held = 0;
    else if (this.holds(n)) this.held -= this.length - n; // the rows after n are dropped from the end
    else {
      // Back to the checkpoint: its window becomes the held rows.
      const p = { rows: 1, n: this.ckptHeld * this.kvDim, src: { offset: 0, stride: 0 }, dst: { offset: 0, stride: 0 } };
      if (this.ckptHeld > 0) {
        this.backend.copy(this.bufs[this.cur].k, this.ckpt.k, p);
        this.backend.copy(this.bufs[this.cur].v, this.ckpt.v, p);
      }
      this.held = this.ckptHeld;
    }
    // A checkpoint past the new length describes tokens that will be fed again, perhaps others.
    if (this.checkpointLength !== undefined && this.checkpointLength > n) this.checkpointLength = undefined;
    this.length = n;
    this.pending = undefined;
  }

  advance(n: number): void {
    if (this.length + n > this.nCtx) throw new RangeError(`sliding KV state of ${this.nCtx} positions cannot hold ${this.length + n}`);
    if (!this.pending || this.pending.nTokens !== n) throw new Error(`sliding KV state advanced by ${n} tokens without a forward that stored them`);
    this.cur = 1 - this.cur;
    this.held = this.pending.held;
    this.pending = undefined;
    this.length += n;
  }

  /** K rows then V rows of the held positions: min(length, capacity) of them. */
  savedBytes(length: number): number {
    return 2 * 4 * Math.min(length, this.capacity) * this.kvDim;
  }

  async save(): Promise<Uint8Array> {
    const n = this.held * this.kvDim, { k, v } = this.bufs[this.cur];
    const [ks, vs] = await this.backend.readMany([k, v]);
    const out = new Float32Array(2 * n);
    out.set(ks.subarray(0, n), 0);
    out.set(vs.subarray(0, n), n);
    return new Uint8Array(out.buffer);
  }

  load(bytes: Uint8Array, length: number): void {
    if (length > this.nCtx) throw new RangeError(`a sliding KV state of ${length} positions does not fit ${this.nCtx}`);
    if (bytes.byteLength !== this.savedBytes(length)) throw new RangeError(`sliding KV state of ${length} positions needs ${this.savedBytes(length)} bytes, got ${bytes.byteLength}`);
    const held = Math.min(length, this.capacity), n = held * this.kvDim;
    // Copy out: the bytes may sit at an offset that is not 4-aligned inside a file buffer.
    const rows = new Float32Array(2 * n);
    new Uint8Array(rows.buffer).set(bytes);
    const { k, v } = this.bufs[this.cur];
    if (n > 0) {
      this.backend.write(k, rows.subarray(0, n), 0);
      this.backend.write(v, rows.subarray(n), 0);
    }
    this.held = held;
    this.length = length;
    this.pending = undefined;
    this.checkpointLength = undefined;
  }

  free(): void {
    this.backend.free(this.ckpt.k);
    this.backend.free(this.ckpt.v);
    for (const { k, v } of this.bufs) {
      this.backend.free(k);
      this.backend.free(v);
    }
  }
}

/** A layer state a model made as sliding-window (refuses another kind: the cache came from another model). */
export function slidingWindow(s: LayerState): SlidingWindowState {
  if (!(s instanceof SlidingWindowState)) throw new TypeError(`expected a sliding-window layer state, got '${s.kind}' (a cache made by another model?)`);
  return s;
}
