// Pack and verify a model as engine operations: the engine knows each architecture's expert tensors.
import { packModel as packExperts, verifyPack, type PackOptions, type PackResult } from "../experts/pack.js";
import { ExpertStore } from "../experts/store.js";
import { expertLayout } from "./expert-layout.js";

export { verifyPack, type PackResult };

/** Packs a GGUF into a model directory, its experts laid out as the file's architecture declares. */
export function packModel(srcGguf: string, outDir: string, opts: Omit<PackOptions, "experts"> = {}): Promise<PackResult> {
  return packExperts(srcGguf, outDir, { ...opts, experts: expertLayout });
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
