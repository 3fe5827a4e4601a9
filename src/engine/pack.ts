// Pack and verify a model as engine operations: the engine knows each architecture's expert tensors.
import { join } from "node:path";
import { DENSE_FILE } from "../experts/pack-format.js";
import { packModel as packExperts, verifyPack as verifyRecords, type PackOptions, type PackResult } from "../experts/pack.js";
import { ExpertStore } from "../experts/store.js";
import { openGGUF } from "../format/gguf/read.js";
import { engineChecksums } from "./checksums.js";
import { expertLayout, unusedTensors } from "./expert-layout.js";
import { checkExpertLayers, checkNoOtherTensors, checkTensors, readArchitecture, tensorsHeld } from "./model-check.js";

export type { PackResult };

/**
 * Every record's crc32c, and what load relies on: dense.gguf parses, its architecture is known, its
 * hyperparameters are in range, every dense tensor is present and shaped as declared, and the manifest's
 * expert layers and parts are the declared ones. So a pack that verifies also loads.
 */
export async function verifyPack(dir: string): Promise<{ records: number; bytes: number }> {
  const densePath = join(dir, DENSE_FILE);
  const store = await ExpertStore.open(dir);
  try {
    const file = await openGGUF(densePath);
    try {
      const { arch, hp } = readArchitecture(file);
      const { dense, experts, unused } = arch.tensors(hp, tensorsHeld(file, store.layers.map((l) => store.parts(l))));
      checkTensors(dense, file, false);
      checkTensors(unused, file, false);
      checkNoOtherTensors(file, [...dense, ...unused], arch.name);
      checkExpertLayers(dir, experts, { layers: store.layers, parts: (l) => store.parts(l) });
    } finally {
      await file.source.close();
    }
  } finally {
    await store.close();
  }
  return verifyRecords(dir, engineChecksums());
}

/** Packs a GGUF into a model directory, its experts laid out as the file's architecture declares, tensors it never reads (MTP blocks) left out. */
export function packModel(srcGguf: string, outDir: string, opts: Omit<PackOptions, "experts"> = {}): Promise<PackResult> {
  return packExperts(srcGguf, outDir, { ...opts, experts: expertLayout, unused: unusedTensors });
}

/** Bytes of every expert record of a packed model directory. */
export async function packedExpertBytes(dir: string): Promise<number> {
  const store = await ExpertStore.open(dir);
  try {
    return store.layers.reduce((a, l) => a + store.recordBytes(l) * store.expertCount(l), 0);
  } finally {
    await store.close();
  }
}
