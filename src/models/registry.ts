// Architectures by GGUF general.architecture. Each entry is one small model file; this is the only place
// that knows them all.
import { ModelError } from "../util/errors.js";
import type { OpName } from "../backends/backend.js";
import type { Architecture, Model, ModelContext, ModelInfo } from "./model.js";
import * as deepseek2 from "./deepseek2.js";
import * as glm4moe from "./glm4moe.js";
import * as gptoss from "./gptoss.js";
import * as llama from "./llama.js";
import * as olmoe from "./olmoe.js";
import * as qwen3moe from "./qwen3moe.js";
import * as qwen3next from "./qwen3next.js";
import { bindTensors, collectTensors, type DeclareWeights } from "./tensors.js";
import type { GGUFMetadata } from "../format/gguf/types.js";

/** What one architecture file exports, typed by its own hyperparameters and weights. */
interface ArchModule<HP, W> {
  ARCH: string;
  readHParams(md: GGUFMetadata, nVocab: number): HP;
  /** readHParams' inverse: every key it reads (nVocab aside, which comes from token_embd). */
  metadata(hp: HP): GGUFMetadata;
  info(hp: HP): ModelInfo;
  cacheBytes(hp: HP, nCtx: number): number;
  weights: DeclareWeights<HP, W>;
  create(hp: HP, w: W, ctx: ModelContext): Model;
  /** Ops beyond LAYER_OPS every file of it runs (the DeltaNet ops, gpt-oss's clamped SwiGLU). */
  OPS?: readonly OpName[];
}

/** The engine-facing Architecture of a model file: declared tensors listed, or bound and shape-checked. */
function define<HP, W>(m: ArchModule<HP, W>): Architecture {
  return {
    name: m.ARCH,
    readHParams: (md, nVocab) => m.readHParams(md, nVocab),
    metadata: (hp) => m.metadata(hp as HP),
    info: (hp) => m.info(hp as HP),
    tensors: (hp, has) => collectTensors(m.weights, hp as HP, m.info(hp as HP).nLayer, has),
    cacheBytes: (hp, nCtx) => m.cacheBytes(hp as HP, nCtx),
    create: (hp, ctx) => m.create(hp as HP, bindTensors(m.weights, hp as HP, ctx.weights), ctx),
    ops: m.OPS ?? [],
  };
}

const ARCHITECTURES: Record<string, Architecture> = {
  [qwen3moe.ARCH]: define(qwen3moe),
  [glm4moe.ARCH]: define({ ...glm4moe, create: (hp, w, ctx) => new glm4moe.Glm4Moe(hp, w, ctx) }),
  [deepseek2.ARCH]: define({ ...deepseek2, create: (hp, w, ctx) => new deepseek2.DeepSeek2(hp, w, ctx) }),
  [llama.ARCH]: define(llama), // Mixtral; a dense Llama is refused
  [olmoe.ARCH]: define(olmoe),
  [gptoss.ARCH]: define({ ...gptoss, create: (hp, w, ctx) => new gptoss.GptOss(hp, w, ctx) }),
  // One file, two architectures: qwen3next and qwen35moe.
  ...Object.fromEntries(qwen3next.ARCHS.map((a) => [a, define({
    ...qwen3next, ARCH: a, readHParams: (md, nVocab) => qwen3next.readHParams(a, md, nVocab), create: (hp, w, ctx) => new qwen3next.Qwen3Next(hp, w, ctx),
  })])),
};

export function architecture(name: string): Architecture {
  const a = ARCHITECTURES[name];
  if (!a) throw new ModelError("unsupported_architecture", `unsupported architecture '${name}' (supported: ${Object.keys(ARCHITECTURES).join(", ")})`);
  return a;
}

export type { Architecture, Model, ModelContext, ModelInfo, ForwardOptions, ForwardHooks } from "./model.js";
