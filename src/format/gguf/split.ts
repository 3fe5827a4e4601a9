// Split GGUFs (llama.cpp's gguf-split, as the Hub serves files over ~50 GB): each part holds split.no,
// split.count and split.tensors.count, the first also the model's metadata, the tensors divided in order.
// Merged into one file as `llama-gguf-split --merge` does, tensor bytes copied in bounded chunks.
import { open, rename, rm } from "node:fs/promises";
import { FormatError } from "../../util/errors.js";
import { metaNumber } from "./accessors.js";
import { openGGUF } from "./read.js";
import type { GGUFFile } from "./types.js";
import { planGGUF, writeAt } from "./write.js";

const SPLIT_KEYS = ["split.no", "split.count", "split.tensors.count"];
const CHUNK = 16 << 20;

/** Each part must say it is part i of n, and the parts together hold the tensor count the first declares. */
export function checkSplitParts(files: readonly GGUFFile[]): void {
  const n = files.length;
  for (let i = 0; i < n; i++) {
    const f = files[i];
    const count = metaNumber(f, "split.count", { default: 1 });
    const no = metaNumber(f, "split.no", { default: 0 });
    if (count !== n || no !== i) throw new FormatError("bad_split", f.source.name, undefined, `is part ${no + 1} of ${count} of a split GGUF, expected part ${i + 1} of ${n}`);
  }
  const want = metaNumber(files[0], "split.tensors.count");
  const got = files.reduce((a, f) => a + f.tensors.length, 0);
  if (want !== got) throw new FormatError("bad_split", files[0].source.name, undefined, `split.tensors.count is ${want} but the ${n} parts hold ${got} tensors`);
}

/** Write `out` (via out.tmp, renamed when whole) from the parts in order; onProgress counts tensor bytes copied. */
export async function mergeSplitGGUF(parts: readonly string[], out: string, onProgress?: (done: number, total: number) => void): Promise<void> {
  const files: GGUFFile[] = [];
  const tmp = out + ".tmp";
  let done = false;
  try {
    for (const p of parts) files.push(await openGGUF(p));
    checkSplitParts(files);
    const metadata = new Map([...files[0].metadata].filter(([k]) => !SPLIT_KEYS.includes(k)));
    const tensors = files.flatMap((f) => f.tensors.map((t) => ({ file: f, t })));
    const layout = planGGUF({ version: files[0].version, metadata, tensors: tensors.map(({ t }) => t), alignment: files[0].alignment });
    const total = tensors.reduce((a, { t }) => a + t.byteLength, 0);
    const fh = await open(tmp, "w");
    try {
      await writeAt(fh, layout.header, 0);
      const buf = new Uint8Array(CHUNK);
      let copied = 0;
      for (let i = 0; i < tensors.length; i++) {
        const { file, t } = tensors[i];
        for (let off = 0; off < t.byteLength; off += CHUNK) {
          const len = Math.min(CHUNK, t.byteLength - off);
          const got = await file.source.read(t.offset + off, len, buf);
          if (got.byteLength !== len) throw new FormatError("truncated", file.source.name, t.offset + off, `tensor "${t.name}": got ${got.byteLength} of ${len} bytes`);
          await writeAt(fh, got, layout.tensors[i].offset + off);
          copied += len;
          onProgress?.(copied, total);
        }
      }
      // Padding between tensors stays a hole (zeros); truncate sets the padded tail.
      await fh.truncate(layout.fileSize);
    } finally {
      await fh.close();
    }
    await rename(tmp, out);
    done = true;
  } finally {
    for (const f of files) await f.source.close();
    if (!done) await rm(tmp, { force: true });
  }
}
