// Each layer's stacked expert tensors, from the architecture the file names (experts/ may not import models/).
import type { ExpertTensorLayout } from "../experts/pack-format.js";
import type { GGUFFile } from "../format/gguf/types.js";
import { readArchitecture } from "./model-check.js";

export function expertLayout(file: GGUFFile): ExpertTensorLayout {
  const { arch, hp } = readArchitecture(file);
  return arch.tensors(hp).experts;
}
