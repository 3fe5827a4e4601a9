// Builds a model from dense weights plus any ExpertSource, as src/engine/load.ts does for resident experts,
// and runs it; the architecture supplies the expert tensor layout (experts/ may not import models/).
import type { Backend, Weight } from "../../src/backends/backend.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { ExpertSource } from "../../src/experts/source.js";
import { getTensor, metaString } from "../../src/format/gguf/accessors.js";
import { openGGUF, readTensorBytes } from "../../src/format/gguf/read.js";
import type { GGUFFile } from "../../src/format/gguf/types.js";
import { architecture, type Model, type ModelInfo } from "../../src/models/registry.js";
import { checkShape } from "../../src/models/tensors.js";
import { tensorsHeld } from "../../src/engine/model-check.js";

export { expertLayout } from "../../src/engine/expert-layout.js";

export interface BuiltModel {
  model: Model;
  hp: ModelInfo;
  backend: Backend;
}

/** A model over the dense tensors of `densePath` (a full GGUF or a pack's dense.gguf) and the given experts. */
export async function buildModel(densePath: string, experts: (backend: Backend, info: ModelInfo) => ExpertSource): Promise<BuiltModel> {
  const file = await openGGUF(densePath);
  try {
    const arch = architecture(metaString(file, "general.architecture"));
    const hp = arch.readHParams(file.metadata, getTensor(file, "token_embd.weight").shape[1]);
    const backend = new ScalarBackend();
    const byName = new Map(file.tensors.map((t) => [t.name, t]));
    const weights = new Map<string, Weight>();
    for (const spec of arch.tensors(hp, tensorsHeld(file)).dense) {
      const t = byName.get(spec.name);
      if (!t && spec.optional) continue;
      const info = getTensor(file, spec.name);
      checkShape(spec, info);
      weights.set(spec.name, backend.upload({ name: spec.name, type: info.type, shape: info.shape, bytes: await readTensorBytes(file, info) }));
    }
    const info = arch.info(hp);
    return { model: arch.create(hp, { backend, weights, experts: experts(backend, info) }), hp: info, backend };
  } finally {
    await file.source.close();
  }
}

/** Logits of a prompt: one batched forward ("batch", all rows) or one forward per token ("steps", last row each). */
export async function runLogits(m: BuiltModel, tokens: readonly number[], mode: "batch" | "steps"): Promise<Float32Array[]> {
  const kv = m.model.makeCache(64);
  try {
    if (mode === "batch") return [await m.model.forward(Int32Array.from(tokens), kv, { logits: "all" })];
    const out: Float32Array[] = [];
    for (const t of tokens) out.push(await m.model.forward(Int32Array.of(t), kv, { logits: "last" }));
    return out;
  } finally {
    kv.free();
  }
}
