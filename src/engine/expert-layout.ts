// Each layer's stacked expert tensors, from the architecture the file names (experts/ may not import models/).
import type { ExpertTensorLayout } from "../experts/pack-format.js";
import type { GGUFFile } from "../format/gguf/types.js";
import { readArchitecture, tensorsHeld } from "./model-check.js";

export function expertLayout(file: GGUFFile): ExpertTensorLayout {
  const { arch, hp } = readArchitecture(file);
  return arch.tensors(hp, tensorsHeld(file)).experts;
}

/** The tensors the file's architecture declares and never reads (an MTP block). */
export function unusedTensors(file: GGUFFile): ReadonlySet<string> {
  const { arch, hp } = readArchitecture(file);
  return new Set(arch.tensors(hp, tensorsHeld(file)).unused.map((t) => t.name));
}
