// Architectures by GGUF general.architecture. Each entry is one small model file.
import type { Backend, Weight } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import type { KVCache } from "../kv/kv-cache.js";
import { ModelError } from "../util/errors.js";
import * as qwen3moe from "./qwen3moe.js";

/** What the engine needs from a loaded architecture, whatever it is. */
export interface MoeModel {
  readonly hp: qwen3moe.Qwen3MoeHParams;
  forward(tokens: Int32Array, kv: KVCache, opts: qwen3moe.ForwardOptions): Promise<Float32Array>;
}

export interface Architecture {
  name: string;
  readHParams(md: GGUFMetadata, nVocab: number): qwen3moe.Qwen3MoeHParams;
  denseTensors(hp: qwen3moe.Qwen3MoeHParams): qwen3moe.TensorSpec[];
  expertTensors(hp: qwen3moe.Qwen3MoeHParams, layer: number): { gate: qwen3moe.TensorSpec; up: qwen3moe.TensorSpec; down: qwen3moe.TensorSpec };
  create(hp: qwen3moe.Qwen3MoeHParams, backend: Backend, weights: Map<string, Weight>, experts: ExpertSource): MoeModel;
}

const ARCHITECTURES: Record<string, Architecture> = {
  [qwen3moe.ARCH]: {
    name: qwen3moe.ARCH,
    readHParams: qwen3moe.readHParams,
    denseTensors: qwen3moe.denseTensors,
    expertTensors: qwen3moe.expertTensors,
    create: (hp, backend, weights, experts) => new qwen3moe.Qwen3Moe(hp, backend, weights, experts),
  },
};

export function architecture(name: string): Architecture {
  const a = ARCHITECTURES[name];
  if (!a) throw new ModelError("unsupported_architecture", `unsupported architecture '${name}' (supported: ${Object.keys(ARCHITECTURES).join(", ")})`);
  return a;
}
