// Cross-check with an independent implementation: @huggingface/gguf parses what we write, and we parse what it writes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { GGMLQuantizationType, GGUFValueType as HFValueType, gguf, serializeGgufMetadata } from "@huggingface/gguf";
import {
  BufferSource, GGML_TYPES, GGUFValueType, meta, openGGUF, readGGUF, writeGGUF, type GGUFMetaValue,
} from "../../src/format/gguf/index.js";
import { richMetadata, sampleTensors, tempDir } from "./gguf-fixtures.js";

const WIRE: Record<string, number> = {
  u8: GGUFValueType.UINT8, i8: GGUFValueType.INT8, u16: GGUFValueType.UINT16, i16: GGUFValueType.INT16,
  u32: GGUFValueType.UINT32, i32: GGUFValueType.INT32, f32: GGUFValueType.FLOAT32, bool: GGUFValueType.BOOL,
  string: GGUFValueType.STRING, array: GGUFValueType.ARRAY, u64: GGUFValueType.UINT64, i64: GGUFValueType.INT64, f64: GGUFValueType.FLOAT64,
};

/** Our typed value as the plain JS value @huggingface/gguf produces. */
function plain(v: GGUFMetaValue): unknown {
  if (v.type !== "array") return v.value;
  return v.itemType === "array" ? v.value.map(plain) : v.value;
}

for (const version of [2, 3] as const) {
  test(`@huggingface/gguf reads our v${version} file to the same metadata and tensor infos`, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, "x.gguf");
      const metadata = richMetadata();
      metadata.set("tokenizer.ggml.tokens", meta.strArray(Array.from({ length: 5000 }, (_, i) => `t${i}`)));
      const tensors = sampleTensors(9);
      await writeGGUF(path, { version, metadata, tensors, alignment: 64 });
      const ours = await openGGUF(path);
      await ours.source.close();
      const theirs = await gguf(path, { allowLocalFile: true, typedMetadata: true });

      assert.equal(theirs.metadata.version, version);
      assert.equal(theirs.metadata.tensor_count, BigInt(tensors.length));
      assert.equal(theirs.metadata.kv_count, BigInt(ours.metadata.size));
      assert.equal(theirs.tensorDataOffset, BigInt(ours.dataOffset));
      const typed = theirs.typedMetadata as Record<string, { value: unknown; type: number; subType?: number }>;
      for (const [key, v] of ours.metadata) {
        assert.equal(typed[key]?.type, WIRE[v.type], key);
        if (v.type === "array") assert.equal(typed[key].subType, WIRE[v.itemType], key);
        assert.deepEqual(typed[key].value, plain(v), key);
      }
      assert.deepEqual(
        theirs.tensorInfos.map((t) => ({ name: t.name, shape: t.shape.map(Number), type: t.dtype as number, relOffset: Number(t.offset), nDims: t.n_dims })),
        ours.tensors.map((t) => ({ name: t.name, shape: t.shape, type: t.type, relOffset: t.relOffset, nDims: t.shape.length })),
      );
    } finally {
      cleanup();
    }
  });
}

test("we read a header serialized by @huggingface/gguf", async () => {
  const metadata = richMetadata();
  metadata.delete("t.arr.nested"); // its serializer cannot type items of nested arrays
  metadata.delete("t.arr.u8"); // its serializer takes subType 0 (u8) for "missing"
  const typed: Record<string, { value: unknown; type: number; subType?: number }> = {
    version: { value: 3, type: HFValueType.UINT32 },
    tensor_count: { value: 0n, type: HFValueType.UINT64 },
    kv_count: { value: BigInt(metadata.size), type: HFValueType.UINT64 },
  };
  for (const [key, v] of metadata) {
    typed[key] = { value: plain(v), type: WIRE[v.type], ...(v.type === "array" ? { subType: WIRE[v.itemType] } : {}) };
  }
  const bytes = serializeGgufMetadata(typed as Parameters<typeof serializeGgufMetadata>[0]);
  const file = await readGGUF(new BufferSource(bytes, "hf.gguf"));
  assert.equal(file.version, 3);
  assert.deepEqual(file.metadata, metadata);
  assert.deepEqual(file.tensors, []);
});

test("our ggml type ids and names agree with @huggingface/gguf's enum", () => {
  const enumNames = GGMLQuantizationType as unknown as Record<number, string>;
  for (const t of GGML_TYPES) {
    if (enumNames[t.id] !== undefined) assert.equal(enumNames[t.id], t.name, `type ${t.id}`);
  }
});
