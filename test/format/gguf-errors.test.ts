// Every malformation the reader refuses: the FormatError code, the file, and the byte offset it names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BufferSource, GGMLType, checkTensorLayout, readGGUF, readTensorBytes } from "../../src/format/gguf/index.js";
import { FormatError } from "../../src/util/errors.js";
import { RawGGUF, buildFile, richMetadata, sampleTensors } from "./gguf-fixtures.js";

async function expectError(bytes: Uint8Array, code: string, offset: number): Promise<void> {
  await assert.rejects(readGGUF(new BufferSource(bytes, "bad.gguf")), (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.file, "bad.gguf");
    assert.equal(e.offset, offset, e.message);
    assert.ok(e.message.startsWith(`bad.gguf at byte offset ${offset}: `), e.message);
    return true;
  });
}

// Layout reminders: the fixed header is 24 bytes, so the first key starts at 24; a one-letter
// key takes 9 bytes, its type sits at 33 and its value at 37. A one-letter, one-dimension tensor
// info: name 24..33, n_dims 33..37, dim 37..45, type 45..49, offset 49..57.
const raw = () => new RawGGUF();

test("bad_magic", async () => {
  await expectError(raw().bytes(0x47, 0x47, 0x55, 0x58).u32(3).u64(0).u64(0).build(), "bad_magic", 0);
});

test("unsupported_version: v1, v4, big-endian", async () => {
  await expectError(raw().header(0, 0, 1).build(), "unsupported_version", 4);
  await expectError(raw().header(0, 0, 4).build(), "unsupported_version", 4);
  await expectError(raw().header(0, 0, 0x03000000).build(), "unsupported_version", 4);
});

test("truncated: in the magic, the header, a value, a string and a tensor info", async () => {
  await expectError(Uint8Array.of(0x47, 0x47), "truncated", 0);
  await expectError(raw().header(0, 0).build().subarray(0, 20), "truncated", 4);
  await expectError(raw().header(0, 1).str("k").u32(4).bytes(1, 2).build(), "truncated", 37);
  await expectError(raw().header(0, 1).u64(100).bytes(...new Array(20).fill(0x61)).build(), "truncated", 24);
  await expectError(raw().header(1, 0).str("t").u32(1).u64(4).u32(0).build(), "truncated", 37);
});

test("a real file cut at every byte of its header, or inside its data, is refused", async () => {
  const full = buildFile({ metadata: richMetadata(), tensors: sampleTensors() });
  const file = await readGGUF(new BufferSource(full));
  const seen = new Set<string>();
  for (let n = 0; n < full.length; n += n < file.dataOffset ? 1 : 97) {
    await assert.rejects(readGGUF(new BufferSource(full.subarray(0, n), "cut.gguf")), (e: unknown) => {
      assert.ok(e instanceof FormatError, String(e));
      // A cut header ends mid-field or leaves too few bytes for the counts it announced; a cut in
      // the padding after it or in the data leaves tensors hanging past the end.
      const want = n < file.dataOffset ? ["truncated", "implausible_count", "tensor_out_of_bounds"] : ["tensor_out_of_bounds"];
      assert.ok(want.includes(e.code), `cut at ${n}: ${e.message}`);
      assert.ok(Number(e.offset) <= n, `cut at ${n}: ${e.message}`);
      seen.add(e.code);
      return true;
    });
  }
  assert.deepEqual([...seen].sort(), ["implausible_count", "tensor_out_of_bounds", "truncated"]);
});

test("bad_value_type: unknown value type, unknown array item type, arrays nested too deep", async () => {
  await expectError(raw().header(0, 1).str("k").u32(13).u32(0).build(), "bad_value_type", 33);
  await expectError(raw().header(0, 1).str("k").u32(9).u32(99).u64(0).build(), "bad_value_type", 37);
  const deep = raw().header(0, 1).str("k").u32(9);
  for (let i = 0; i < 9; i++) deep.u32(9).u64(1);
  await expectError(deep.u32(4).u64(0).build(), "bad_value_type", 37 + 8 * 12);
});

test("unknown_tensor_type: a removed id and an id past the table", async () => {
  await expectError(raw().header(1, 0).tensor("t", [32], 4, 0).data(64).build(), "unknown_tensor_type", 45);
  await expectError(raw().header(1, 0).tensor("t", [32], 99, 0).data(64).build(), "unknown_tensor_type", 45);
});

test("tensor_out_of_bounds: data past the end, offset beyond 2^53", async () => {
  await expectError(raw().header(1, 0).tensor("t", [8], GGMLType.F32, 0).data(31).build(), "tensor_out_of_bounds", 49);
  await expectError(raw().header(1, 0).tensor("t", [8], GGMLType.F32, 1n << 60n).data(32).build(), "tensor_out_of_bounds", 49);
});

test("tensor_misaligned", async () => {
  await expectError(raw().header(1, 0).tensor("t", [4], GGMLType.F32, 16).data(64).build(), "tensor_misaligned", 49);
});

test("bad_shape: row not a multiple of the block size, too many dims, huge dims", async () => {
  await expectError(raw().header(1, 0).tensor("t", [33], GGMLType.Q4_0, 0).data(64).build(), "bad_shape", 24);
  // a K-quant row of 384 values (1.5 super-blocks), named with its tensor and type
  await assert.rejects(readGGUF(new BufferSource(raw().header(1, 0).tensor("t", [384, 2], GGMLType.Q2_K, 0).data(512).build(), "bad.gguf")),
    /tensor "t": shape \[384, 2\]: 384 values per row is not a multiple of Q2_K's block size 256/);
  // an MXFP4 expert tensor whose rows are not whole 32-value blocks (gpt-oss's 2880 plus a half block)
  await assert.rejects(readGGUF(new BufferSource(raw().header(1, 0).tensor("blk.0.ffn_up_exps.weight", [2896, 4, 2], GGMLType.MXFP4, 0).data(64).build(), "bad.gguf")),
    (e: unknown) => e instanceof FormatError && e.code === "bad_shape" &&
      /tensor "blk\.0\.ffn_up_exps\.weight": shape \[2896, 4, 2\]: 2896 values per row is not a multiple of MXFP4's block size 32/.test(e.message));
  await expectError(raw().header(1, 0).tensor("t", [1, 1, 1, 1, 1], GGMLType.F32, 0).data(64).build(), "bad_shape", 33);
  await expectError(raw().header(1, 0).tensor("t", [1n << 60n], GGMLType.F32, 0).data(64).build(), "bad_shape", 37);
  await expectError(raw().header(1, 0).tensor("t", [1 << 30, 1 << 30, 1 << 30], GGMLType.F32, 0).data(64).build(), "bad_shape", 24);
});

test("tensor_overlap: two tensors sharing bytes", async () => {
  const bytes = raw().header(2, 0).tensor("t", [8], GGMLType.F32, 0).tensor("u", [8], GGMLType.F32, 0).data(64).build();
  await expectError(bytes, "tensor_overlap", 82);
});

test("implausible_count: tensor, metadata and array counts; string lengths", async () => {
  await expectError(raw().header(1n << 40n, 0).build(), "implausible_count", 8);
  await expectError(raw().header(0, 1n << 40n).build(), "implausible_count", 16);
  await expectError(raw().header(0, 1n << 62n).build(), "implausible_count", 16);
  await expectError(raw().header(0, 1).str("k").u32(9).u32(4).u64(1n << 40n).build(), "implausible_count", 41);
  await expectError(raw().header(0, 1).str("k").u32(9).u32(8).u64(1000).build(), "implausible_count", 41);
  await expectError(raw().header(0, 1).u64(1n << 40n).bytes(...new Array(16).fill(0)).build(), "implausible_count", 24);
  // 3 tensors announced, room for fewer than 3 infos once the metadata is read.
  await expectError(raw().header(3, 1).str("k").u32(9).u32(0).u64(80).bytes(...new Array(80).fill(0)).build(), "implausible_count", 8);
});

test("duplicate_key and duplicate_tensor", async () => {
  await expectError(raw().header(0, 2).kvU32("k", 1).kvU32("k", 2).build(), "duplicate_key", 41);
  const bytes = raw().header(2, 0).tensor("t", [8], GGMLType.F32, 0).tensor("t", [8], GGMLType.F32, 32).data(64).build();
  await expectError(bytes, "duplicate_tensor", 57);
});

test("bad_string: invalid UTF-8 in a key, a value and a tensor name; empty key", async () => {
  await expectError(raw().header(0, 1).str(Uint8Array.of(0xff)).u32(4).u32(0).build(), "bad_string", 32);
  await expectError(raw().header(0, 1).str("k").u32(8).str(Uint8Array.of(0x61, 0xc3)).build(), "bad_string", 45);
  await expectError(raw().header(0, 1).str("k").u32(9).u32(8).u64(2).str("ok").str(Uint8Array.of(0xed, 0xa0, 0x80)).build(), "bad_string", 67);
  await expectError(raw().header(1, 0).str(Uint8Array.of(0xc0, 0x80)).u32(1).u64(4).u32(0).u64(0).data(32).build(), "bad_string", 32);
  await expectError(raw().header(0, 1).str("").u32(4).u32(0).build(), "bad_string", 24);
});

test("bad_alignment: not a power of two, wrong type", async () => {
  await expectError(raw().header(0, 1).kvU32("general.alignment", 48).build(), "bad_alignment", 49);
  await expectError(raw().header(0, 1).str("general.alignment").u32(10).u64(64).build(), "bad_alignment", 49);
});

test("readTensorBytes: short source is a truncated FormatError at the tensor's offset", async () => {
  const bytes = buildFile({ metadata: new Map(), tensors: sampleTensors() });
  const file = await readGGUF(new BufferSource(bytes, "ok.gguf"));
  const last = file.tensors[file.tensors.length - 1];
  const cut = { ...file, source: new BufferSource(bytes.subarray(0, last.offset + 3), "cut.gguf") };
  await assert.rejects(readTensorBytes(cut, last), (e: unknown) => {
    assert.ok(e instanceof FormatError && e.code === "truncated" && e.offset === last.offset);
    assert.match(e.message, new RegExp(`cut\\.gguf at byte offset ${last.offset}`));
    return true;
  });
});

test("zero tensors and zero-length tensors are fine", async () => {
  const file = await readGGUF(new BufferSource(raw().header(0, 0).build()));
  assert.deepEqual(file.tensors, []);
  const bytes = raw().header(2, 0).tensor("e", [0, 4], GGMLType.Q4_K, 0).tensor("f", [4], GGMLType.F32, 0).data(16).build();
  const f2 = await readGGUF(new BufferSource(bytes));
  assert.deepEqual(f2.tensors.map((t) => t.byteLength), [0, 16]);
});

test("checkTensorLayout: bytes no tensor claims (a type changed to a smaller one, an info entry lost, a longer file) name the tensor before them", async () => {
  const file = (b: RawGGUF) => readGGUF(new BufferSource(b.build(), "lay.gguf"));
  const two = (a: number, b: number) => raw().header(2, 0).tensor("a", [64], a, 0).tensor("b", [64], b, 256).data(512); // data at 96
  const refused = (offset: number, re: RegExp) => (e: unknown) => e instanceof FormatError && e.code === "tensor_size_mismatch" && e.file === "lay.gguf" && e.offset === offset && re.test(e.message);
  checkTensorLayout(await file(two(GGMLType.F32, GGMLType.F32)));
  const aAsF16 = await file(two(GGMLType.F16, GGMLType.F32));
  assert.throws(() => checkTensorLayout(aAsF16), refused(96 + 128, /tensor "a" \(F16 \[64\], 128 bytes at 96\) is followed by 128 bytes that no tensor claims before tensor "b": its type or shape disagrees/));
  const bAsF16 = await file(two(GGMLType.F32, GGMLType.F16));
  assert.throws(() => checkTensorLayout(bAsF16), refused(96 + 256 + 128, /tensor "b" .* is followed by 128 bytes that no tensor claims before the end of the file/));
  const aLost = await file(raw().header(1, 0).tensor("b", [64], GGMLType.F32, 256).data(512)); // data at 64
  assert.throws(() => checkTensorLayout(aLost), refused(64, /the data region starts with 256 bytes that no tensor claims before tensor "b"/));
  // Padding short of the alignment is what writers leave; zero-length tensors claim nothing.
  checkTensorLayout(await file(raw().header(2, 0).tensor("a", [4], GGMLType.F32, 0).tensor("z", [0], GGMLType.F32, 0).data(32)));
});
