// Writes a synthetic GGUF of any registered architecture: seeded random weights with the tensor names and
// shapes the architecture declares, its metadata(hp) keys, the real Qwen3 tokenizer, and a chosen quant
// type per tensor.
import { meta, writeGGUF } from "../format/gguf/write.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { QUANT_FORMATS, quantFormat, quantByName } from "../quant/index.js";
import { qwen3TokenizerMetadata } from "../tokenizer/qwen3-vocab.js";
import { UsageError } from "../util/errors.js";
import { architecture, type Architecture } from "../models/registry.js";
import type { TensorSpec } from "../models/tensors.js";
import { PRESETS, type Preset, type PresetName } from "./presets.js";
import { WeightRecipes, type RoutingProfile } from "./weights.js";
import { directFill, hasDirect } from "./direct.js";
import { Stream } from "./random.js";
import { quantizeRows } from "./quantize.js";
import { fusedNamesAccepted, fuseTensors, type Fusion, type GenTensor } from "./fuse.js";
import { MIX_FILE_TYPE, mixTypes, type MixName } from "./mixes.js";

export interface GenerateOptions {
  /** A named preset, or any registered architecture with its hyperparameters. */
  preset: PresetName | Preset;
  /** Quant type name for weight matrices (any registered: "F16", "Q8_0", "Q4_0", "Q2_K".."Q6_K", ...); norms and the router stay F32. */
  type: string;
  /** Quant type of the routed expert tensors (ffn_*_exps), if not `type`: a Q4_K_M-like file keeps dense weights wider. */
  expertType?: string;
  /** A named mix (gen/mixes.ts: q4_k_m, q2_k, iq2_xxs, ud) choosing each matrix's type instead of type/expertType. */
  mix?: MixName;
  /** Per-tensor overrides: first regex matching the tensor name wins (over a mix too). */
  typeOverrides?: { pattern: RegExp; type: string }[];
  seed?: number;
  routing?: RoutingProfile;
  /** Successor strength of the output projection (0 = off); gives clear top-1 margins. Forces an output.weight. */
  peaked?: number;
  /**
   * How expert tensors are made: "quantize" (default) fills f32 rows and runs ggml's quantiser; "direct"
   * samples Q8_0/Q2_K/Q4_K/Q6_K/MXFP4 blocks straight in the quantised domain (gen/direct.ts): far faster, for
   * bench-scale models such as a3b. I-quant experts are always sampled so (moestream cannot quantise to them).
   */
  expertSynthesis?: "quantize" | "direct";
  /**
   * Fused layouts to write where the architecture takes them, as llama.cpp's converter does: "qkv" (attn_qkv for
   * attn_q/k/v), "gate_up" (ffn_gate_up_exps for ffn_gate_exps + ffn_up_exps). Same values as the split file.
   */
  fuse?: readonly Fusion[];
  /** Write the keys llama.cpp reads per layer (get_key_or_arr: head counts, FFN widths, experts used) as arrays of one value per block. */
  perLayerKeys?: boolean;
  /** Override fields of the preset's hyperparameters (tests). */
  hp?: Record<string, unknown>;
  /** Quantise with the native addon's C port of ggml's quantisers where it is built (default true: the same bytes,
   *  several times faster); false runs src/quant's JS ones. */
  nativeQuantizer?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface GeneratedModel {
  path: string;
  bytes: number;
  /** What was written: overrides applied, tiedEmbeddings false where an output.weight was forced. */
  preset: Preset;
}

// llama.cpp's llama_ftype for a file whose weights are mostly one type.
// (the K types as their _M mixes: Q3_K_M 12, Q4_K_M 15, Q5_K_M 17; MXFP4 as MOSTLY_MXFP4_MOE 38)
const FILE_TYPE: Record<string, number> = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10, Q3_K: 12, Q4_K: 15, Q5_K: 17, Q6_K: 18, BF16: 32, MXFP4: 38,
};

/** Names of the types gen writes (every registered quant format). */
export const GEN_TYPES: readonly string[] = QUANT_FORMATS.map((f) => f.name);

/** The format named `name`, or a UsageError naming the option and the supported types. */
function typeNamed(name: string, what: string) {
  try {
    return quantByName(name);
  } catch (e) {
    throw new UsageError("bad_type", `${what}: ${(e as Error).message}`);
  }
}

/** general.* keys, then the architecture's own (its readHParams inverse), then the tokenizer's. */
export function modelMetadata(arch: Architecture, hp: unknown, name: string, fileType: number, tokenizerPre?: string): GGUFMetadata {
  if (!arch.metadata) throw new UsageError("bad_option", `architecture '${arch.name}' cannot be generated: it has no metadata(hp)`);
  const md: GGUFMetadata = new Map([
    ["general.architecture", meta.str(arch.name)],
    ["general.name", meta.str(name)],
    ["general.file_type", meta.u32(fileType)],
    ["general.quantization_version", meta.u32(2)],
  ]);
  for (const [k, v] of arch.metadata(hp)) md.set(k, v);
  for (const [k, v] of qwen3TokenizerMetadata(arch.info(hp).nVocab)) md.set(k, v);
  if (tokenizerPre) md.set("tokenizer.ggml.pre", meta.str(tokenizerPre));
  return md;
}

/**
 * The architecture's declared tensors in llama.cpp's file order: token_embd*, then per layer its dense
 * tensors (declaration order) and its expert parts, then the other top-level ones (output_norm, output).
 * Optional tensors are written, except seldom ones and output.weight when the embeddings are tied.
 */
export function fileTensors(arch: Architecture, hp: unknown, withOutput: boolean): TensorSpec[] {
  const { dense, experts, unused } = arch.tensors(hp);
  // Unused tensors (an MTP block) are written as real files carry them.
  const wanted = [...dense, ...unused].filter((t) => !t.seldom && !(t.optional && t.name === "output.weight" && !withOutput));
  const layerOf = (t: TensorSpec) => /^blk\.(\d+)\./.exec(t.name)?.[1];
  const top = wanted.filter((t) => layerOf(t) === undefined);
  return [
    ...top.filter((t) => t.name.startsWith("token_embd")),
    ...experts.flatMap((parts, i) => [...wanted.filter((t) => layerOf(t) === String(i)), ...Object.values(parts ?? {})]),
    ...wanted.filter((t) => Number(layerOf(t) ?? -1) >= experts.length), // blocks past the model's layers (MTP)
    ...top.filter((t) => !t.name.startsWith("token_embd")),
  ];
}

/** The keys llama.cpp's loader takes as one value or one per block (llama-model.cpp get_key_or_arr). */
export const PER_LAYER_KEYS: readonly string[] = ["feed_forward_length", "attention.head_count", "attention.head_count_kv", "expert_used_count", "expert_feed_forward_length"];

/** Each of `arch`'s PER_LAYER_KEYS in md rewritten from one number to an array of it, one per block. */
export function perLayerArrays(md: GGUFMetadata, arch: string): void {
  const blocks = Number(md.get(`${arch}.block_count`)?.value);
  for (const name of PER_LAYER_KEYS) {
    const v = md.get(`${arch}.${name}`);
    if (v && v.type !== "array") md.set(`${arch}.${name}`, meta.u32Array(new Array<number>(blocks).fill(Number(v.value))));
  }
}

/** A preset by name or as given, with `hp` overrides applied. */
function resolvePreset(opts: GenerateOptions): Preset {
  const p: Preset = typeof opts.preset === "string" ? PRESETS[opts.preset] : opts.preset;
  return { ...p, hp: { ...(p.hp as object), ...opts.hp } };
}

/** Tensors llama.cpp never quantises: vectors, biases (gpt-oss's per-expert ones are [N, nExpert]), routers, the DeltaNet convolution. */
const keptF32 = (name: string, shape: number[]) => shape.length === 1 || name.endsWith(".bias") || name.endsWith("ffn_gate_inp.weight") || name.endsWith("ssm_conv1d.weight");

function typeFor(name: string, shape: number[], opts: GenerateOptions, isExpert: boolean, mixed?: string): number {
  if (keptF32(name, shape)) return quantByName("F32").type; // as llama.cpp keeps them
  const override = opts.typeOverrides?.find((o) => o.pattern.test(name));
  const chosen = override?.type ?? mixed ?? (isExpert ? opts.expertType : undefined) ?? opts.type;
  const what = override ? `type for tensors /${override.pattern.source}/` : mixed ? `mix ${opts.mix}` : isExpert && opts.expertType ? "expert type" : "type";
  const q = typeNamed(chosen, what);
  if (shape[0] % q.blockSize !== 0) {
    throw new UsageError("bad_type", `tensor '${name}' rows of ${shape[0]} values cannot be stored as ${q.name} (blocks of ${q.blockSize})`);
  }
  // The i-quants are written only by sampling in the quantised domain, which the generator does for experts.
  if (q.dequantOnly && !isExpert) {
    throw new UsageError("bad_type", `tensor '${name}' cannot be ${q.name}: moestream cannot quantise to it (ggml's quantiser needs an importance matrix); only expert tensors can be, sampled directly`);
  }
  return q.type;
}

export async function generateModel(path: string, opts: GenerateOptions): Promise<GeneratedModel> {
  const preset = resolvePreset(opts);
  const arch = architecture(preset.arch);
  const { hp } = preset;
  const peaked = opts.peaked ?? 0;
  const withOutput = !preset.tiedEmbeddings || peaked > 0;
  if (withOutput) preset.tiedEmbeddings = false;
  const { nEmbd, nLayer, nVocab } = arch.info(hp);
  const recipes = new WeightRecipes({
    seed: opts.seed ?? 1, nEmbd, nLayer, nVocab, tiedEmbeddings: preset.tiedEmbeddings, routing: opts.routing ?? { kind: "uniform" }, peaked,
    qkNorms: arch.tensors(hp).dense.some((t) => /attn_[qk]_norm/.test(t.name)),
  });
  const main = typeNamed(opts.type, "type");
  if (opts.expertType !== undefined) typeNamed(opts.expertType, "expert type");
  for (const o of opts.typeOverrides ?? []) typeNamed(o.type, `type for tensors /${o.pattern.source}/`);
  const label = typeof opts.preset === "string" ? opts.preset : preset.arch;
  const md = opts.mix
    ? modelMetadata(arch, hp, `moestream-${label}-${opts.mix}`, MIX_FILE_TYPE[opts.mix], preset.tokenizerPre)
    : modelMetadata(arch, hp, `moestream-${label}-${main.name}`, FILE_TYPE[main.name] ?? 0, preset.tokenizerPre);
  if (opts.perLayerKeys) perLayerArrays(md, arch.name);
  arch.readHParams(md, nVocab); // refuses hyperparameters the loader would refuse, before writing anything

  const optional = new Set(arch.tensors(hp).dense.filter((t) => t.optional).map((t) => t.name));
  const shapes = fileTensors(arch, hp, withOutput).filter((t) => !(optional.has(t.name) && preset.without?.test(t.name)));
  const expertNames = new Set(arch.tensors(hp).experts.flatMap((parts) => Object.values(parts ?? {}).map((t) => t.name)));
  const values = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const total = shapes.reduce((a, t) => a + values(t.shape), 0);
  let done = 0;
  const hq = hp as { nHead?: unknown; nHeadKv?: unknown };
  const nGqa = typeof hq.nHead === "number" && typeof hq.nHeadKv === "number" && hq.nHeadKv > 0 ? hq.nHead / hq.nHeadKv : 1;
  const mixed = opts.mix
    ? mixTypes(opts.mix, shapes.filter((t) => !keptF32(t.name, t.shape)).map((t) => ({ name: t.name, shape: t.shape, expert: expertNames.has(t.name) })), {
        nLayer, nExpert: arch.info(hp).nExpert, nGqa, tied: preset.tiedEmbeddings,
      })
    : undefined;
  const tensors = shapes.map(({ name, shape }) => {
    const type = typeFor(name, shape, opts, expertNames.has(name), mixed?.get(name));
    return {
      name, shape, type,
      data: () => {
        const q = quantFormat(type);
        const K = shape[0];
        const rows = values(shape) / K;
        if ((opts.expertSynthesis === "direct" || q.dequantOnly) && expertNames.has(name) && hasDirect(type)) {
          const out = directFill(type, rows * K, recipes.expertStd(name, K), new Stream(opts.seed ?? 1, name));
          opts.onProgress?.((done += rows * K), total);
          return out;
        }
        const out = quantizeRows(q, rows, K, recipes.filler(name, shape), { native: opts.nativeQuantizer });
        done += rows * K;
        opts.onProgress?.(done, total);
        return out;
      },
    };
  });
  const written: GenTensor[] = opts.fuse?.length ? fuseTensors(tensors, opts.fuse, fusedNamesAccepted(arch, hp)) : tensors;
  const layout = await writeGGUF(path, { metadata: md, tensors: written });
  return { path, bytes: layout.fileSize, preset };
}
