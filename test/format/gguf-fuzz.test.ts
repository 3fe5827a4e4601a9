// Fuzz: seeded truncations, bit flips and byte overwrites of a real file. Each copy must parse to
// tensors that lie within the file, or be refused with a FormatError/ModelError; never another
// error, never a hang, never a large allocation.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BufferSource, checkTensorLayout, meta, readGGUF, readTensorBytes, serializeGGUFHeader, tensorByteLength, type GGUFFile,
} from "../../src/format/gguf/index.js";
import { FormatError, ModelError } from "../../src/util/errors.js";
import { buildFile, prng, richMetadata, sampleTensors } from "./gguf-fixtures.js";

const CASES = 2000;

function baseFile(): Uint8Array {
  const metadata = richMetadata();
  metadata.set("tokenizer.ggml.tokens", meta.strArray(Array.from({ length: 200 }, (_, i) => `tok${i}`)));
  metadata.set("tokenizer.ggml.scores", meta.f32Array(Array.from({ length: 200 }, (_, i) => i / 3)));
  return buildFile({ metadata, tensors: sampleTensors(4), alignment: 64 });
}

const INTERESTING = [0n, 1n, 0x7fn, 0x80n, 0xffn, 0xffffn, 0xffffffffn, 1n << 32n, (1n << 53n) + 1n, 1n << 63n, (1n << 64n) - 1n];

/** One seeded mutation of `base`. */
function mutate(base: Uint8Array, r: () => number, headerEnd: number): Uint8Array {
  const pos = () => (r() < 0.85 ? Math.floor(r() * headerEnd) : Math.floor(r() * base.length));
  const kind = Math.floor(r() * 5);
  if (kind === 0) return base.slice(0, pos());
  const out = base.slice();
  const edits = 1 + Math.floor(r() * 4);
  for (let e = 0; e < edits; e++) {
    const p = pos();
    if (kind === 1) {
      out[p] ^= 1 << Math.floor(r() * 8); // bit flip
    } else if (kind === 2) {
      const n = 1 + Math.floor(r() * 8);
      for (let i = 0; i < n && p + i < out.length; i++) out[p + i] = Math.floor(r() * 256);
    } else {
      // A plausible-looking or absurd u64 where a count, length, type or offset may sit.
      let v = INTERESTING[Math.floor(r() * INTERESTING.length)];
      if (kind === 4) v = BigInt(Math.floor(r() * 64));
      for (let i = 0; i < 8 && p + i < out.length; i++) out[p + i] = Number((v >> BigInt(8 * i)) & 0xffn);
    }
  }
  return kind === 4 && r() < 0.3 ? out.slice(0, pos()) : out;
}

async function checkParsed(file: GGUFFile, size: number): Promise<void> {
  assert.ok(file.dataOffset % file.alignment === 0);
  for (const t of file.tensors) {
    assert.ok(t.offset >= file.dataOffset && t.offset + t.byteLength <= size, `tensor ${t.name} out of the file`);
    assert.equal(t.offset, file.dataOffset + t.relOffset);
    assert.equal(t.byteLength, tensorByteLength(t.type, t.shape));
    assert.equal((await readTensorBytes(file, t)).byteLength, t.byteLength);
  }
  // The layout check load applies after parsing refuses by name or passes; nothing else.
  try {
    checkTensorLayout(file);
  } catch (e) {
    assert.ok(e instanceof FormatError && e.code === "tensor_size_mismatch", String(e));
  }
  // Whatever we accepted, we can write back and read again to the same metadata.
  const again = await readGGUF(new BufferSource(serializeGGUFHeader({ version: file.version, metadata: file.metadata, tensors: [] })));
  assert.deepEqual(again.metadata, file.metadata);
}

test(`fuzz: ${CASES} mutated copies parse or fail with FormatError/ModelError`, { timeout: 120_000 }, async (t) => {
  const base = baseFile();
  const intact = await readGGUF(new BufferSource(base));
  checkTensorLayout(intact);
  const headerEnd = intact.dataOffset;
  const r = prng(0x5eed);
  const rssStart = process.memoryUsage().rss;
  const outcomes = new Map<string, number>();
  let slowest = 0;
  for (let i = 0; i < CASES; i++) {
    const bytes = mutate(base, r, headerEnd);
    const t0 = performance.now();
    let outcome: string;
    try {
      const file = await readGGUF(new BufferSource(bytes, `case${i}.gguf`));
      await checkParsed(file, bytes.length);
      outcome = "parsed";
    } catch (e) {
      if (!(e instanceof FormatError || e instanceof ModelError)) {
        assert.fail(`case ${i}: unexpected ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
      }
      if (e instanceof FormatError) assert.match(e.message, new RegExp(`^case${i}\\.gguf at byte offset \\d+: `));
      outcome = e.code;
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    assert.ok(ms < 10_000, `case ${i} took ${ms.toFixed(0)} ms`); // hostile counts once took minutes; milliseconds now (diagnostic below)
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  const grew = process.memoryUsage().rss - rssStart;
  t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])))}`);
  t.diagnostic(`slowest case ${slowest.toFixed(1)} ms, rss grew ${(grew / 2 ** 20).toFixed(0)} MiB`);
  assert.ok(grew < 512 * 2 ** 20, `rss grew by ${grew} bytes`);
  assert.ok((outcomes.get("parsed") ?? 0) > 0 && outcomes.size > 5, "the mutations should exercise many paths");
});
