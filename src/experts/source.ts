// What a model asks of expert storage: the routed ids of one layer are the I/O request.
import type { Backend, Weight } from "../backends/backend.js";

/**
 * One expert's parts by name, each as prepared by the backend: the names and shapes are the
 * architecture's (its expert tensor layout). Today's qwen3moe parts are gate [nEmbd, nFf] (nFf rows of
 * nEmbd), up [nEmbd, nFf] and down [nFf, nEmbd]; others may fuse them (gate_up) or add 1-D biases.
 */
export type ExpertWeights = Readonly<Record<string, Weight>>;

export interface ExpertSource {
  /** Most distinct experts one acquire() may hold at once (cache slots); callers split larger batches (acquireGroups). */
  readonly capacity?: number;
  /** Weights of `ids` in `layer`, in the order asked; valid until release() of the same call. */
  acquire(layer: number, ids: readonly number[]): Promise<ExpertWeights[]>;
  release(layer: number, ids: readonly number[]): void;
  /** Optional hint: `layer` will probably ask for `ids` soon (router lookahead from `depth` layers before it); start reading them. */
  prefetch?(layer: number, ids: readonly number[], depth?: number): void;
  /**
   * Optional: every expert of `layer` by id, when all of them sit on the backend's device for good (a GPU tier
   * holding every expert): the layer may then route and run its experts there with no host read. Else undefined.
   */
  deviceLayer?(layer: number): readonly ExpertWeights[] | undefined;
  /** With deviceLayer: `lookups` expert lookups a device-routed layer made (for the source's counters). */
  countDeviceRouted?(lookups: number): void;
  /** How many layers ahead the model should predict for prefetch() (absent: 1 when prefetch exists). */
  readonly prefetchDepth?: number;
  /**
   * Optional: a device tier that runs the experts it lacks on the host instead of uploading them (llama.cpp's
   * --n-cpu-moe, chosen per expert by the cache rather than per layer).
   */
  readonly host?: HostExperts;
}

/** The host side of a split device tier: which experts run where, and host-backend weights for the rest. */
export interface HostExperts {
  /** The host backend the experts not on the device run on. */
  readonly backend: Backend;
  /** Most distinct experts one acquire() may hold (the host cache's slots). */
  readonly capacity?: number;
  /**
   * Of a layer's distinct routed `ids`, those acquire() serves from the device (on it, or admitted now: their upload
   * is recorded by that acquire; `uploads` of them) and those to run on the host. Lookups count here.
   */
  split(layer: number, ids: readonly number[]): { device: number[]; host: number[]; uploads: number };
  /** Host-backend weights of `ids` (from the host cache), valid until release(). */
  acquire(layer: number, ids: readonly number[]): Promise<ExpertWeights[]>;
  release(layer: number, ids: readonly number[]): void;
  /**
   * Upload the experts split() admitted (they ran on the host once), while the device works: the layer's read back
   * calls it once its submission is on the way. Settles when they are up (or left on the host after an error).
   */
  admitQueued?(): Promise<void>;
  /** Where set (benches), each host part adds its experts, its wall time from start to sum, and its compute's, here. */
  timing?: { parts: number; experts: number; ms: number; computeMs: number };
}

/**
 * The acquire() calls a layer's routing makes, as the bucketed MoE loop (models/qwen3moe.ts) and replay
 * cut them: its distinct experts in ascending id order, in groups of at most `capacity`.
 */
export function acquireGroups(ids: Iterable<number>, capacity: number): number[][] {
  const distinct = [...new Set(ids)].sort((a, b) => a - b);
  const cap = Math.max(1, capacity);
  const out: number[][] = [];
  for (let g = 0; g < distinct.length; g += cap) out.push(distinct.slice(g, g + cap));
  return out;
}
