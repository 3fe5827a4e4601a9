// What load relies on, checked the same way by load and by `verify`: the dense tensors the architecture
// declares (present, shaped as declared) and a pack's expert layers and parts against its declaration.
// So "verify passes" means "run loads".
import type { ExpertPart } from "../experts/pack-format.js";
import { getTensor, metaNumber, metaString } from "../format/gguf/accessors.js";
import { checkTensorLayout } from "../format/gguf/read.js";
import type { GGUFFile } from "../format/gguf/types.js";
import { architecture, type Architecture } from "../models/registry.js";
import { checkShape, type ExpertPartSpecs, type HasTensor, type TensorSpec } from "../models/tensors.js";
import { ModelError, namingFile } from "../util/errors.js";
import type { WeightUse } from "./capabilities.js";

/**
 * A split GGUF's part (llama.cpp's gguf-split, as the Hub serves files over 50 GB) holds only some tensors:
 * refused by name rather than as a missing tensor, with the command that merges the parts.
 */
export function refuseSplitGGUF(file: GGUFFile): void {
  const count = metaNumber(file, "split.count", { default: 1 });
  if (count <= 1) return;
  const no = metaNumber(file, "split.no", { default: 0 });
  throw new ModelError(
    "split_gguf",
    `${file.source.name}: part ${no + 1} of a ${count}-part split GGUF; moestream loads one file: merge the parts (\`moestream pull REPO:QUANT --merge\`, or llama.cpp's \`llama-gguf-split --merge FIRST_PART OUT.gguf\`)`,
  );
}

/** The file's architecture and hyperparameters (range errors name the file). */
export function readArchitecture(file: GGUFFile): { arch: Architecture; hp: unknown } {
  refuseSplitGGUF(file);
  const arch = architecture(metaString(file, "general.architecture"));
  const nVocab = getTensor(file, "token_embd.weight").shape[1];
  return { arch, hp: namingFile(file.source.name, () => arch.readHParams(file.metadata, nVocab)) };
}

/** Which tensors a model holds, for the architecture's layout probes: the GGUF's, plus a pack's expert tensors (named in its manifest). */
export function tensorsHeld(file: GGUFFile, packParts?: Iterable<readonly ExpertPart[]>): HasTensor {
  const names = new Set(file.tensors.map((t) => t.name));
  for (const parts of packParts ?? []) for (const p of parts) names.add(p.tensor);
  return (name) => names.has(name);
}

/** Each spec present in `where` (unless optional) with its declared shape; the weights' uses for the capability check. */
export function checkTensors(specs: readonly TensorSpec[], where: GGUFFile, stacked: boolean, uses: WeightUse[] = []): WeightUse[] {
  const names = new Map(where.tensors.map((t) => [t.name, t]));
  for (const spec of specs) {
    const t = names.get(spec.name);
    if (!t) {
      if (spec.optional) continue;
      throw new ModelError("missing_tensor", `${where.source.name}: required tensor '${spec.name}' not found`);
    }
    namingFile(where.source.name, () => checkShape(spec, t));
    uses.push({ name: t.name, type: t.type, rank: t.shape.length - (stacked ? 1 : 0) }); // one expert's slice of a stacked tensor
  }
  return uses;
}

/**
 * `file` holds only the declared tensors (as llama.cpp's loader insists: a tensor nobody reads means the
 * hyperparameters and the tensors disagree, e.g. block_count lowered), and each tensor's bytes fit its type
 * and shape (checkTensorLayout). Run after checkTensors, so a missing tensor is named as missing.
 */
export function checkNoOtherTensors(file: GGUFFile, declared: readonly TensorSpec[], arch: string): void {
  const names = new Set(declared.map((s) => s.name));
  const extra = file.tensors.find((t) => !names.has(t.name));
  if (extra) {
    throw new ModelError("unexpected_tensor", `${file.source.name}: tensor '${extra.name}' is not one the ${arch} architecture declares for these hyperparameters (block_count, expert_count, ...); the file's metadata and tensors disagree`);
  }
  checkTensorLayout(file);
}

/** The layers with experts equal the declaration's, and each packed layer's parts are the declared ones, one expert's shape each. */
export function checkExpertLayers(
  path: string,
  specs: readonly (ExpertPartSpecs | null)[],
  have: { layers: readonly number[]; parts?: (layer: number) => readonly ExpertPart[] },
  uses: WeightUse[] = [],
): WeightUse[] {
  const want = specs.flatMap((e, i) => (e ? [i] : []));
  if (have.layers.length !== want.length || have.layers.some((l, i) => l !== want[i])) {
    throw new ModelError("bad_experts", `${path}: experts for layers [${have.layers.join(", ")}], the model has them in layers [${want.join(", ")}]`);
  }
  if (have.parts) for (const l of have.layers) checkParts(path, l, specs[l]!, have.parts(l), uses);
  return uses;
}

function checkParts(path: string, layer: number, spec: ExpertPartSpecs, parts: readonly ExpertPart[], uses: WeightUse[]): void {
  const names = Object.keys(spec);
  const have = parts.map((p) => p.name);
  if (names.length !== have.length || names.some((n) => !have.includes(n))) {
    throw new ModelError("bad_experts", `${path}: layer ${layer}'s expert records hold parts [${have.join(", ")}], the architecture declares [${names.join(", ")}] (re-pack with \`moestream pack\`)`);
  }
  for (const p of parts) {
    const want = spec[p.name].shape.slice(0, -1);
    if (want.length !== p.shape.length || want.some((d, i) => d !== p.shape[i])) {
      throw new ModelError("bad_shape", `${path}: layer ${layer} expert part '${p.name}' (${p.tensor}) has shape [${p.shape.join(", ")}], expected [${want.join(", ")}]`);
    }
    const split = (s: ExpertPart["split"]) => (s ?? []).map((x) => `${x.name} ${x.rows}`).join(", ");
    if (split(spec[p.name].split) !== split(p.split)) {
      throw new ModelError("bad_experts", `${path}: layer ${layer} expert part '${p.name}' (${p.tensor}) splits into rows [${split(p.split)}], the architecture declares [${split(spec[p.name].split)}] (re-pack with \`moestream pack\`)`);
    }
    uses.push({ name: p.tensor, type: p.type, rank: p.shape.length });
  }
}
