// The backend is asked once, at load, for every op and weight type the model will run: one clear error
// naming what it lacks, instead of a failure (or a silent fallback) in the middle of a forward pass.
import type { Backend, OpName } from "../backends/backend.js";
import { ggmlTypeName } from "../format/gguf/ggml-types.js";
import { LAYER_OPS } from "../models/layers.js";
import { ScalarBackend } from "../backends/cpu/scalar.js";
import { ModelError, UsageError } from "../util/errors.js";

const reference = new ScalarBackend();

/** A weight the model will use: its tensor name, ggml type and rank (1 = a vector: norms, biases). */
export interface WeightUse {
  name: string;
  type: number;
  rank: number;
}

const typeName = (t: number) => {
  try {
    return ggmlTypeName(t);
  } catch {
    return `type ${t}`;
  }
};

/**
 * What each weight is used for: matrices are multiplied (token_embd is also embedded); vectors scale norms,
 * except GGUF's `*.bias` vectors, added to rows (add_rows: asked only of models that have biases, which is why
 * it is not in LAYER_OPS), attention sinks, read by attention, and the shared-expert gate vector, a one-row matmul;
 * 3-D matrices are applied per head.
 */
function opsFor(w: WeightUse): OpName[] {
  if (w.rank === 1 && w.name.endsWith(".bias")) return ["add_rows"];
  if (w.rank === 1 && w.name.endsWith("attn_sinks.weight")) return ["attention"];
  if (w.rank === 1 && w.name.endsWith("ffn_gate_inp_shexp.weight")) return ["matmul"];
  if (w.rank === 1) return ["rmsnorm"];
  if (w.rank === 3 && !/_exps\.weight$/.test(w.name)) return ["matmul_heads"]; // DeepSeek's attn_k_b / attn_v_b (stacked experts are matrices each)
  return w.name === "token_embd.weight" ? ["embed", "matmul"] : ["matmul"];
}

/**
 * Refuse what the backend cannot run; return one warning per weight type it runs only through the scalar
 * reference (correct, but orders of magnitude slower: the user should know before waiting on it).
 */
export function checkCapabilities(backend: Backend, weights: readonly WeightUse[], archOps: readonly OpName[] = []): string[] {
  const slow = new Map<number, number>();
  const missing = [...LAYER_OPS, ...archOps].filter((op) => !backend.supports(op));
  if (missing.length) throw new UsageError("backend_unsupported", `backend '${backend.name}' lacks the op(s) ${missing.join(", ")} the model's layers need`);
  const seen = new Set<string>();
  for (const w of weights) {
    for (const op of opsFor(w)) {
      const key = `${op}:${w.type}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (!backend.supports(op, w.type)) {
        // The scalar reference runs every type moestream has kernels for: beyond it, no --backend helps; the file is at fault.
        if (!reference.supports(op, w.type)) throw new ModelError("unsupported_type", `tensor '${w.name}' is ${typeName(w.type)}: no moestream backend runs ${op} on it`);
        throw new UsageError("backend_unsupported", `backend '${backend.name}' cannot run ${op} on ${typeName(w.type)} weights (tensor '${w.name}'); try another --backend`);
      }
    }
    if (opsFor(w).some((op) => backend.delegates?.(op, w.type))) slow.set(w.type, (slow.get(w.type) ?? 0) + 1);
  }
  return [...slow].map(([t, n]) => `${n} tensor(s) of type ${typeName(t)} have no ${backend.name} kernel yet: they run on the scalar reference (slow)`);
}
