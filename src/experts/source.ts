// What a model asks of expert storage: the routed ids of one layer are the I/O request.
import type { Weight } from "../backends/backend.js";

/**
 * One expert's parts by name, each as prepared by the backend: the names and shapes are the
 * architecture's (its expert tensor layout). Today's qwen3moe parts are gate [nEmbd, nFf] (nFf rows of
 * nEmbd), up [nEmbd, nFf] and down [nFf, nEmbd]; others may fuse them (gate_up) or add 1-D biases.
 */
export type ExpertWeights = Readonly<Record<string, Weight>>;

export interface ExpertSource {
  /** Most distinct experts one acquire() may hold at once (cache slots); callers split larger batches. */
  readonly capacity?: number;
  /** Weights of `ids` in `layer`, in the order asked; valid until release() of the same call. */
  acquire(layer: number, ids: readonly number[]): Promise<ExpertWeights[]>;
  release(layer: number, ids: readonly number[]): void;
  /** Optional hint: `layer` will probably ask for `ids` soon (router lookahead from `depth` layers before it); start reading them. */
  prefetch?(layer: number, ids: readonly number[], depth?: number): void;
  /** How many layers ahead the model should predict for prefetch() (absent: 1 when prefetch exists). */
  readonly prefetchDepth?: number;
}

