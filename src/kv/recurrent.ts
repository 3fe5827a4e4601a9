// Recurrent state of one linear-attention layer (gated DeltaNet): the conv state (the last kernel-1 raw inputs of
// every conv channel) and the delta-rule state (one S×S matrix per value head), f32, fixed size whatever the
// sequence length. It folds every token in, so it cannot drop the last few: it truncates only to its own length
// or to 0 (sessions re-evaluate a prefix they cannot keep; see Session.truncate). A forward that fails or is
// aborted must leave it as it was, as a KV cache whose length did not advance: the delta-rule state is written to a
// second buffer that becomes current at commit(), and the small conv state is snapshot first and restored.
// checkpoint() keeps a copy of both at the current length (sessions set one after each prompt), so a following
// prompt that diverges after it rolls back there instead of to 0.
import type { Backend, Buf } from "../backends/backend.js";
import type { LayerState } from "./state.js";

export interface RecurrentDims {
  /** Conv channels (2 · key_dim + value_dim) and taps kept per channel (ssm.conv_kernel − 1). */
  convChannels: number;
  convKeep: number;
  /** Value heads and their head size: the delta-rule state is nHeadV · headDim² values. */
  nHeadV: number;
  headDim: number;
}

export class RecurrentState implements LayerState {
  readonly kind = "recurrent";
  /** [convChannels, convKeep]: oldest tap first. */
  readonly conv: Buf;
  /** The delta-rule state [nHeadV, headDim (value), headDim (key)], current and next. */
  private readonly ssms: [Buf, Buf];
  private cur = 0;
  /** The conv state as it was before the forward in progress (snapshot / restore). */
  private readonly convBackup: Buf;
  /** The states at checkpointLength tokens (checkpoint / truncate). */
  private readonly ckpt: { conv: Buf; ssm: Buf };
  checkpointLength: number | undefined;
  length = 0;

  constructor(
    private readonly backend: Backend,
    readonly nCtx: number,
    readonly dims: RecurrentDims,
  ) {
    const { conv, ssm } = RecurrentState.values(dims);
    this.conv = backend.alloc(conv);
    this.ssms = [backend.alloc(ssm), backend.alloc(ssm)];
    this.convBackup = backend.alloc(conv);
    this.ckpt = { conv: backend.alloc(conv), ssm: backend.alloc(ssm) };
    backend.zero(this.conv);
    backend.zero(this.ssm);
  }

  /** The delta-rule state after the tokens absorbed. */
  get ssm(): Buf {
    return this.ssms[this.cur];
  }

  /** Where a forward writes the delta-rule state; it becomes `ssm` at commit(). */
  get ssmNext(): Buf {
    return this.ssms[1 - this.cur];
  }

  /** Before a forward: keep the conv state (which the forward changes in place). */
  snapshot(): void {
    this.copy(this.convBackup, this.conv);
  }

  private copy(dst: Buf, src: Buf): void {
    this.backend.gatherRows(dst, src, Int32Array.of(0), src.length); // one row: the whole buffer
  }

  checkpoint(): void {
    this.copy(this.ckpt.conv, this.conv);
    this.copy(this.ckpt.ssm, this.ssm);
    this.checkpointLength = this.length;
  }

  /** The forward completed: its delta-rule state becomes current. */
  commit(): void {
    this.cur = 1 - this.cur;
  }

  /** The forward failed or was aborted: the conv state as snapshot() saw it; the delta-rule state never changed. */
  restore(): void {
    this.copy(this.conv, this.convBackup);
  }

  private static values(d: RecurrentDims): { conv: number; ssm: number } {
    return { conv: d.convChannels * d.convKeep, ssm: d.nHeadV * d.headDim * d.headDim };
  }

  /** Backend bytes held: both f32 states, their second buffers and the checkpoint (the same for any context size). */
  static bytesFor(d: RecurrentDims): number {
    const { conv, ssm } = RecurrentState.values(d);
    return 3 * 4 * (conv + ssm);
  }

  get bytes(): number {
    return RecurrentState.bytesFor(this.dims);
  }

  canTruncate(n: number): boolean {
    return n === 0 || n === this.length || (n === this.checkpointLength && n <= this.length);
  }

  truncate(n: number): void {
    if (!this.canTruncate(n)) throw new RangeError(`a recurrent state of ${this.length} tokens cannot be rolled back to ${n} (only to 0${this.checkpointLength === undefined ? "" : ` or its checkpoint at ${this.checkpointLength}`})`);
    if (n === this.length) return;
    if (n === 0) {
      this.backend.zero(this.conv);
      this.backend.zero(this.ssm);
      this.checkpointLength = undefined;
    } else {
      this.copy(this.conv, this.ckpt.conv);
      this.copy(this.ssm, this.ckpt.ssm);
    }
    this.length = n;
  }

  advance(n: number): void {
    if (this.length + n > this.nCtx) throw new RangeError(`recurrent state of ${this.nCtx} positions cannot hold ${this.length + n}`);
    this.length += n;
  }

  /** Fixed: conv then delta-rule values, whatever the length (0 included: the zero state). */
  savedBytes(_length: number): number {
    const { conv, ssm } = RecurrentState.values(this.dims);
    return 4 * (conv + ssm);
  }

  async save(): Promise<Uint8Array> {
    const [conv, ssm] = await this.backend.readMany([this.conv, this.ssm]);
    const out = new Float32Array(conv.length + ssm.length);
    out.set(conv, 0);
    out.set(ssm, conv.length);
    return new Uint8Array(out.buffer);
  }

  load(bytes: Uint8Array, length: number): void {
    if (length > this.nCtx) throw new RangeError(`a recurrent state of ${length} positions does not fit ${this.nCtx}`);
    const n = this.savedBytes(length);
    if (bytes.byteLength !== n) throw new RangeError(`recurrent state needs ${n} bytes, got ${bytes.byteLength}`);
    // Copy out: the bytes may sit at an offset that is not 4-aligned inside a file buffer.
    const all = new Float32Array(n / 4);
    new Uint8Array(all.buffer).set(bytes);
    const nConv = this.conv.length;
    this.backend.write(this.conv, all.subarray(0, nConv), 0);
    this.backend.write(this.ssm, all.subarray(nConv), 0);
    this.length = length;
    this.checkpointLength = undefined;
  }

  free(): void {
    for (const b of [this.conv, this.convBackup, ...this.ssms, this.ckpt.conv, this.ckpt.ssm]) this.backend.free(b);
  }
}

/** A layer state a model made as recurrent (refuses another kind: the cache came from another model). */
export function recurrent(s: LayerState): RecurrentState {
  if (!(s instanceof RecurrentState)) throw new TypeError(`expected a recurrent layer state, got '${s.kind}' (a cache made by another model?)`);
  return s;
}
