// The one contract every quant block type implements (DESIGN.md practice 7).
// Rows are whole blocks: n is a multiple of blockSize.

export interface QuantFormat {
  /** ggml type id, as stored in GGUF tensor infos. */
  readonly type: number;
  /** ggml's name: "F32", "F16", "BF16", "Q8_0", "Q4_K", "Q6_K". */
  readonly name: string;
  /** Values per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly bytesPerBlock: number;
  /** Decode n values from src (starting at src[0]) into dst[0..n). */
  dequantRow(src: Uint8Array, dst: Float32Array, n: number): void;
  /**
   * Encode n values into dst with ggml's reference rounding (bit-exact with ggml's *_ref quantizers).
   * Throws for a dequantOnly format.
   */
  quantizeRow(src: Float32Array, dst: Uint8Array, n: number): void;
  /** True where moestream only decodes the type (i-quants whose ggml quantiser needs an importance matrix). */
  readonly dequantOnly?: boolean;
  /** Dot product of one encoded row (src, n values) with f32 activations x[0..n); the scalar reference, f64 accumulation. */
  dot(src: Uint8Array, x: Float32Array, n: number): number;
}
