// The contract between the engine and any architecture. The engine sees ModelInfo, never an
// architecture's hyperparameters; the model sees backend and expert-source interfaces, never their
// concrete classes.
import type { Backend, Buf, OpName, Weight } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import type { ModelCache } from "../kv/state.js";
import type { Routing } from "./routing.js";
import type { HasTensor, ModelTensors } from "./tensors.js";

/** What the engine needs to know about a model, whatever its architecture. */
export interface ModelInfo {
  arch: string;
  nLayer: number;
  nVocab: number;
  /** Width of the residual stream. */
  nEmbd: number;
  nCtxTrain: number;
  /** Routed experts of the widest MoE layer. */
  nExpert: number;
  /** Experts each token uses in a MoE layer: the fewest cache slots one acquire needs. */
  nExpertUsed: number;
}

export interface ForwardHooks {
  /** Each MoE layer's routing (the expert ids are what streaming reads) and its router logits [T, nExpert]. */
  onRoute?(layer: number, routing: Routing, routerLogits: Float32Array): void;
  /**
   * Named intermediates ("attn_norm", "ffn_moe_out", ... as llama.cpp's cb() names them) with their row
   * count, so a run can be dumped and diffed. Awaited: read the buffer before returning (it is reused).
   */
  trace?(name: string, layer: number, buf: Buf, rows: number): void | Promise<void>;
}

export interface ForwardOptions {
  /** "last": logits of the final row only [nVocab]; "all": [nTokens, nVocab]. */
  logits: "last" | "all";
  hooks?: ForwardHooks;
  /** Polled between sub-blocks: once set, the forward throws AbortedError and the cache absorbs nothing. */
  signal?: { readonly aborted: boolean };
  /**
   * The tokens' ids, known later (`tokens` then only gives their count): the forward is recorded now and runs once
   * they resolve, on a backend with embedLater (Model.recordsAhead). A decode token recorded while the one before
   * still runs.
   */
  later?: Promise<Int32Array>;
  /** Called once the whole forward is recorded and the cache holds its tokens, before its logits are awaited. */
  onRecorded?: () => void;
}

export interface Model {
  readonly info: ModelInfo;
  /** Per-layer state for a sequence of up to nCtx tokens, of the kinds this architecture needs. */
  makeCache(nCtx: number): ModelCache;
  /** Backend bytes makeCache(nCtx) will hold. */
  cacheBytes(nCtx: number): number;
  /** Run tokens at positions [cache.length, cache.length + T); the cache absorbs them; returns logits. */
  forward(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions): Promise<Float32Array>;
  /** forward() takes ForwardOptions.later (where the backend has embedLater). */
  readonly recordsAhead?: boolean;
}

/** What a model is built from: dense weights uploaded and shape-checked, a backend, an expert source. */
export interface ModelContext {
  backend: Backend;
  weights: ReadonlyMap<string, Weight>;
  experts: ExpertSource;
}

/** An architecture as the engine loads it (registry.ts builds these from each model file). */
export interface Architecture {
  readonly name: string;
  /** Hyperparameters from GGUF metadata; opaque to the engine. */
  readHParams(md: GGUFMetadata, nVocab: number): unknown;
  /** The inverse of readHParams: the metadata keys it reads, from hp (what a model writer emits). */
  metadata?(hp: unknown): GGUFMetadata;
  info(hp: unknown): ModelInfo;
  /**
   * Every tensor the model reads, with its expected shape: dense ones, and per layer its expert parts or none.
   * `has` says which tensors the file holds, where a layout has fused alternatives (absent: the unfused one).
   */
  tensors(hp: unknown, has?: HasTensor): ModelTensors;
  /** Backend bytes of the per-sequence state for nCtx tokens (budgets are set before the model exists). */
  cacheBytes(hp: unknown, nCtx: number): number;
  create(hp: unknown, ctx: ModelContext): Model;
  /** Ops beyond the shared layers' (LAYER_OPS) that every file of this architecture runs, asked of the backend at load. */
  readonly ops?: readonly OpName[];
}
