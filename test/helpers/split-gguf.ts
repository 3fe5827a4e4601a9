// Split a GGUF as llama.cpp's `llama-gguf-split --split` writes it: every part carries split.no, split.count and
// split.tensors.count; the first part also all the model's metadata; the tensors are divided in order.
import { openGGUF, readTensorBytes } from "../../src/format/gguf/read.js";
import { meta, writeGGUF } from "../../src/format/gguf/write.js";

export async function splitGGUF(src: string, parts: string[]): Promise<void> {
  const f = await openGGUF(src);
  try {
    const md = new Map(f.metadata);
    md.delete("general.alignment");
    const per = Math.ceil(f.tensors.length / parts.length);
    for (let i = 0; i < parts.length; i++) {
      const split = { "split.no": meta.u16(i), "split.count": meta.u16(parts.length), "split.tensors.count": meta.i32(f.tensors.length) };
      const metadata = i === 0 ? new Map([...md, ...Object.entries(split)]) : new Map(Object.entries(split));
      const tensors = f.tensors.slice(i * per, (i + 1) * per).map((t) => ({ name: t.name, shape: t.shape, type: t.type, data: () => readTensorBytes(f, t) }));
      await writeGGUF(parts[i], { metadata, tensors });
    }
  } finally {
    await f.source.close();
  }
}
