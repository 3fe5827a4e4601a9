import { test } from "node:test";
import assert from "node:assert/strict";
import { GGML_TYPES, GGMLType, ggmlTypeByName, ggmlTypeInfo, ggmlTypeName, tensorByteLength } from "../../src/format/gguf/index.js";
import { ModelError } from "../../src/util/errors.js";

// [id, name, block size, bytes per block] as sizeof(block_*) in llama.cpp's ggml-common.h works out.
const EXPECTED: [number, string, number, number][] = [
  [0, "F32", 1, 4], [1, "F16", 1, 2], [2, "Q4_0", 32, 18], [3, "Q4_1", 32, 20], [6, "Q5_0", 32, 22], [7, "Q5_1", 32, 24],
  [8, "Q8_0", 32, 34], [9, "Q8_1", 32, 36], [10, "Q2_K", 256, 84], [11, "Q3_K", 256, 110], [12, "Q4_K", 256, 144],
  [13, "Q5_K", 256, 176], [14, "Q6_K", 256, 210], [15, "Q8_K", 256, 292], [16, "IQ2_XXS", 256, 66], [17, "IQ2_XS", 256, 74],
  [18, "IQ3_XXS", 256, 98], [19, "IQ1_S", 256, 50], [20, "IQ4_NL", 32, 18], [21, "IQ3_S", 256, 110], [22, "IQ2_S", 256, 82],
  [23, "IQ4_XS", 256, 136], [24, "I8", 1, 1], [25, "I16", 1, 2], [26, "I32", 1, 4], [27, "I64", 1, 8], [28, "F64", 1, 8],
  [29, "IQ1_M", 256, 56], [30, "BF16", 1, 2], [34, "TQ1_0", 256, 54], [35, "TQ2_0", 256, 66], [39, "MXFP4", 32, 17],
];

test("ggml type table matches ggml's block sizes", () => {
  for (const [id, name, blockSize, bytesPerBlock] of EXPECTED) {
    assert.deepEqual({ ...ggmlTypeInfo(id) }, { id, name, blockSize, bytesPerBlock }, name);
    assert.equal(ggmlTypeName(id), name);
    assert.equal(ggmlTypeByName(name)?.id, id);
    assert.equal(GGMLType[name as keyof typeof GGMLType], id);
  }
  assert.equal(new Set(GGML_TYPES.map((t) => t.id)).size, GGML_TYPES.length);
  for (const t of GGML_TYPES) assert.equal(GGMLType[t.name as keyof typeof GGMLType], t.id);
});

test("names: unknown ids render readably, lookups are case-insensitive", () => {
  assert.equal(ggmlTypeName(4), "unknown(4)");
  assert.equal(ggmlTypeInfo(31), undefined);
  assert.equal(ggmlTypeByName("q4_k")?.id, 12);
  assert.equal(ggmlTypeByName("Q4_2"), undefined);
});

test("tensorByteLength", () => {
  assert.equal(tensorByteLength(GGMLType.F32, [7, 3]), 84);
  assert.equal(tensorByteLength(GGMLType.Q4_K, [512, 10, 4]), 2 * 144 * 40);
  assert.equal(tensorByteLength(GGMLType.Q8_0, [64]), 68);
  assert.equal(tensorByteLength(GGMLType.F16, []), 2);
  assert.equal(tensorByteLength(GGMLType.Q6_K, [0, 5]), 0);
  // A DeepSeek-sized expert tensor: past 2^32 bytes, exact.
  assert.equal(tensorByteLength(GGMLType.Q4_K, [7168, 2048, 256]), (7168 / 256) * 144 * 2048 * 256);
  const code = (f: () => unknown, c: string) => assert.throws(f, (e: unknown) => e instanceof ModelError && e.code === c);
  code(() => tensorByteLength(GGMLType.Q4_0, [33]), "bad_shape");
  code(() => tensorByteLength(GGMLType.Q4_K, [128, 2]), "bad_shape");
  code(() => tensorByteLength(GGMLType.F32, [-1]), "bad_shape");
  code(() => tensorByteLength(GGMLType.F32, [1.5]), "bad_shape");
  code(() => tensorByteLength(GGMLType.F32, [2 ** 30, 2 ** 30, 2 ** 30]), "bad_shape");
  code(() => tensorByteLength(5, [32]), "unknown_tensor_type");
});
