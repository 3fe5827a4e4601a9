// Offsets past 4 GiB: a sparse file whose second tensor starts at ~4.5 GiB, read back through FileSource.
import { test } from "node:test";
import assert from "node:assert/strict";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { GGMLType, getTensor, meta, metaMap, openGGUF, planGGUF, readTensorBytes } from "../../src/format/gguf/index.js";
import { randomBytes, tempDir } from "./gguf-fixtures.js";

const GiB = 2 ** 30;

test("tensor data beyond 4 GiB is located and read back (sparse file)", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, "big.gguf");
    const plan = planGGUF({
      metadata: metaMap({ "general.architecture": meta.str("test") }),
      tensors: [
        { name: "filler", shape: [4.5 * GiB], type: GGMLType.I8 },
        { name: "far", shape: [64, 2], type: GGMLType.Q8_0 },
      ],
    });
    const far = plan.tensors[1];
    assert.ok(far.offset > 4 * GiB && far.relOffset > 2 ** 32);
    const payload = randomBytes(far.byteLength, 77);
    const fillerTail = randomBytes(8, 78);

    // Header, then holes everywhere except a few bytes written at large positions.
    const fh = await open(path, "w");
    try {
      await fh.write(plan.header, 0, plan.header.length, 0);
      await fh.truncate(plan.fileSize);
      await fh.write(payload, 0, payload.length, far.offset);
      await fh.write(fillerTail, 0, 8, plan.tensors[0].offset + plan.tensors[0].byteLength - 8);
    } finally {
      await fh.close();
    }

    const file = await openGGUF(path);
    try {
      assert.ok(file.source.size > 4.5 * GiB);
      assert.deepEqual(file.tensors, plan.tensors);
      const t = getTensor(file, "far");
      assert.equal(t.offset, far.offset);
      assert.deepEqual(await readTensorBytes(file, t), payload);
      const filler = getTensor(file, "filler");
      assert.equal(filler.byteLength, 4.5 * GiB);
      assert.deepEqual(await file.source.read(filler.offset + filler.byteLength - 8, 8), fillerTail);
    } finally {
      await file.source.close();
    }
  } finally {
    cleanup();
  }
});
