// Tensor declarations, llama.cpp create_tensor style: an architecture's weights(hp, t) names each tensor
// with its expected shape once. Run with a collecting declarer it lists the specs the loader reads and
// checks; run with a binding declarer it returns the uploaded weights, shape-checked, as typed fields.
import type { Weight } from "../backends/backend.js";
import { ModelError } from "../util/errors.js";

export interface TensorSpec {
  name: string;
  /** ggml order: shape[0] is the values per row. */
  shape: number[];
  optional?: boolean;
  /** A tensor files may leave out, and the generator does (vocab-sized MTP heads, a legacy layout's alternative). */
  seldom?: boolean;
  /**
   * A fused expert part (ffn_gate_up_exps): each expert's rows are these parts' rows back to back, in this order.
   * It is stored and read as one; the expert source hands the model each named part as a view of its rows.
   */
  split?: readonly { name: string; rows: number }[];
}

/** One layer's stacked expert tensors by part name (the last dim is the expert count); record order = key order. */
export type ExpertPartSpecs = Readonly<Record<string, TensorSpec>>;

/** Whether the file holds a tensor: what a declaration probes to choose between a fused layout and its parts (llama.cpp's TENSOR_NOT_REQUIRED). */
export type HasTensor = (name: string) => boolean;

export interface ModelTensors {
  /** Always resident. */
  dense: TensorSpec[];
  /** Per layer: its routed experts' parts, or null for a layer without experts. */
  experts: (ExpertPartSpecs | null)[];
  /** Tensors a file may hold that this model never reads (GLM's MTP block): shape-checked if present, never loaded. */
  unused: TensorSpec[];
}

/** Declares tensors; in binding mode also returns them. */
export interface Declare {
  (name: string, shape: number[]): Weight;
  /** Whether the file holds `name` (a fused alternative such as attn_qkv or ffn_gate_up_exps). */
  has: HasTensor;
  optional(name: string, shape: number[], opts?: { seldom?: boolean }): Weight | undefined;
  /** Layer `layer` has routed experts made of these stacked tensors (they are streamed, never bound here). */
  experts(layer: number, parts: Record<string, TensorSpec>): void;
  /** A tensor real files carry that the model does not run (a multi-token-prediction block): allowed, never bound. */
  unused(name: string, shape: number[], opts?: { seldom?: boolean }): void;
}

/** The nextn.* tensors of MTP block `layer` (GLM-4.5, Qwen3-Next, Qwen3.5), declared unused: files carry them, no forward reads them. */
export function nextnUnused(t: Declare, layer: number, nEmbd: number, nVocab: number): void {
  const n = (name: string) => `blk.${layer}.nextn.${name}.weight`;
  t.unused(n("eh_proj"), [2 * nEmbd, nEmbd]);
  for (const name of ["enorm", "hnorm", "shared_head_norm"]) t.unused(n(name), [nEmbd]);
  for (const name of ["embed_tokens", "shared_head_head"]) t.unused(n(name), [nEmbd, nVocab], { seldom: true }); // optional in llama.cpp too
}

/** output_norm and the output projection [D, V], tied to token_embd when the file has no output.weight. */
export function outputHead(t: Declare, tokenEmbd: Weight, nEmbd: number, nVocab: number): { output_norm: Weight; output: Weight } {
  return { output_norm: t("output_norm.weight", [nEmbd]), output: t.optional("output.weight", [nEmbd, nVocab]) ?? tokenEmbd };
}

/** An architecture's declaration: the same function serves listing and binding. */
export type DeclareWeights<HP, W> = (hp: HP, t: Declare) => W;

/**
 * A layer's SwiGLU experts as llama.cpp's create_tensor_gate_up_exps takes them: one fused ffn_gate_up_exps
 * [D, 2F, E] (per expert F gate rows, then F up rows: one read) where the file has it and `fusedOk` (the
 * architectures llama.cpp fuses: not qwen3moe, llama, olmoe, glm4moe), else ffn_gate_exps and ffn_up_exps [D, F, E]. Either way the model gets parts gate, up and down.
 */
export function swigluExperts(t: Declare, layer: number, D: number, F: number, E: number, fusedOk = false): void {
  const n = (name: string) => `blk.${layer}.${name}.weight`;
  const down = { name: n("ffn_down_exps"), shape: [F, D, E] };
  if (fusedOk && t.has(n("ffn_gate_up_exps"))) {
    t.experts(layer, { gate_up: { name: n("ffn_gate_up_exps"), shape: [D, 2 * F, E], split: [{ name: "gate", rows: F }, { name: "up", rows: F }] }, down });
  } else t.experts(layer, { gate: { name: n("ffn_gate_exps"), shape: [D, F, E] }, up: { name: n("ffn_up_exps"), shape: [D, F, E] }, down });
}

/** A full-attention layer's q/k/v projections as attention() takes them (with their biases where declared). */
export interface QkvWeights {
  wq?: Weight;
  wk?: Weight;
  wv?: Weight;
  wqkv?: Weight;
  bq?: Weight;
  bk?: Weight;
  bv?: Weight;
  bqkv?: Weight;
}

/**
 * Layer `layer`'s q/k/v as llama.cpp's create_tensor_qkv takes them: one fused attn_qkv [D, qDim + 2·kvDim] (rows
 * q ‖ k ‖ v, as a converter's --fuse-qkv writes it) where the file has it, else attn_q, attn_k, attn_v. With
 * `biases`, the optional attn_qkv.bias, or attn_q/k/v.bias (beside a fused weight too, as llama.cpp allows).
 */
export function declareQkv(t: Declare, layer: number, D: number, qDim: number, kvDim: number, biases: boolean | "seldom" = false): QkvWeights {
  const n = (name: string, kind = "weight") => `blk.${layer}.${name}.${kind}`;
  const bias = (name: string, N: number) => t.optional(n(name, "bias"), [N], biases === "seldom" ? { seldom: true } : undefined); // "seldom": the generator leaves them out
  const split = (): QkvWeights => (biases ? { bq: bias("attn_q", qDim), bk: bias("attn_k", kvDim), bv: bias("attn_v", kvDim) } : {});
  if (t.has(n("attn_qkv"))) {
    const wqkv = t(n("attn_qkv"), [D, qDim + 2 * kvDim]);
    const bqkv = biases ? bias("attn_qkv", qDim + 2 * kvDim) : undefined;
    return bqkv || !biases ? { wqkv, bqkv } : { wqkv, ...split() };
  }
  return { wq: t(n("attn_q"), [D, qDim]), wk: t(n("attn_k"), [D, kvDim]), wv: t(n("attn_v"), [D, kvDim]), ...split() };
}

/** An MTP block's q/k/v in either layout (and biases, if `biases`): allowed in the file, never read. */
export function qkvUnused(t: Declare, layer: number, D: number, qDim: number, kvDim: number, biases = false): void {
  const n = (name: string, kind = "weight") => `blk.${layer}.${name}.${kind}`;
  const dims: [string, number][] = [["attn_q", qDim], ["attn_k", kvDim], ["attn_v", kvDim], ["attn_qkv", qDim + 2 * kvDim]];
  for (const [name, N] of dims) {
    const seldom = name === "attn_qkv"; // the fused alternative: the generator writes the split layout
    t.unused(n(name), [D, N], { seldom });
    if (biases) t.unused(n(name, "bias"), [N], { seldom });
  }
}

/** The specs `declare` names, with one entry per layer in `experts` (null where none were declared); `has` answers the declaration's probes. */
export function collectTensors<HP>(declare: DeclareWeights<HP, unknown>, hp: HP, nLayer: number, has: HasTensor = () => false): ModelTensors {
  const dense: TensorSpec[] = [];
  const unused: TensorSpec[] = [];
  const experts: (ExpertPartSpecs | null)[] = new Array(nLayer).fill(null);
  const t: Declare = Object.assign(
    (name: string, shape: number[]) => {
      dense.push({ name, shape });
      return { name, type: -1, shape }; // a placeholder: listing binds nothing
    },
    {
      has,
      optional: (name: string, shape: number[], opts?: { seldom?: boolean }) => void dense.push({ name, shape, optional: true, ...(opts?.seldom ? { seldom: true } : {}) }),
      experts: (layer: number, parts: Record<string, TensorSpec>) => {
        if (!(layer >= 0 && layer < nLayer)) throw new RangeError(`experts declared for layer ${layer} of ${nLayer}`);
        experts[layer] = parts;
      },
      unused: (name: string, shape: number[], opts?: { seldom?: boolean }) => void unused.push({ name, shape, optional: true, ...(opts?.seldom ? { seldom: true } : {}) }),
    },
  );
  declare(hp, t);
  return { dense, experts, unused };
}

/** Bind `declare`'s tensors to uploaded weights, refusing a missing tensor or a wrong shape by name. */
export function bindTensors<HP, W>(declare: DeclareWeights<HP, W>, hp: HP, weights: ReadonlyMap<string, Weight>): W {
  const t: Declare = Object.assign(
    (name: string, shape: number[]) => {
      const w = weights.get(name);
      if (!w) throw new ModelError("missing_tensor", `required tensor '${name}' not found`);
      checkShape({ shape }, w);
      return w;
    },
    {
      has: (name: string) => weights.has(name),
      optional: (name: string, shape: number[]) => {
        const w = weights.get(name);
        if (w) checkShape({ shape }, w);
        return w;
      },
      experts: () => {}, // streamed through the expert source, not bound here
      unused: () => {},
    },
  );
  return declare(hp, t);
}

/** Refuse a tensor whose shape differs from the spec, naming both. */
export function checkShape(spec: Pick<TensorSpec, "shape">, w: { readonly name: string; readonly shape: readonly number[] }): void {
  const same = spec.shape.length === w.shape.length && spec.shape.every((s, i) => s === w.shape[i]);
  if (!same) throw new ModelError("bad_shape", `tensor '${w.name}' has shape [${w.shape.join(", ")}], expected [${spec.shape.join(", ")}]`);
}
