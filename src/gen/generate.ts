// Writes a synthetic qwen3moe GGUF: seeded random weights with the tensor names, shapes and metadata
// keys llama.cpp expects, the real Qwen3 tokenizer, and a chosen quant type per tensor.
import { writeGGUF } from "../format/gguf/write.js";
import type { GGUFMetadata, GGUFMetaValue } from "../format/gguf/types.js";
import { quantFormat, quantByName } from "../quant/index.js";
import { qwen3TokenizerMetadata } from "../tokenizer/qwen3-vocab.js";
import { UsageError } from "../util/errors.js";
import { architecture } from "../models/registry.js";
import type { TensorSpec } from "../models/tensors.js";
import { PRESETS, type ModelDims, type PresetName } from "./presets.js";
import { WeightRecipes, type RoutingProfile } from "./weights.js";
import { directFill, hasDirect } from "./direct.js";
import { Stream } from "./random.js";

export const QWEN3_VOCAB_SIZE = 151936;

export interface GenerateOptions {
  preset: PresetName;
  /** Quant type name for weight matrices ("F32", "F16", "BF16", "Q8_0", "Q4_K", "Q6_K"); norms and the router stay F32. */
  type: string;
  /** Per-tensor overrides: first regex matching the tensor name wins. */
  typeOverrides?: { pattern: RegExp; type: string }[];
  seed?: number;
  routing?: RoutingProfile;
  /** Successor strength of the output projection (0 = off); gives clear top-1 margins. Forces an output.weight. */
  peaked?: number;
  /**
   * How expert tensors are made: "quantize" (default) fills f32 rows and runs ggml's quantiser; "direct"
   * samples Q8_0/Q4_K/Q6_K blocks straight in the quantised domain (gen/direct.ts): far faster, for
   * bench-scale models such as a3b.
   */
  expertSynthesis?: "quantize" | "direct";
  /** Override preset dimensions (tests). */
  dims?: Partial<ModelDims>;
  onProgress?: (done: number, total: number) => void;
}

export interface GeneratedModel {
  path: string;
  bytes: number;
  dims: ModelDims;
}

// llama.cpp's llama_ftype for a file whose weights are mostly one type.
const FILE_TYPE: Record<string, number> = { F32: 0, F16: 1, Q8_0: 7, Q4_K: 15, Q6_K: 18, BF16: 32 };

function u32(value: number): GGUFMetaValue {
  return { type: "u32", value };
}
function f32(value: number): GGUFMetaValue {
  return { type: "f32", value };
}
function str(value: string): GGUFMetaValue {
  return { type: "string", value };
}

export function modelMetadata(dims: ModelDims, name: string, fileType: number): GGUFMetadata {
  const a = "qwen3moe";
  const md: GGUFMetadata = new Map<string, GGUFMetaValue>([
    ["general.architecture", str(a)],
    ["general.name", str(name)],
    ["general.file_type", u32(fileType)],
    ["general.quantization_version", u32(2)],
    [`${a}.block_count`, u32(dims.nLayer)],
    [`${a}.context_length`, u32(dims.nCtx)],
    [`${a}.embedding_length`, u32(dims.nEmbd)],
    [`${a}.feed_forward_length`, u32(dims.nFf)],
    [`${a}.attention.head_count`, u32(dims.nHead)],
    [`${a}.attention.head_count_kv`, u32(dims.nHeadKv)],
    [`${a}.rope.freq_base`, f32(dims.ropeFreqBase)],
    [`${a}.attention.layer_norm_rms_epsilon`, f32(dims.rmsEps)],
    [`${a}.expert_used_count`, u32(dims.nExpertUsed)],
    [`${a}.expert_count`, u32(dims.nExpert)],
    [`${a}.attention.key_length`, u32(dims.headDim)],
    [`${a}.attention.value_length`, u32(dims.headDim)],
    [`${a}.expert_feed_forward_length`, u32(dims.nFfExp)],
  ]);
  for (const [k, v] of qwen3TokenizerMetadata(QWEN3_VOCAB_SIZE)) md.set(k, v);
  return md;
}

/** The architecture's own tensor declarations, in llama.cpp's file order (embeddings, layers, output). */
export function tensorShapes(dims: ModelDims, nVocab: number, withOutput: boolean): TensorSpec[] {
  const hp = { ...dims, nVocab, nCtxTrain: dims.nCtx };
  const { dense, experts } = architecture("qwen3moe").tensors(hp);
  const layer = (i: number) => dense.filter((t) => t.name.startsWith(`blk.${i}.`));
  const top = (name: string) => dense.filter((t) => t.name === name);
  return [
    ...top("token_embd.weight"),
    ...Array.from({ length: dims.nLayer }, (_, i) => [...layer(i), ...Object.values(experts[i] ?? {})]).flat(),
    ...top("output_norm.weight"),
    ...(withOutput ? top("output.weight") : []),
  ];
}

function typeFor(name: string, shape: number[], opts: GenerateOptions): number {
  if (shape.length === 1 || name.endsWith("ffn_gate_inp.weight")) return quantByName("F32").type; // as llama.cpp keeps them
  const chosen = opts.typeOverrides?.find((o) => o.pattern.test(name))?.type ?? opts.type;
  const q = quantByName(chosen);
  if (shape[0] % q.blockSize !== 0) {
    throw new UsageError("bad_type", `tensor '${name}' rows of ${shape[0]} values cannot be stored as ${q.name} (blocks of ${q.blockSize})`);
  }
  return q.type;
}

export async function generateModel(path: string, opts: GenerateOptions): Promise<GeneratedModel> {
  const dims: ModelDims = { ...PRESETS[opts.preset], ...opts.dims };
  const peaked = opts.peaked ?? 0;
  const withOutput = !dims.tiedEmbeddings || peaked > 0;
  if (withOutput) dims.tiedEmbeddings = false;
  const nVocab = QWEN3_VOCAB_SIZE;
  const recipes = new WeightRecipes({ seed: opts.seed ?? 1, dims, nVocab, routing: opts.routing ?? { kind: "uniform" }, peaked });
  const main = quantByName(opts.type);
  const md = modelMetadata(dims, `moestream-${opts.preset}-${main.name}`, FILE_TYPE[main.name] ?? 0);

  const shapes = tensorShapes(dims, nVocab, withOutput);
  const values = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const total = shapes.reduce((a, t) => a + values(t.shape), 0);
  let done = 0;
  const tensors = shapes.map(({ name, shape }) => {
    const type = typeFor(name, shape, opts);
    return {
      name, shape, type,
      data: () => {
        const q = quantFormat(type);
        const K = shape[0];
        const rows = values(shape) / K;
        if (opts.expertSynthesis === "direct" && name.endsWith("_exps.weight") && hasDirect(type)) {
          const out = directFill(type, rows * K, recipes.expertStd(name, K), new Stream(opts.seed ?? 1, name));
          opts.onProgress?.((done += rows * K), total);
          return out;
        }
        const rowBytes = (K / q.blockSize) * q.bytesPerBlock;
        const out = new Uint8Array(rows * rowBytes);
        const row = new Float32Array(K);
        const fill = recipes.filler(name, shape);
        for (let r = 0; r < rows; r++) {
          fill(r, row);
          q.quantizeRow(row, out.subarray(r * rowBytes, (r + 1) * rowBytes), K);
        }
        done += rows * K;
        opts.onProgress?.(done, total);
        return out;
      },
    };
  });
  const layout = await writeGGUF(path, { metadata: md, tensors });
  return { path, bytes: layout.fileSize, dims };
}
