// Re-write a GGUF with another writer layout (tensor order, alignment, version) or with tensors
// dropped/reshaped, to test that the loader takes any valid file and refuses broken ones.
import { openGGUF, readTensorBytes } from "../../src/format/gguf/read.js";
import { writeGGUF } from "../../src/format/gguf/write.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";

export interface RewriteTensor {
  name: string;
  shape: number[];
  type: number;
  data: Uint8Array;
}

export async function rewriteGGUF(
  src: string,
  dst: string,
  opts: { version?: 2 | 3; alignment?: number; edit?: (t: RewriteTensor[], md: GGUFMetadata) => RewriteTensor[] },
): Promise<void> {
  const f = await openGGUF(src);
  try {
    let tensors: RewriteTensor[] = [];
    for (const t of f.tensors) tensors.push({ name: t.name, shape: [...t.shape], type: t.type, data: await readTensorBytes(f, t) });
    const md = new Map(f.metadata);
    md.delete("general.alignment");
    if (opts.edit) tensors = opts.edit(tensors, md);
    await writeGGUF(dst, { version: opts.version, alignment: opts.alignment, metadata: md, tensors });
  } finally {
    await f.source.close();
  }
}
