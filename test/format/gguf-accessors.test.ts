import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BufferSource, getMeta, getTensor, meta, metaBool, metaMap, metaNumber, metaNumberArray, metaString, metaStringArray, readGGUF,
} from "../../src/format/gguf/index.js";
import { ModelError } from "../../src/util/errors.js";
import { buildFile, sampleTensors } from "./gguf-fixtures.js";

const md = metaMap({
  "general.architecture": meta.str("qwen3moe"),
  "x.u32": meta.u32(7),
  "x.f32": meta.f32(0.5),
  "x.u64": meta.u64(1234567890123n),
  "x.u64.huge": meta.u64(1n << 60n),
  "x.i8": meta.i8(-3),
  "x.bool": meta.bool(true),
  "x.strs": meta.strArray(["a", "b"]),
  "x.i32s": meta.i32Array([1, -2]),
  "x.u64s": meta.u64Array([1n, 2n]),
});

function throwsCode(f: () => unknown, code: string, ...mentions: string[]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ModelError, String(e));
    assert.equal(e.code, code);
    for (const m of mentions) assert.ok(e.message.includes(m), `${e.message} should mention ${m}`);
    return true;
  });
}

test("typed accessors return values of the right type", () => {
  assert.equal(metaString(md, "general.architecture"), "qwen3moe");
  assert.equal(metaNumber(md, "x.u32"), 7);
  assert.equal(metaNumber(md, "x.f32"), 0.5);
  assert.equal(metaNumber(md, "x.i8"), -3);
  assert.equal(metaNumber(md, "x.u64"), 1234567890123);
  assert.equal(metaBool(md, "x.bool"), true);
  assert.deepEqual(metaStringArray(md, "x.strs"), ["a", "b"]);
  assert.deepEqual(metaNumberArray(md, "x.i32s"), [1, -2]);
  assert.deepEqual(metaNumberArray(md, "x.u64s"), [1, 2]);
  assert.deepEqual(getMeta(md, "x.u32"), { type: "u32", value: 7 });
  assert.equal(getMeta(md, "nope"), undefined);
});

test("defaults apply only when the key is absent", () => {
  assert.equal(metaNumber(md, "nope", { default: 1e-6 }), 1e-6);
  assert.equal(metaString(md, "nope", { default: "d" }), "d");
  assert.deepEqual(metaStringArray(md, "nope", { default: [] }), []);
  assert.equal(metaNumber(md, "x.u32", { default: 1 }), 7);
  throwsCode(() => metaNumber(md, "general.architecture", { default: 1 }), "bad_key_type");
});

test("missing_key and bad_key_type name the key, and the file when known", () => {
  throwsCode(() => metaNumber(md, "qwen3moe.block_count"), "missing_key", "qwen3moe.block_count");
  throwsCode(() => metaNumber(md, "qwen3moe.block_count", { file: "m.gguf" }), "missing_key", "qwen3moe.block_count", "m.gguf");
  throwsCode(() => metaString(md, "x.u32"), "bad_key_type", "x.u32", "u32");
  throwsCode(() => metaNumber(md, "x.strs"), "bad_key_type", "x.strs", "array of string");
  throwsCode(() => metaNumber(md, "x.u64.huge"), "bad_key_type", "x.u64.huge");
  throwsCode(() => metaStringArray(md, "x.i32s"), "bad_key_type");
  throwsCode(() => metaNumberArray(md, "x.strs"), "bad_key_type");
  throwsCode(() => metaBool(md, "x.u32"), "bad_key_type");
});

test("accessors take a parsed file and name it; getTensor finds tensors by name", async () => {
  const file = await readGGUF(new BufferSource(buildFile({ metadata: md, tensors: sampleTensors() }), "model.gguf"));
  assert.equal(metaNumber(file, "x.u32"), 7);
  throwsCode(() => metaString(file, "general.name"), "missing_key", "general.name", "model.gguf");
  assert.equal(getTensor(file, "output_norm.weight").shape[0], 64);
  throwsCode(() => getTensor(file, "nope.weight"), "missing_tensor", "nope.weight", "model.gguf");
});
