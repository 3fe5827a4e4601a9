// MLA latent state of one layer (DeepSeek-V2/V3, Kimi-K2): per token one row [c (kv_lora_rank) ‖ k_pe (rope dims)]
// (576 values for V3): the normalised compressed KV and the roped shared key. It is the attention's K, and its first
// kv_lora_rank values are its V. llama.cpp v0.5.0 keeps exactly this for GGUFs with attention.key_length_mla (the
// split attn_k_b / attn_v_b tensors current converters write): a K-only f16 cache of kv_lora_rank + rope values.
// The model stores rows rounded to f16 (as that cache holds them), so they are saved as f16 without loss.
import type { Backend, Buf } from "../backends/backend.js";
import { f16ToF32, f32ToF16 } from "../util/f16.js";
import type { LayerState } from "./state.js";

export class LatentState implements LayerState {
  readonly kind = "latent";
  /** [nCtx, width]: f16 values held as f32 (the kernels read f32). */
  readonly kv: Buf;
  length = 0;

  constructor(
    private readonly backend: Backend,
    readonly nCtx: number,
    /** kv_lora_rank + rope dims. */
    readonly width: number,
  ) {
    this.kv = backend.alloc(nCtx * width);
  }

  /** Backend bytes for nCtx positions (budgets are computed before any state exists). */
  static bytesFor(nCtx: number, width: number): number {
    return 4 * nCtx * width;
  }

  get bytes(): number {
    return LatentState.bytesFor(this.nCtx, this.width);
  }

  canTruncate(n: number): boolean {
    return n >= 0 && n <= this.length;
  }

  truncate(n: number): void {
    if (!this.canTruncate(n)) throw new RangeError(`cannot truncate a latent cache of ${this.length} positions to ${n}`);
    this.length = n;
  }

  advance(n: number): void {
    if (this.length + n > this.nCtx) throw new RangeError(`latent cache of ${this.nCtx} positions cannot hold ${this.length + n}`);
    this.length += n;
  }

  savedBytes(length: number): number {
    return 2 * length * this.width;
  }

  /** The rows in use as little-endian f16. */
  async save(): Promise<Uint8Array> {
    const n = this.length * this.width;
    const rows = (await this.backend.read(this.kv)).subarray(0, n);
    const out = new Uint8Array(2 * n), view = new DataView(out.buffer);
    for (let i = 0; i < n; i++) view.setUint16(2 * i, f32ToF16(rows[i]), true);
    return out;
  }

  load(bytes: Uint8Array, length: number): void {
    if (length > this.nCtx) throw new RangeError(`a latent state of ${length} positions does not fit ${this.nCtx}`);
    if (bytes.byteLength !== this.savedBytes(length)) throw new RangeError(`latent state of ${length} positions needs ${this.savedBytes(length)} bytes, got ${bytes.byteLength}`);
    const n = length * this.width;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength); // any alignment
    const rows = new Float32Array(n);
    for (let i = 0; i < n; i++) rows[i] = f16ToF32(view.getUint16(2 * i, true));
    if (n > 0) this.backend.write(this.kv, rows, 0);
    this.length = length;
  }

  free(): void {
    this.backend.free(this.kv);
  }
}

/** A layer state a model made as latent (refuses another kind: the cache came from another model). */
export function latent(s: LayerState): LatentState {
  if (!(s instanceof LatentState)) throw new TypeError(`expected a latent (MLA) layer state, got '${s.kind}' (a cache made by another model?)`);
  return s;
}
