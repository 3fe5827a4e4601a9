// Loads the native kernels addon built at install (native/build/Release/moestream_native.node). Missing or
// unloadable (no compiler at install, other platform, ABI mismatch) means undefined, and the reason is kept.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Raw bytes the addon reads in place: any TypedArray, a DataView or an ArrayBuffer. */
export type Bytes = ArrayBufferView | ArrayBuffer;

/** The addon's exports (native/src/addon.c). Buffers are used in place; every call but the Promise-returning crc ones is synchronous. */
export interface NativeAddon {
  /** out[T, N] = x[T, K] · Wᵀ; w holds N rows of K values of ggml type `type` (F32, F16, BF16, Q4_0, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K). */
  matmul(type: number, w: Bytes, x: Float32Array, out: Float32Array, k: number, n: number, t: number): void;
  /** For nRows rows of rowLen: out = x / sqrt(mean(x²) + eps) * w, w = f32 bytes (rowLen values). out may equal x. */
  rmsNorm(out: Float32Array, x: Float32Array, w: Bytes, eps: number, rowLen: number, nRows: number): void;
  /** NeoX rope in place on x[pos.length, nHead, headDim] (angles in f64). */
  rope(x: Float32Array, pos: Int32Array, nHead: number, headDim: number, freqBase: number): void;
  /** out[0..n) = a + b (out may equal a or b). */
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  /** out[0..n) = silu(gate) * up (out may equal gate or up). */
  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  /** Causal GQA attention of q[T, nHead, headDim] against f32 caches [startPos + T, nHeadKv * headDim]; out[T, nHead * headDim]. */
  attention(out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, nTokens: number, startPos: number,
    nHead: number, nHeadKv: number, headDim: number, scale: number): void;
  /** out[rows[i], :] += scales[i] * x[i, :]. */
  scatterAddRows(out: Float32Array, x: Float32Array, rows: Int32Array, scales: Float32Array, rowLen: number): void;
  /** Rewrites N Q4_K (12) or Q8_0 (8) rows of K values (N a multiple of 8) in place as groups of 8 interleaved
   *  rows: Q4_K_R8 (type 1012) or Q8_0_R8 (type 1008); undo = 1: such rows back into plain blocks. */
  repackR8(type: number, bytes: Bytes, K: number, N: number, undo?: 0 | 1): void;
  /** out[T, D] = down(silu(gate x) * up x) for x[T, D]; gate and up hold F rows of D values, down D rows of F (ggml types). */
  matmulSet(types: Int32Array, weights: Bytes[], outs: Float32Array[], x: Float32Array, K: number, T: number): void;
  moeFfn(types: Int32Array, weights: Bytes[], x: Float32Array, out: Float32Array, rows: Int32Array, offsets: Int32Array, scales: Float32Array, D: number, F: number): void;
  /** moeFfn run from a libuv thread: settles once out holds the sum; no argument may change until then. */
  moeFfnAsync(types: Int32Array, weights: Bytes[], x: Float32Array, out: Float32Array, rows: Int32Array, offsets: Int32Array, scales: Float32Array, D: number, F: number): Promise<void>;
  /** moeFfn begun on the pool's worker threads: its ticket for moeFfnJoin; no argument may change until joined. */
  moeFfnBegin?(types: Int32Array, weights: Bytes[], x: Float32Array, out: Float32Array, rows: Int32Array, offsets: Int32Array, scales: Float32Array, D: number, F: number): number;
  /** This thread's share of the begun run, then its end: out holds the sum (false: it had ended already). */
  moeFfnJoin?(ticket: number, keep?: unknown): boolean; // keep: ignored (the begun run's arguments, held until here)
  expertFfn(gateType: number, gate: Bytes, upType: number, up: Bytes, downType: number, down: Bytes, x: Float32Array,
    out: Float32Array, d: number, f: number, t: number): void;
  /**
   * The gated delta rule (Backend.gatedDeltaNet), value heads in parallel; tile 1: value head j reads key head
   * j % nHeadK, 0: j / (nHeadV / nHeadK). Optional: an addon built before it lacks it (the backend then delegates).
   */
  gatedDeltaNet?(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, g: Float32Array, beta: Float32Array, state: Float32Array,
    stateOut: Float32Array, nTokens: number, nHeadK: number, nHeadV: number, headDim: number, tile: number): void;
  // The MLA and linear-attention ops (native/src/attn_ext.c, ops_linear.c). Optional: an addon built before them lacks
  // them, and the backend then hands those ops to the scalar reference.
  /** Attention (Backend.attention) with V heads of the first vDim values of each cache row and, f16Probs 1, the
   *  probabilities rounded to f16; out[T, nHead * vDim] must not overlap q or the caches. */
  attentionExt?(out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, nTokens: number, startPos: number,
    nHead: number, nHeadKv: number, headDim: number, vDim: number, scale: number, f16Probs: number): void;
  /** attentionExt plus gpt-oss's sinks (f32 bytes of nHead logits, or null) and sliding window (keys a token sees, 0: all). */
  attentionMasked?(out: Float32Array, q: Float32Array, kCache: Float32Array, vCache: Float32Array, nTokens: number, startPos: number,
    nHead: number, nHeadKv: number, headDim: number, vDim: number, scale: number, f16Probs: number, sinks: Bytes | null, window: number): void;
  /** Backend.swigluOai (out may equal gate or up). */
  swigluOai?(out: Float32Array, gate: Float32Array, up: Float32Array, n: number, alpha: number, limit: number): void;
  /** out[r, :] += bias for nRows rows of rowLen; bias: f32 bytes of rowLen values. */
  addRows?(out: Float32Array, bias: Bytes, rowLen: number, nRows: number): void;
  /** out[T, nHead, N] = per head x[T, nHead, K] · W_hᵀ; w holds nHead heads of N rows of K values (not repacked). */
  matmulHeads?(type: number, w: Bytes, x: Float32Array, out: Float32Array, k: number, n: number, nHead: number, t: number): void;
  /** Backend.convSilu with w the f32 bytes of [channels, taps]. */
  convSilu?(out: Float32Array, x: Float32Array, state: Float32Array, w: Bytes, nTokens: number, channels: number, taps: number): void;
  l2Norm?(out: Float32Array, x: Float32Array, eps: number, rowLen: number, nRows: number): void;
  /** w: f32 bytes of rowLen values. */
  rmsNormGated?(out: Float32Array, x: Float32Array, w: Bytes, gate: Float32Array, eps: number, rowLen: number, nRows: number): void;
  sigmoidMul?(out: Float32Array, x: Float32Array, gate: Float32Array, n: number): void;
  /** dtBias, a: f32 bytes of nHead values. */
  deltaGates?(g: Float32Array, beta: Float32Array, alpha: Float32Array, betaRaw: Float32Array, dtBias: Bytes, a: Bytes, nHead: number, nRows: number): void;
  /** Backend.copy (CopyParams), roundF16 0 or 1. */
  copyRows?(out: Float32Array, x: Float32Array, rows: number, n: number, srcOffset: number, srcStride: number, dstOffset: number, dstStride: number, roundF16: number): void;
  /** Rope in place on x[T, nHead, headDim] over values [offset, offset + nRot) of each head from cs: T * nRot/2 (cos, sin)
   *  pairs (any angles: YaRN, scaled); norm 1 pairs (2i, 2i + 1), 0 NeoX's (i, i + nRot/2). */
  ropeTable?(x: Float32Array, cs: Float64Array, nHead: number, headDim: number, nRot: number, offset: number, norm: number): void;
  /** Quantise activations to ggml block_q8_0 (34 bytes per 32 values). */
  quantizeQ8_0(x: Float32Array, out: Bytes): void;
  /** Quantise activations to ggml block_q8_K (292 bytes per 256 values: f32 d, 256 int8, 16 int16 sums). */
  quantizeQ8K(x: Float32Array, out: Bytes): void;
  /** Encode all of x (whole blocks) into out as ggml's quantize_row_<type>_ref does (native/src/quant_ref.c), on the
   *  pool; returns the bytes written. Optional: an addon built before it lacks it. */
  quantizeRef?(type: number, x: Float32Array, out: Bytes): number;
  /** The ggml type ids quantizeRef takes (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K). */
  quantizeRefTypes?(): number[];
  /** Threads of the process-wide pool, the calling thread included; returns the count in use. */
  setThreads(n: number): number;
  getThreads(): number;
  /** How long idle pool threads spin before blocking, in microseconds (default 200). */
  setSpin(microseconds: number): void;
  /** A run is near: sleeping pool threads wake now and spin for it, `microseconds` at most. Optional: an addon built before it lacks it. */
  poke?(microseconds: number): void;
  /** SIMD features of this CPU that the kernels use, e.g. ["avx2", "fma", "f16c", "avx512f", ...]. */
  cpuFeatures(): string[];
  /** Kernel sets this CPU runs, e.g. ["scalar", "avx2", "avx512"]; the best is chosen at load. */
  kernelLevels(): string[];
  kernelLevel(): string;
  /** Force a kernel set (tests compare them); throws if this CPU cannot run it. */
  setKernelLevel(level: string): void;
  /** Sum of buf as 64-bit words, read by all pool threads: a memory bandwidth probe. */
  memRead(buf: Bytes): number;
  /** Ask for transparent huge pages over buf's whole 2 MiB pages (before first write); the offset of the first, -1 if none. */
  adviseHugePages(buf: Bytes): number;
  /** src's bytes into the start of dst (no shorter, not overlapping), on all pool threads. */
  copyBytes(dst: Bytes, src: Bytes): void;
  /** CRC-32C of buf (CRC instructions where the CPU has them), continuing from crc. */
  crc32c(buf: Bytes, crc?: number): number;
  /** CRC-32C of buf computed on a libuv pool thread; buf must not change until it settles. */
  crc32cAsync(buf: Bytes): Promise<number>;
  /** Which crc32c path this CPU takes: "sse4.2", "armv8-crc" or "slicing-by-8". */
  crc32cImpl(): string;
  /** Fill buf from fd at position on a pool thread (short only at end of file) and checksum what was read there;
   *  rejects with an fs-style error (code, errno, syscall). fd must stay open and buf untouched until it settles. */
  preadCrc32c(fd: number, buf: Bytes, position: number): Promise<{ bytesRead: number; crc: number }>;
  /** A CUDA context on every NVIDIA GPU the driver sees, held until exit (gpu_clock.c; once a process): how many, and why none. */
  holdCudaContexts(): { held: number; reason: string };
}

// The package root: three up from src/ or dist/, four from dist-bench/src/ (the built benches).
const UP3 = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const ROOT = basename(UP3) === "dist-bench" ? dirname(UP3) : UP3;
const ADDON_PATH = join(ROOT, "native", "build", "Release", "moestream_native.node");

let loaded: NativeAddon | undefined;
let tried = false;
let failure: string | undefined;

/** The native addon, or undefined when it is not built or cannot be loaded here (see nativeAddonError). */
export function loadNativeAddon(): NativeAddon | undefined {
  if (tried) return loaded;
  tried = true;
  if (!existsSync(ADDON_PATH)) {
    failure = `not built: ${ADDON_PATH} is missing (npm run build:native)`;
    return undefined;
  }
  try {
    loaded = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (e) {
    failure = `cannot load ${ADDON_PATH}: ${(e as Error).message}`;
  }
  return loaded;
}

/** Why loadNativeAddon() returned undefined, if it did. */
export function nativeAddonError(): string | undefined {
  loadNativeAddon();
  return failure;
}
