// Per-sequence state, one object per layer, picked by the model (mlx-lm models/cache.py make_cache):
// full attention KV today; sliding-window KV, latent (MLA) and recurrent (conv + delta-rule) states
// implement the same interface. Sessions reuse, truncate, save and load through it and nothing else.

/** What a layer keeps between forward calls. */
export interface LayerState {
  /** "full" | "sliding" | "latent" | "recurrent": written into session files, checked on load. */
  readonly kind: string;
  /** Tokens this state has absorbed. */
  readonly length: number;
  /** Backend memory held, bytes. */
  readonly bytes: number;
  /** Whether the state can be rolled back to its first `n` tokens (a recurrent state only to 0 or its checkpoint). */
  canTruncate(n: number): boolean;
  /** A state that cannot roll back freely keeps one point it can return to: set it here, at its current length. */
  checkpoint?(): void;
  /** The length checkpoint() kept (undefined: none). */
  readonly checkpointLength?: number;
  truncate(n: number): void;
  /** `n` more tokens were written by a forward that completed. */
  advance(n: number): void;
  /** Bytes that restore this state at its current length through load(). */
  save(): Promise<Uint8Array>;
  /** Byte length save() gives at `length` tokens (session files check sizes before reading). */
  savedBytes(length: number): number;
  /** Restore a state of `length` tokens from save()'s bytes. */
  load(bytes: Uint8Array, length: number): void;
  free(): void;
}

/** A sequence's state across layers, made by Model.makeCache(nCtx). Layers advance together. */
export class ModelCache {
  constructor(
    readonly layers: readonly LayerState[],
    /** Tokens the sequence may hold. */
    readonly nCtx: number,
  ) {}

  /** Tokens absorbed so far: the next token goes to position `length`. */
  get length(): number {
    return this.layers.length ? this.layers[0].length : this.empty;
  }
  private empty = 0; // a model without layers (tests) still counts its tokens

  /** Backend bytes held by every layer's state. */
  get bytes(): number {
    return this.layers.reduce((a, l) => a + l.bytes, 0);
  }

  canTruncate(n: number): boolean {
    return n >= 0 && n <= this.length && this.layers.every((l) => l.canTruncate(n));
  }

  /** Keep a point every layer can roll back to, at the current length (states that roll back freely need none). */
  checkpoint(): void {
    for (const l of this.layers) l.checkpoint?.();
  }

  /** The longest prefix of at most n tokens every layer can roll back to: n itself, a checkpoint, or 0. */
  rollbackPoint(n: number): number {
    const points = this.layers.map((l) => l.checkpointLength).filter((c): c is number => c !== undefined && c <= n);
    return [n, ...points.sort((a, b) => b - a)].find((c) => this.canTruncate(c)) ?? 0;
  }

  /** Forget everything after `n` tokens; refuses what a layer's state cannot undo. */
  truncate(n: number): void {
    if (n < 0 || n > this.length) throw new RangeError(`cannot truncate a state of ${this.length} tokens to ${n}`);
    const bad = this.layers.findIndex((l) => !l.canTruncate(n));
    if (bad >= 0) throw new RangeError(`layer ${bad}'s ${this.layers[bad].kind} state cannot be truncated to ${n} tokens`);
    for (const l of this.layers) l.truncate(n);
    if (!this.layers.length) this.empty = n;
  }

  /** A forward of `n` tokens completed: every layer holds them now. */
  advance(n: number): void {
    for (const l of this.layers) l.advance(n);
    if (!this.layers.length) this.empty += n;
  }

  free(): void {
    for (const l of this.layers) l.free();
  }
}
