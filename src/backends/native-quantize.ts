// The native addon's weight quantisers (native/src/quant_ref.c: ggml's quantize_row_*_ref ported to C, byte for
// byte the same as src/quant's, which stay the reference) for the model generator, where JS quantisation is the
// bulk of the time. Undefined where the addon is not built or lacks the type: callers then use src/quant.
import { loadNativeAddon } from "./cpu/native-addon.js";

/** Encodes all of x (whole blocks) into out, as QuantFormat.quantizeRow would. */
export type BlockQuantizer = (x: Float32Array, out: Uint8Array) => void;

/**
 * The native quantiser of ggml type `type`, or undefined. It runs on the addon's process-wide pool with at least
 * `threads` threads (the pool is raised for the call and put back after; a larger pool is left as it is).
 */
export function nativeQuantizer(type: number, threads = 1): BlockQuantizer | undefined {
  const a = loadNativeAddon();
  if (!a?.quantizeRef || !a.quantizeRefTypes?.().includes(type)) return undefined;
  const quantizeRef = a.quantizeRef;
  return (x, out) => {
    const prev = a.getThreads();
    if (prev < threads) a.setThreads(threads);
    try {
      quantizeRef(type, x, out);
    } finally {
      if (prev < threads) a.setThreads(prev);
    }
  };
}
