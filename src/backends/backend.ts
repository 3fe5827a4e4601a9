// The narrow interface every compute backend implements (scalar reference, fast CPU, WebGPU).
// Ops are enqueued in order; only read() waits for results, so a GPU backend can batch submissions.
// Shapes use row-major [rows, cols] for activations; weights keep ggml order: shape [K, N] is N rows of K.
import { rowBytes } from "../quant/index.js";

/** A weight as it sits in host memory: raw ggml-encoded bytes. */
export interface HostWeight {
  readonly name: string;
  /** ggml type id. */
  readonly type: number;
  /** ggml order: shape[0] = K (values per row), shape[1] = N (rows). */
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
  /**
   * The bytes belong to this upload alone (read for it, seen by nothing else): a backend may rewrite them in place,
   * e.g. the native backend repacks Q4_K rows into its interleaved layout. Without it the bytes are only read.
   */
  readonly owned?: boolean;
}

/** A weight prepared for a backend (may live on a device). */
export interface Weight {
  readonly name: string;
  readonly type: number;
  readonly shape: readonly number[];
}

/** What a weight is, before it has bytes in backend memory. */
export interface WeightDesc {
  readonly name: string;
  /** ggml type id. */
  readonly type: number;
  /** ggml order: shape[0] = K (values per row), shape[1] = N (rows). */
  readonly shape: readonly number[];
}

/**
 * Weight memory the caller owns and frees: bytes go in through write() (or straight into `host` on host
 * backends, so file reads land in place), view() binds a weight over a range. A backend's private layout
 * (a repack) is applied by view(), in the arena, and never shows in the Weight's type.
 */
export interface WeightArena {
  readonly byteLength: number;
  /** Host backends: the arena's bytes themselves. Absent where the memory is the backend's own (wasm, a GPU). */
  readonly host?: Uint8Array;
  write(offset: number, src: Uint8Array): void;
  /** A weight over bytes [offset, offset + its size), written before; valid until free(). */
  view(w: WeightDesc, offset: number): Weight;
  free(): void;
}

/** A buffer of f32 activations owned by a backend. */
export interface Buf {
  readonly length: number;
}

export type OpName = "embed" | "matmul" | "rmsnorm" | "rope" | "kv_store" | "attention" | "add" | "swiglu" | "gather_rows" | "scatter_add_rows" | "add_rows" | "expert_ffn" | "moe_ffn" | "copy" | "matmul_heads"
  | "conv_silu" | "l2_norm" | "delta_gates" | "delta_net" | "rmsnorm_gated" | "sigmoid_mul" | "swiglu_oai";

/**
 * llama.cpp's rope_yarn (ggml_rope_ext's freq_scale, ext_factor, attn_factor, beta_fast, beta_slow, n_ctx_orig):
 * pair i's angle mixes the interpolated θ·freqScale and the original θ by a ramp over the YaRN correction dims
 * [lo, hi] (weight extFactor), and cos/sin are multiplied by attnFactor, times 1 + 0.1·ln(1/freqScale) when
 * extFactor ≠ 0. With freqScale 1, extFactor 0, attnFactor 1 it is the plain rope.
 */
export interface YarnParams {
  freqScale: number;
  extFactor: number;
  attnFactor: number;
  betaFast: number;
  betaSlow: number;
  /** rope.scaling.original_context_length. */
  nCtxOrig: number;
}

/** Rope variants beyond the default NeoX over the first nRot values of each head. */
export interface RopeOptions {
  /** "neox" (default) rotates pairs (i, i + nRot/2); "norm" (llama.cpp's NORMAL: Llama, DeepSeek) pairs (2i, 2i + 1). */
  mode?: "neox" | "norm";
  /** First rotated value of each head (default 0; DeepSeek ropes the last nRot values of a head). */
  offset?: number;
  yarn?: YarnParams;
}

/** A strided copy of rows (a ggml view copied): values [src.offset + r·src.stride, + n) go to [dst.offset + r·dst.stride, + n). */
export interface CopyParams {
  rows: number;
  /** Values per row. */
  n: number;
  src: { offset: number; stride: number };
  dst: { offset: number; stride: number };
  /** Round each value to f16 on the way (a store into llama.cpp's f16 cache, or the f16 conversion of an operand). */
  roundF16?: boolean;
}

export interface AttentionParams {
  /** Query rows in this batch. */
  nTokens: number;
  /** Cache position of the first query row; row t attends to cache positions [0, startPos + t]. */
  startPos: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  scale: number;
  /**
   * Optional attention sinks (gpt-oss): one logit per query head ([nHead]) that joins each softmax denominator
   * and weights no value: p_j = exp(s_j - m) / (Σ_i exp(s_i - m) + exp(sink_h - m)), m = max(max_i s_i, sink_h).
   */
  sinks?: Float32Array | Weight;
  /**
   * Sliding window (gpt-oss's SWA layers): row t attends only to cache positions p with (startPos + t) − p < window,
   * as llama.cpp's standard SWA mask (is_masked_swa: p1 − p0 ≥ n_swa is masked). Absent: the whole causal prefix.
   */
  window?: number;
  /**
   * Values per head taken from the front of each V head row (default headDim): MLA reads V as a prefix view of
   * its K rows (DeepSeek: vCache is kCache, 512 of each 576); out is then [T, nHead * vDim].
   */
  vDim?: number;
  /** Round the normalised probabilities to f16 before they weight V, as llama.cpp's V product over its f16 cache does. */
  f16Probs?: boolean;
}

/** The gated delta rule (Qwen3-Next / Qwen3.5 linear attention) over nTokens rows, one state per value head. */
export interface DeltaNetParams {
  nTokens: number;
  /** Query/key heads (ssm.group_count) and value heads (ssm.time_step_rank), a multiple of nHeadK. */
  nHeadK: number;
  nHeadV: number;
  /** Values per head, keys and values alike (ssm.state_size). */
  headDim: number;
  /**
   * Which q/k head value head j reads: "interleave" j / (nHeadV / nHeadK) (Qwen3-Next, llama.cpp's repeat of
   * each head), "tile" j mod nHeadK (Qwen3.5, whose converter reordered the value heads).
   */
  kvMap: "interleave" | "tile";
}

export interface Backend {
  readonly name: string;
  /** Whether this backend runs `op` (for weights of ggml type `type`, when given). */
  supports(op: OpName, type?: number): boolean;
  /** A supported op this backend hands to the scalar reference (no fast kernel yet): load warns, once per type. */
  delegates?(op: OpName, type?: number): boolean;

  /**
   * True where weights live in memory of the backend's own (wasm linear memory, a GPU): binding host bytes
   * copies them, so a cached expert costs its bytes twice. False on CPU backends: weights are views of host bytes.
   */
  readonly deviceWeights: boolean;
  /** A weight for the backend's lifetime (tests, small tensors); memory that comes and goes uses allocWeights. */
  upload(w: HostWeight): Weight;
  /** Weight memory of `bytes`, released by its free(). */
  allocWeights(bytes: number): WeightArena;
  alloc(length: number): Buf;
  write(dst: Buf, src: Float32Array, dstOffset?: number): void;
  /** Host copy of a buffer (the caller owns it). Each call is one host sync on a device. */
  read(src: Buf): Promise<Float32Array>;
  /**
   * Several buffers in one host sync (a layer's router and its lookahead routers). `idle`: host work to overlap
   * the device's (a split tier's admissions), called once the read's work is on its way, before waiting for it;
   * a backend with nothing to wait for may skip it.
   */
  readMany(srcs: readonly Buf[], idle?: () => void): Promise<Float32Array[]>;
  free(buf: Buf): void;

  /** out[t, :] = row ids[t] of table (shape [D, vocab]). */
  embed(out: Buf, table: Weight, ids: Int32Array): void;
  /**
   * Optional (a device that runs recorded work later): embed's rows for nTokens ids that `ids` resolves to later,
   * so a decode token is recorded while the token before it still runs. Nothing recorded from here on reaches the
   * device before `ids` resolves (a read waits for it); `ids` must resolve, to ids in range (a rejection or a bad id
   * fails the backend, whose recorded work can no longer run).
   */
  embedLater?(out: Buf, table: Weight, nTokens: number, ids: Promise<Int32Array>): void;
  /** With embedLater: true while an embedLater's ids are not in yet (another cannot begin until they are). */
  readonly waitingForIds?: boolean;
  /** out[T, N] = x[T, K] · Wᵀ for W of shape [K, N]. */
  matmul(out: Buf, w: Weight, x: Buf, nTokens: number): void;
  /** For nRows rows of rowLen values: out = x / sqrt(mean(x²) + eps) * w (w: f32 of rowLen). out may alias x. */
  rmsNorm(out: Buf, x: Buf, w: Weight, eps: number, rowLen: number, nRows: number): void;
  /**
   * NeoX rotary embedding in place on x[T, nHead, headDim]; row t has position pos[t]. Only the first nRot
   * values of each head rotate (default all; GLM-4.5 ropes 64 of 128), as pairs (i, i + nRot/2) at angle
   * pos * freqBase^(-2i/nRot); the rest pass through.
   */
  rope(x: Buf, pos: Int32Array, nHead: number, headDim: number, freqBase: number, nRot?: number, opts?: RopeOptions): void;
  /** Strided row copy out <- x (see CopyParams); out and x must not overlap. */
  copy(out: Buf, x: Buf, p: CopyParams): void;
  /**
   * A 3-D weight applied per head (ggml_mul_mat broadcast over ne2; DeepSeek's attn_k_b / attn_v_b):
   * w of shape [K, N, nHead], x[T, nHead, K] -> out[T, nHead, N] with out[t, h] = W_h · x[t, h].
   */
  matmulHeads(out: Buf, w: Weight, x: Buf, nTokens: number): void;
  /** Copy k, v rows [T, kvDim] into cache rows [startPos, startPos + T). */
  kvStore(kCache: Buf, vCache: Buf, k: Buf, v: Buf, startPos: number, nTokens: number, kvDim: number): void;
  /** Causal grouped-query attention of q[T, nHead, headDim] against the cache; out[T, nHead * headDim]. */
  attention(out: Buf, q: Buf, kCache: Buf, vCache: Buf, p: AttentionParams): void;
  /** out[0..n) = a + b (out may alias a). */
  add(out: Buf, a: Buf, b: Buf, n: number): void;
  /** out[0..n) = silu(gate) * up (out may alias gate). */
  swiglu(out: Buf, gate: Buf, up: Buf, n: number): void;
  /**
   * gpt-oss's clamped SwiGLU (ggml's swiglu_oai): g = min(gate, limit), u = clamp(up, −limit, limit),
   * out = g · sigmoid(alpha · g) · (u + 1) over n values (out may alias gate).
   */
  swigluOai(out: Buf, gate: Buf, up: Buf, n: number, alpha: number, limit: number): void;
  /** out[i, :] = x[rows[i], :]. */
  gatherRows(out: Buf, x: Buf, rows: Int32Array, rowLen: number): void;
  /** out[rows[i], :] += scales[i] * x[i, :]. */
  scatterAddRows(out: Buf, x: Buf, rows: Int32Array, scales: Float32Array, rowLen: number): void;
  /** out[r, :] += bias for r < nRows (bias: a 1-D weight of rowLen values). */
  addRows(out: Buf, bias: Weight, rowLen: number, nRows: number): void;
  /** out[:] = 0. */
  zero(out: Buf): void;

  // Linear attention (gated DeltaNet), llama.cpp's ssm_conv / l2_norm / gated_delta_net.
  /**
   * Causal depthwise conv1d then SiLU over x[T, C]: out[t, c] = silu(Σ_j w[c, j] · win[t + j, c]) where win is
   * the state's kernel-1 earlier raw inputs of channel c (oldest first) followed by x's rows; w is ggml
   * {kernel, C} (row c = channel c's taps, oldest first). state [C, kernel-1] then holds the last kernel-1 inputs.
   */
  convSilu(out: Buf, x: Buf, state: Buf, w: Weight, nTokens: number, channels: number): void;
  /** For nRows rows of rowLen values: out = x / sqrt(Σx² + eps) (out may alias x). */
  l2Norm(out: Buf, x: Buf, eps: number, rowLen: number, nRows: number): void;
  /**
   * Per row r and head h of [nRows, nHead]: beta = sigmoid(betaRaw), g = softplus(alpha + dtBias[h]) · a[h]
   * (a log-decay; a = ssm_a = −exp(A_log) ≤ 0). g may alias alpha, beta betaRaw.
   */
  deltaGates(g: Buf, beta: Buf, alpha: Buf, betaRaw: Buf, dtBias: Weight, a: Weight, nHead: number, nRows: number): void;
  /**
   * The gated delta rule, token by token, for q, k [T, nHeadK, S] (L2-normed), v [T, nHeadV, S], g and beta
   * [T, nHeadV]; state [nHeadV, S, S] holds M_j with M_j[i][c] at j·S² + i·S + c (i: value index, c: key index):
   * M ← exp(g)·M; M ← M + β (v − M k) kᵀ; out[t, j] = M q / sqrt(S). The final states go to stateOut: `state`
   * itself (in place) or another buffer, `state` then left unchanged (a forward that fails keeps the old one).
   */
  gatedDeltaNet(out: Buf, q: Buf, k: Buf, v: Buf, g: Buf, beta: Buf, state: Buf, stateOut: Buf, p: DeltaNetParams): void;
  /** Gated RMSNorm over nRows rows of rowLen: out = x / sqrt(mean(x²) + eps) · w · silu(gate) (w: rowLen values; out may alias x). */
  rmsNormGated(out: Buf, x: Buf, w: Weight, gate: Buf, eps: number, rowLen: number, nRows: number): void;
  /** out[0..n) = x · sigmoid(gate) (out may alias x): the gated attention's output gate. */
  sigmoidMul(out: Buf, x: Buf, gate: Buf, n: number): void;

  /**
   * Optional fused expert FFN over nRows rows: out[n, D] = down(silu(gate x) * up x) for x[n, D]
   * (gate/up [D, F], down [F, D]); equal to matmul, matmul, swiglu, matmul run separately.
   */
  expertFfn?(out: Buf, x: Buf, gate: Weight, up: Weight, down: Weight, nRows: number): void;
  /**
   * Optional: a MoE layer's routed experts at once, so a threaded backend splits all their rows in one run:
   * out[rows[i]] += scales[i] * down(silu(gate x[rows[i]]) * up x[rows[i]]) for each expert in order; equal to
   * gatherRows, the FFN and scatterAddRows per expert.
   */
  moeFfn?(out: Buf, x: Buf, experts: readonly ExpertRows[]): void;
  /**
   * Optional: moeFfn off the calling thread, the same sums bit for bit; settles once out holds them. Nothing it
   * reads or writes (out, x, the experts' weights, rows and scales) may change or be freed until then.
   */
  moeFfnAsync?(out: Buf, x: Buf, experts: readonly ExpertRows[]): Promise<void>;
  /** Optional: work comes within about a millisecond (a split tier's host experts, once the routing is back): wake its threads now. */
  wake?(): void;
  /**
   * Optional (a GPU): out's first n values += `values` once they come (the same bits as writing them, then add), in
   * order with the ops recorded around the call; work recorded after it waits for them, so the host computes them
   * while recording goes on. Values that never come add nothing and make the next read throw their error. Returns
   * a promise that settles (never rejects) once the values are in place or known never to come.
   */
  addLater?(out: Buf, n: number, values: Promise<Float32Array>): Promise<void>;
  /** With addLater: forget the error of values that never came, so no later read throws it (a failed forward's). */
  dropLateError?(): void;
  /**
   * Optional (a GPU): routing as a device op, so a layer whose experts are all on the device needs no host read.
   * Records softmax top-k of `logits` [nTokens, spec.nExpert]; with `resident` (every expert of the layer, by id)
   * it also writes the pair tables moeRouted runs from. Read `route.buf` for the ids and weights (decodeRoute).
   */
  routeOnDevice?(logits: Buf, nTokens: number, spec: RouteSpec, resident?: readonly ExpertParts[]): DeviceRoute;
  /**
   * Optional, with routeOnDevice: out = the routed experts of `route` (made with `resident`) weighted and summed in
   * ascending expert order from 0, the same additions as zero and moeFfn; nothing read back.
   */
  moeRouted?(out: Buf, x: Buf, route: DeviceRoute): void;
  /**
   * Optional (a GPU, where each op is a dispatch): attention's per-head RMS norms of q [T, nHead, headDim] and k
   * [T, nHeadKv, headDim] (qNorm, kNorm: [headDim]), NeoX rope over each head's first nRot values, in place, then
   * k's and v's rows into the caches at startPos; equal to rmsNorm, rope and kvStore run separately.
   */
  normRopeStore?(q: Buf, k: Buf, v: Buf, p: NormRopeStoreParams): void;
  /**
   * Optional (a GPU's dispatch count): one decode token's normRopeStore and its attention (no sinks, window or f16
   * rounding) as one op: out [nHead * headDim], equal to the two run in turn; q and k are not written. False when
   * the backend cannot fuse these shapes: then it did nothing.
   */
  normRopeAttention?(out: Buf, q: Buf, k: Buf, v: Buf, p: NormRopeStoreParams & { readonly scale: number }): boolean;
  /**
   * Optional (a GPU's dispatch count): x += y, then h = rmsNorm(x) · w over nRows rows of rowLen; equal to add and
   * rmsNorm run separately (x, y, h: three buffers).
   */
  addRmsNorm?(x: Buf, y: Buf, h: Buf, w: Weight, eps: number, rowLen: number, nRows: number): void;
  /** Optional: a forward pass lets the event loop run every this many layers (a backend whose ops return at once). */
  readonly breatheEvery?: number;
  /** Optional: several weights over the same x in one call (attention's q, k, v): outs[i] = x · ws[i]ᵀ, as matmul each. */
  matmulSet?(outs: readonly Buf[], ws: readonly Weight[], x: Buf, nTokens: number): void;
  /**
   * Optional: zeroed host memory for weight bytes this backend's kernels will stream in place (the native
   * backend hands out transparent huge pages where Linux has them). Write it before reading it: the pages are
   * only mapped on first touch.
   */
  allocHost?(bytes: number): Uint8Array;
  /**
   * Optional: give an owned upload's bytes back as they came (undoing a repack in place), for the caller to read or
   * upload elsewhere; `w` is not used again. Backends that never rewrite owned bytes lack it.
   */
  disown?(w: Weight): void;
  /**
   * Optional: src's bytes into the start of dst, faster than one thread's set() (the native backend copies on its
   * thread pool). A GPU backend's uploads through mapped staging take it from the CPU backend beside it (copyBytes is the GPU's own copy).
   */
  hostCopyBytes?(dst: Uint8Array, src: Uint8Array): void;
  /** Release what the backend holds beyond its buffers (worker threads); optional. */
  close?(): void;
}

/**
 * A backend that accelerates some ops and hands every other one to a reference backend whose buffers and
 * host weights it shares (the native and wasm backends over the scalar one). Subclasses override what they run.
 */
export abstract class DelegatingBackend implements Backend {
  abstract readonly name: string;
  constructor(protected readonly ref: Backend) {}

  get deviceWeights(): boolean {
    return false;
  }
  supports(op: OpName, type?: number): boolean {
    return this.ref.supports(op, type);
  }
  upload(w: HostWeight): Weight {
    return this.ref.upload(w);
  }
  allocWeights(bytes: number): WeightArena {
    return new HostArena(this, bytes);
  }
  alloc(length: number): Buf {
    return this.ref.alloc(length);
  }
  write(dst: Buf, src: Float32Array, dstOffset?: number): void {
    this.ref.write(dst, src, dstOffset);
  }
  read(src: Buf): Promise<Float32Array> {
    return this.ref.read(src);
  }
  readMany(srcs: readonly Buf[], idle?: () => void): Promise<Float32Array[]> {
    return this.ref.readMany(srcs, idle);
  }
  free(buf: Buf): void {
    this.ref.free(buf);
  }
  embed(out: Buf, table: Weight, ids: Int32Array): void {
    this.ref.embed(out, table, ids);
  }
  matmul(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    this.ref.matmul(out, w, x, nTokens);
  }
  rmsNorm(out: Buf, x: Buf, w: Weight, eps: number, rowLen: number, nRows: number): void {
    this.ref.rmsNorm(out, x, w, eps, rowLen, nRows);
  }
  rope(x: Buf, pos: Int32Array, nHead: number, headDim: number, freqBase: number, nRot?: number, opts?: RopeOptions): void {
    this.ref.rope(x, pos, nHead, headDim, freqBase, nRot, opts);
  }
  copy(out: Buf, x: Buf, p: CopyParams): void {
    this.ref.copy(out, x, p);
  }
  matmulHeads(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    this.ref.matmulHeads(out, w, x, nTokens);
  }
  kvStore(kCache: Buf, vCache: Buf, k: Buf, v: Buf, startPos: number, nTokens: number, kvDim: number): void {
    this.ref.kvStore(kCache, vCache, k, v, startPos, nTokens, kvDim);
  }
  attention(out: Buf, q: Buf, kCache: Buf, vCache: Buf, p: AttentionParams): void {
    this.ref.attention(out, q, kCache, vCache, p);
  }
  add(out: Buf, a: Buf, b: Buf, n: number): void {
    this.ref.add(out, a, b, n);
  }
  swiglu(out: Buf, gate: Buf, up: Buf, n: number): void {
    this.ref.swiglu(out, gate, up, n);
  }
  swigluOai(out: Buf, gate: Buf, up: Buf, n: number, alpha: number, limit: number): void {
    this.ref.swigluOai(out, gate, up, n, alpha, limit);
  }
  gatherRows(out: Buf, x: Buf, rows: Int32Array, rowLen: number): void {
    this.ref.gatherRows(out, x, rows, rowLen);
  }
  scatterAddRows(out: Buf, x: Buf, rows: Int32Array, scales: Float32Array, rowLen: number): void {
    this.ref.scatterAddRows(out, x, rows, scales, rowLen);
  }
  addRows(out: Buf, bias: Weight, rowLen: number, nRows: number): void {
    this.ref.addRows(out, bias, rowLen, nRows);
  }
  zero(out: Buf): void {
    this.ref.zero(out);
  }
  convSilu(out: Buf, x: Buf, state: Buf, w: Weight, nTokens: number, channels: number): void {
    this.ref.convSilu(out, x, state, w, nTokens, channels);
  }
  l2Norm(out: Buf, x: Buf, eps: number, rowLen: number, nRows: number): void {
    this.ref.l2Norm(out, x, eps, rowLen, nRows);
  }
  deltaGates(g: Buf, beta: Buf, alpha: Buf, betaRaw: Buf, dtBias: Weight, a: Weight, nHead: number, nRows: number): void {
    this.ref.deltaGates(g, beta, alpha, betaRaw, dtBias, a, nHead, nRows);
  }
  gatedDeltaNet(out: Buf, q: Buf, k: Buf, v: Buf, g: Buf, beta: Buf, state: Buf, stateOut: Buf, p: DeltaNetParams): void {
    this.ref.gatedDeltaNet(out, q, k, v, g, beta, state, stateOut, p);
  }
  rmsNormGated(out: Buf, x: Buf, w: Weight, gate: Buf, eps: number, rowLen: number, nRows: number): void {
    this.ref.rmsNormGated(out, x, w, gate, eps, rowLen, nRows);
  }
  sigmoidMul(out: Buf, x: Buf, gate: Buf, n: number): void {
    this.ref.sigmoidMul(out, x, gate, n);
  }
}

/** One routed expert's share of a MoE layer: its weights, the token rows it serves and their routing weights. */
export interface NormRopeStoreParams {
  readonly qNorm: Weight;
  readonly kNorm: Weight;
  readonly eps: number;
  readonly pos: Int32Array;
  readonly nHead: number;
  readonly nHeadKv: number;
  readonly headDim: number;
  readonly freqBase: number;
  readonly nRot: number;
  readonly kCache: Buf;
  readonly vCache: Buf;
  readonly startPos: number;
}

/** Softmax over nExpert router logits, the top k (ties to the lower id), weights renormalised to sum 1 or not. */
export interface RouteSpec {
  readonly nExpert: number;
  readonly k: number;
  readonly normalize: boolean;
}

/** A routing made on the device: `buf` holds each token's k ids (in score order) then their k weights (f32 bits). */
export interface DeviceRoute {
  readonly buf: Buf;
  readonly nTokens: number;
  readonly k: number;
  /** The pair tables for moeRouted were written (every expert of the layer sat where one dispatch reads it). */
  readonly tables: boolean;
}

/** A routing's ids and weights from the words of DeviceRoute.buf as read back. */
export function decodeRoute(r: DeviceRoute, words: Float32Array): { ids: Int32Array; weights: Float32Array } {
  const P = r.nTokens * r.k;
  return { ids: new Int32Array(words.buffer, words.byteOffset, P).slice(), weights: words.slice(P, 2 * P) };
}

/** An expert's SwiGLU parts. */
export interface ExpertParts {
  readonly gate: Weight;
  readonly up: Weight;
  readonly down: Weight;
}

export interface ExpertRows {
  gate: Weight; // [D, F]
  up: Weight; // [D, F]
  down: Weight; // [F, D]
  rows: Int32Array;
  scales: Float32Array;
}

/**
 * Weight memory of a host backend: host bytes (huge pages where the backend has them); view() is an owned
 * upload of the range, so a backend may rewrite it into its layout in place. Freed by dropping it.
 */
export class HostArena implements WeightArena {
  readonly host: Uint8Array;
  private freed = false;
  constructor(private readonly be: Backend, readonly byteLength: number) {
    this.host = allocHost(be, byteLength);
  }
  write(offset: number, src: Uint8Array): void {
    this.check(offset, src.byteLength);
    this.host.set(src, offset);
  }
  view(w: WeightDesc, offset: number): Weight {
    const n = tensorBytes(w);
    this.check(offset, n);
    return this.be.upload({ ...w, bytes: this.host.subarray(offset, offset + n), owned: true });
  }
  free(): void {
    this.freed = true;
  }
  private check(offset: number, n: number): void {
    if (this.freed) throw new Error("weight arena used after free()");
    if (!(offset >= 0 && offset + n <= this.byteLength)) throw new RangeError(`weight arena range [${offset}, ${offset + n}) outside its ${this.byteLength} bytes`);
  }
}

/** Bytes of a weight in its ggml encoding: its rows of shape[0] values. */
export function tensorBytes(w: WeightDesc): number {
  return rowBytes(w.type, w.shape[0]) * w.shape.slice(1).reduce((a, b) => a * b, 1);
}

/** Host memory for weight bytes: the backend's own (see Backend.allocHost), else a plain array. */
export function allocHost(be: Backend, bytes: number): Uint8Array {
  return be.allocHost?.(bytes) ?? new Uint8Array(bytes);
}

/** Rows and values per row of a matrix; a vector [K] is one row, as ggml's ne1 = 1 (Qwen3-Next's shared-expert gate). */
export function weightDims(w: { name: string; shape: readonly number[] }): { k: number; n: number } {
  if (w.shape.length === 1) return { k: w.shape[0], n: 1 };
  if (w.shape.length !== 2) throw new Error(`weight '${w.name}' is not 1-D or 2-D: shape [${w.shape.join(", ")}]`);
  return { k: w.shape[0], n: w.shape[1] };
}

/** [K, N, nHead] of a 3-D weight applied per head (matmulHeads); refuses another rank. */
export function heads3d(w: { name: string; shape: readonly number[] }): [number, number, number] {
  if (w.shape.length !== 3) throw new Error(`weight '${w.name}' is not 3-D: shape [${w.shape.join(", ")}]`);
  return [w.shape[0], w.shape[1], w.shape[2]];
}

/** Whether rope options ask for no more than NeoX over each head's first nRot values (what the fast kernels run). */
export function ropeIsPlain(o?: RopeOptions): boolean {
  return !o || ((o.mode ?? "neox") === "neox" && !o.offset && !o.yarn);
}

/**
 * cos/sin of pair i's angle at position p, as ggml's rope_yarn computes them (ggml_rope_yarn_corr_dims for the
 * ramp's ends, rounded outward: floor / ceil); without yarn, plain θ = p·base^(−2i/nRot).
 */
export function ropeAngles(nRot: number, freqBase: number, yarn?: YarnParams): (p: number, i: number) => { cos: number; sin: number } {
  if (!yarn) {
    return (p, i) => {
      const th = p * Math.pow(freqBase, (-2 * i) / nRot);
      return { cos: Math.cos(th), sin: Math.sin(th) };
    };
  }
  const { freqScale: fs, extFactor: ext, attnFactor } = yarn;
  const corr = (beta: number) => (nRot * Math.log(yarn.nCtxOrig / (beta * 2 * Math.PI))) / (2 * Math.log(freqBase));
  const lo = Math.max(0, Math.floor(corr(yarn.betaFast))), hi = Math.min(nRot - 1, Math.ceil(corr(yarn.betaSlow)));
  const mscale = ext !== 0 ? attnFactor * (1 + 0.1 * Math.log(1 / fs)) : attnFactor;
  return (p, i) => {
    const thExt = p * Math.pow(freqBase, (-2 * i) / nRot);
    let th = fs * thExt;
    if (ext !== 0) {
      const mix = (1 - Math.min(1, Math.max(0, (i - lo) / Math.max(0.001, hi - lo)))) * ext;
      th = th * (1 - mix) + thExt * mix;
    }
    return { cos: Math.cos(th) * mscale, sin: Math.sin(th) * mscale };
  };
}

/** cos / sin of every (token, pair) as ropeAngles gives them: [pos.length][nRot / 2][cos, sin], for kernels that rotate from a table. */
export function ropeTable(pos: Int32Array, nRot: number, freqBase: number, yarn?: YarnParams): Float64Array {
  const angle = ropeAngles(nRot, freqBase, yarn), half = nRot / 2, cs = new Float64Array(pos.length * nRot);
  for (let t = 0; t < pos.length; t++)
    for (let i = 0; i < half; i++) {
      const { cos, sin } = angle(pos[t], i);
      cs[(t * half + i) * 2] = cos;
      cs[(t * half + i) * 2 + 1] = sin;
    }
  return cs;
}

/**
 * Partial rope through a kernel that ropes whole heads: rotating the first nRot values of each head is a full
 * rope of heads of nRot values (same pairs, same angles), so those values are gathered into [rows, nRot],
 * roped by `full`, and put back; the rest of each head is untouched.
 */
export function ropeByGather(x: Float32Array, nRows: number, headDim: number, nRot: number, full: (y: Float32Array) => void): void {
  const y = new Float32Array(nRows * nRot);
  for (let r = 0; r < nRows; r++) y.set(x.subarray(r * headDim, r * headDim + nRot), r * nRot);
  full(y);
  for (let r = 0; r < nRows; r++) x.set(y.subarray(r * nRot, (r + 1) * nRot), r * headDim);
}
