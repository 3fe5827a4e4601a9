// Encoding the generator's f32 rows: ggml's reference quantisers, in C through the native addon where it is built
// and has the type (backends/native-quantize.ts; several times faster, on several threads), else src/quant's JS.
// Both write the same bytes (test/quant/native-ref.test.ts), so a file does not depend on which one ran.
import { availableParallelism } from "node:os";
import { nativeQuantizer } from "../backends/native-quantize.js";
import type { QuantFormat } from "../quant/index.js";
import type { RowFiller } from "./weights.js";

/** f32 values filled per native call: bounds the scratch (4 MiB) whatever the tensor's size. */
const CHUNK_VALUES = 1 << 20;

export interface QuantizeRowsOptions {
  /** Use the native quantiser when the addon has it (default true); false always runs the JS one. */
  native?: boolean;
  /** Threads for the native quantiser (default os.availableParallelism()). */
  threads?: number;
}

/** rows rows of K values, row r filled by fill(r, row) in order, encoded as q. */
export function quantizeRows(q: QuantFormat, rows: number, K: number, fill: RowFiller, opts: QuantizeRowsOptions = {}): Uint8Array {
  const rowBytes = (K / q.blockSize) * q.bytesPerBlock;
  const out = new Uint8Array(rows * rowBytes);
  const native = opts.native === false ? undefined : nativeQuantizer(q.type, opts.threads ?? availableParallelism());
  if (!native) {
    const row = new Float32Array(K);
    for (let r = 0; r < rows; r++) {
      fill(r, row);
      q.quantizeRow(row, out.subarray(r * rowBytes, (r + 1) * rowBytes), K);
    }
    return out;
  }
  const per = Math.max(1, Math.min(rows, Math.floor(CHUNK_VALUES / K)));
  const x = new Float32Array(per * K);
  for (let r0 = 0; r0 < rows; r0 += per) {
    const n = Math.min(per, rows - r0);
    for (let r = 0; r < n; r++) fill(r0 + r, x.subarray(r * K, (r + 1) * K));
    native(x.subarray(0, n * K), out.subarray(r0 * rowBytes, (r0 + n) * rowBytes));
  }
  return out;
}
