// Opens a GGUF, checks every tensor against the architecture's declaration, and builds the model:
// the one place that picks concrete backends and expert sources.
import type { Backend, HostWeight, Weight } from "../backends/backend.js";
import { ScalarBackend } from "../backends/cpu/scalar.js";
import { ResidentExperts, type StackedExperts } from "../experts/resident.js";
import { openGGUF, readTensorBytes, metaString } from "../format/gguf/read.js";
import type { GGUFFile } from "../format/gguf/types.js";
import { architecture, type MoeModel } from "../models/registry.js";
import { checkShape, type TensorSpec } from "../models/qwen3moe.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { existsSync } from "node:fs";
import { ModelError, UsageError } from "../util/errors.js";
import type { EngineConfig } from "./config.js";

export interface LoadedModel {
  readonly path: string;
  readonly file: GGUFFile;
  readonly arch: string;
  readonly model: MoeModel;
  readonly tokenizer: Tokenizer;
  readonly backend: Backend;
  readonly config: EngineConfig;
  close(): Promise<void>;
}

export interface LoadProgress {
  (doneBytes: number, totalBytes: number): void;
}

function createBackend(cfg: EngineConfig): Backend {
  switch (cfg.backend) {
    case "auto":
    case "scalar":
      return new ScalarBackend();
  }
}

export async function loadModel(path: string, cfg: EngineConfig, onProgress?: LoadProgress): Promise<LoadedModel> {
  if (!existsSync(path)) throw new UsageError("model_not_found", `model file not found: ${path}`);
  const file = await openGGUF(path);
  try {
    const archName = metaString(file, "general.architecture");
    const arch = architecture(archName);
    const tokenizer = Tokenizer.fromMetadata(file.metadata);
    const byName = new Map(file.tensors.map((t) => [t.name, t]));
    const embd = byName.get("token_embd.weight");
    if (!embd) throw new ModelError("missing_tensor", `${path}: required tensor 'token_embd.weight' not found`);
    const nVocab = embd.shape[1];
    if (tokenizer.vocabSize !== nVocab) {
      throw new ModelError("bad_vocab", `${path}: tokenizer has ${tokenizer.vocabSize} tokens but token_embd.weight has ${nVocab} rows`);
    }
    const hp = arch.readHParams(file.metadata, nVocab);
    const backend = createBackend(cfg);

    const dense = arch.denseTensors(hp);
    const experts = Array.from({ length: hp.nLayer }, (_, i) => arch.expertTensors(hp, i));
    const all: TensorSpec[] = [...dense, ...experts.flatMap((e) => [e.gate, e.up, e.down])];
    for (const spec of all) {
      const t = byName.get(spec.name);
      if (!t) {
        if (spec.optional) continue;
        throw new ModelError("missing_tensor", `${path}: required tensor '${spec.name}' not found`);
      }
      checkShape(spec, t);
      if (!backend.supports("matmul", t.type)) throw new ModelError("unsupported_type", `${path}: tensor '${t.name}' has type ${t.type}, which backend '${backend.name}' cannot run`);
    }

    const totalBytes = all.reduce((a, s) => a + (byName.get(s.name)?.byteLength ?? 0), 0);
    let doneBytes = 0;
    const read = async (name: string): Promise<HostWeight> => {
      const t = byName.get(name)!;
      const bytes = await readTensorBytes(file, t);
      doneBytes += bytes.byteLength;
      onProgress?.(doneBytes, totalBytes);
      return { name, type: t.type, shape: t.shape, bytes };
    };

    const weights = new Map<string, Weight>();
    for (const spec of dense) if (byName.has(spec.name)) weights.set(spec.name, backend.upload(await read(spec.name)));
    const stacked: StackedExperts[] = [];
    for (const e of experts) stacked.push({ gate: await read(e.gate.name), up: await read(e.up.name), down: await read(e.down.name) });
    const model = arch.create(hp, backend, weights, new ResidentExperts(backend, stacked));
    return { path, file, arch: archName, model, tokenizer, backend, config: cfg, close: () => file.source.close() };
  } catch (e) {
    await file.source.close();
    throw e;
  }
}
