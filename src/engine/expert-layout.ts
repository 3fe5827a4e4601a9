// Each layer's stacked expert tensors, from the architecture the file names (experts/ may not import models/).
import type { ExpertTensorLayout } from "../experts/pack-format.js";
import { getTensor, metaString } from "../format/gguf/accessors.js";
import type { GGUFFile } from "../format/gguf/types.js";
import { architecture } from "../models/registry.js";

export function expertLayout(file: GGUFFile): ExpertTensorLayout {
  const arch = architecture(metaString(file, "general.architecture"));
  return arch.tensors(arch.readHParams(file.metadata, getTensor(file, "token_embd.weight").shape[1])).experts;
}
