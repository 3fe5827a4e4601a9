// Seeded corruption of a model file's GGUF header and of a saved session, loaded and run end to end: each case
// is a typed error naming the file, or (damage in bytes nothing reads) output identical to the intact model's.
// Never another error, an abort, or a run that completes with different output. Packs: corruption-pack.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/engine/model.js";
import { Session } from "../../src/engine/session.js";
import { FormatError } from "../../src/util/errors.js";
import { GGMLType, ggmlTypeName } from "../../src/format/gguf/ggml-types.js";
import { openGGUF } from "../../src/format/gguf/read.js";
import { mulberry32 } from "../helpers/numeric.js";
import { smallVocabModel } from "../helpers/models.js";
import {
  CorruptionTally, PROMPT, continueSession, ggufFields, loadInThread, hostileUnsigned, le, runModel, withPatch, type GGUFField, type RunOutput,
} from "../helpers/corruption.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-corrupt-model-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A private copy of the small-vocabulary tiny model (cases patch it in place and restore it). */
async function baseModel(): Promise<{ path: string; bytes: Uint8Array; reference: RunOutput }> {
  const path = join(dir, "model.gguf");
  copyFileSync(await smallVocabModel({ type: "Q8_0", seed: 3, nVocab: 1024 }), path);
  return { path, bytes: new Uint8Array(readFileSync(path)), reference: await runModel(path) };
}

const f32 = (x: number) => new Uint8Array(Float32Array.of(x).buffer);

test("GGUF header: seeded corruption of counts, lengths, types, dims, offsets and hyperparameters; 0 silent wrong outputs", async (t) => {
  const { path, bytes, reference } = await baseModel();
  const fields = ggufFields(bytes);
  const tally = new CorruptionTally();
  const r = mulberry32(0x19c0);
  const field = (what: string) => fields.find((f) => f.what === what) ?? assert.fail(`no field ${what}`);
  const patchRun = (cls: string, label: string, at: number, b: Uint8Array) => tally.judge(cls, label, [path], reference, () => withPatch(path, at, b, () => runModel(path)));

  // Structural fields: a hostile value in a seeded pick of them (the walk above found where each sits).
  const structural = fields.filter((f) => f.kind !== "value");
  for (let i = 0; i < 70; i++) {
    const f = structural[Math.floor(r() * structural.length)];
    const v = hostileUnsigned(f.value, f.width, r);
    await patchRun(`header ${f.kind}`, `${f.what} ${f.value} -> ${v}`, f.at, le(v, f.width));
  }

  // The two counts (few among hundreds of fields, so each gets every hostile value): tensors and metadata entries.
  for (const f of fields.filter((x) => x.kind === "count")) {
    for (const v of [f.value - 1n, f.value + 1n, 0n, 1n << 31n, (1n << 32n) + f.value, (1n << 63n) | f.value, (1n << 64n) - 1n]) {
      await patchRun("header count", `${f.what} ${f.value} -> ${v}`, f.at, le(v, 8));
    }
  }

  // Hyperparameters: the hostile values of issue 19, and off-by-one in every one that shapes a tensor.
  const hp = (key: string) => field(`"qwen3moe.${key}" value`);
  const named: [GGUFField, Uint8Array, string][] = [];
  for (const x of [NaN, 0, -1, Infinity, 1e30]) named.push([hp("rope.freq_base"), f32(x), String(x)]);
  for (const x of [NaN, -1, 0, 1e30]) named.push([hp("attention.layer_norm_rms_epsilon"), f32(x), String(x)]);
  for (const [key, xs] of Object.entries({
    block_count: [2 ** 31, 2 ** 32 - 1, 0], expert_count: [0, 2 ** 31], expert_used_count: [0, 17, 2 ** 31], embedding_length: [2 ** 31, 0],
    context_length: [0, 2 ** 31], "attention.head_count": [0], "attention.key_length": [2 ** 20],
  })) for (const x of xs) named.push([hp(key), le(BigInt(x), 4), String(x)]);
  for (const key of ["block_count", "expert_count", "embedding_length", "attention.head_count", "attention.head_count_kv", "attention.key_length", "attention.value_length", "expert_feed_forward_length", "context_length"]) {
    const f = hp(key);
    for (const d of [-1n, 1n]) named.push([f, le(f.value + d, 4), String(f.value + d)]);
  }
  let slowest = 0;
  for (const [f, b, shown] of named) {
    const t0 = performance.now();
    await patchRun("hyperparameter", `${f.key} = ${shown}`, f.at, b);
    slowest = Math.max(slowest, performance.now() - t0);
  }

  // An expert tensor whose type was changed in the header: its bytes no longer fit the type; named at load.
  const layout = await openGGUF(path);
  await layout.source.close();
  for (const name of ["blk.1.ffn_up_exps.weight", "blk.3.ffn_down_exps.weight", "blk.0.attn_norm.weight", "token_embd.weight"]) {
    const f = field(`tensor ${name} type`);
    for (const type of [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.Q4_0, GGMLType.I32]) {
      if (BigInt(type) === f.value) continue;
      const out = await patchRun("tensor type", `${name} ${ggmlTypeName(Number(f.value))} -> ${ggmlTypeName(type)}`, f.at, le(BigInt(type), 4));
      if (out === "identical") tally.failures.push(`tensor type / ${name} as ${ggmlTypeName(type)} ran: a type change must be refused`);
    }
  }

  // Bytes nothing reads: the padding after the header and between tensors. Output must be identical.
  const padding: number[] = [];
  const ends = layout.tensors.map((x) => ({ end: x.offset + x.byteLength })).sort((a, b) => a.end - b.end);
  const headerEnd = fields.at(-1)!.at + 8;
  if (layout.dataOffset > headerEnd) padding.push(headerEnd, layout.dataOffset - 1);
  for (const { end } of ends) if (end % layout.alignment !== 0 && end < bytes.length) padding.push(end);
  for (const at of padding.slice(0, 8)) await patchRun("padding", `byte ${at}`, at, Uint8Array.of(0xa5));

  // Truncations anywhere, header or data.
  for (let i = 0; i < 10; i++) {
    const at = i < 5 ? Math.floor(r() * layout.dataOffset) : layout.dataOffset + Math.floor(r() * (bytes.length - layout.dataOffset));
    await tally.judge("truncated", `at ${at}`, [path], reference, async () => {
      writeFileSync(path, bytes.subarray(0, at));
      try {
        return await runModel(path);
      } finally {
        writeFileSync(path, bytes);
      }
    });
  }

  for (const line of tally.summary()) t.diagnostic(line);
  t.diagnostic(`slowest hyperparameter case ${slowest.toFixed(0)} ms`);
  assert.equal(tally.failures.length, 0, tally.failures.join("\n"));
});

test("GGUF header: a missing tensor-info entry (its data left in place) is refused naming that tensor", async (t) => {
  const { path, bytes, reference } = await baseModel();
  const file = await openGGUF(path);
  await file.source.close();
  const fields = ggufFields(bytes);
  const tally = new CorruptionTally();
  const r = mulberry32(0x19c1);
  const picks = [0, file.tensors.length - 1, ...Array.from({ length: 6 }, () => Math.floor(r() * file.tensors.length))];
  for (const i of new Set(picks)) {
    const name = file.tensors[i].name;
    // The header without tensor i's info entry, the data region as it was: every other offset still holds.
    const start = fields.find((f) => f.what === `tensor ${i} name length`)!.at;
    const end = fields.find((f) => f.what === `tensor ${name} offset`)!.at + 8;
    const headerEnd = fields.at(-1)!.at + 8;
    const header = new Uint8Array(file.dataOffset);
    header.set(bytes.subarray(0, start));
    header.set(bytes.subarray(end, headerEnd), start);
    header.set(le(BigInt(file.tensors.length - 1), 8), 8);
    const dataAt = Math.ceil((headerEnd - (end - start)) / file.alignment) * file.alignment;
    const cut = join(dir, `cut${i}.gguf`);
    writeFileSync(cut, Buffer.concat([header.subarray(0, dataAt), bytes.subarray(file.dataOffset)]));
    const out = await tally.judge("missing tensor info", name, [cut], reference, async () => {
      try {
        return await runModel(cut);
      } catch (e) {
        assert.ok((e as Error).message.includes(`'${name}'`) || (e as Error).message.includes(`"${name}"`), `names ${name}: ${(e as Error).message}`);
        throw e;
      }
    });
    assert.equal(out, "typed", tally.failures.join("\n"));
  }
  for (const line of tally.summary()) t.diagnostic(line);
  assert.equal(tally.failures.length, 0, tally.failures.join("\n"));
});

test("session files: seeded corruption of the header length, magic, version, JSON, padding, state bytes and checksum; 0 silent wrong outputs", async (t) => {
  const { path: modelPath } = await baseModel();
  const model = await loadInThread(modelPath);
  try {
    const saved = join(dir, "base.session");
    const s = new Session(model);
    for await (const _ of s.generate(PROMPT, { maxTokens: 5, sampling: { temperature: 0 }, stopAtEog: false }));
    await s.save(saved);
    s.free();
    const bytes = new Uint8Array(readFileSync(saved));
    const run = async (p: string) => {
      const x = new Session(model);
      try {
        await x.load(p);
        return await continueSession(x);
      } finally {
        x.free();
      }
    };
    const reference = await run(saved);
    const jsonLength = new DataView(bytes.buffer).getUint32(12, true);
    const jsonEnd = 16 + jsonLength;
    const dataAt = Math.ceil(jsonEnd / 16) * 16;
    const tally = new CorruptionTally();
    const r = mulberry32(0x19c2);
    const path = join(dir, "case.session");
    const one = (cls: string, label: string, b: Uint8Array) => {
      writeFileSync(path, b);
      return tally.judge(cls, label, [path], reference, () => run(path));
    };
    const flipped = (at: number, mask: number) => {
      const b = bytes.slice();
      b[at] ^= mask;
      return b;
    };
    for (let bit = 0; bit < 32; bit++) await one("header length", `bit ${bit}`, flipped(12 + (bit >> 3), 1 << (bit & 7)));
    for (const d of [-1, 1, 16]) {
      const b = bytes.slice();
      new DataView(b.buffer).setUint32(12, jsonLength + d, true);
      await one("header length", `${d > 0 ? "+" : ""}${d}`, b);
    }
    for (let i = 0; i < 4; i++) await one("magic and version", `byte ${i * 3}`, flipped(i * 3, 1 << Math.floor(r() * 8)));
    for (let i = 0; i < 30; i++) {
      const at = 16 + Math.floor(r() * jsonLength);
      await one("header JSON", `byte ${at}`, flipped(at, 1 << Math.floor(r() * 8)));
    }
    for (let at = jsonEnd; at < dataAt; at++) await one("padding", `byte ${at}`, flipped(at, 0xff));
    for (let i = 0; i < 30; i++) {
      const at = dataAt + Math.floor(r() * (bytes.length - 4 - dataAt));
      await one("state bytes", `byte ${at}`, flipped(at, 1 << Math.floor(r() * 8)));
    }
    for (let i = 0; i < 4; i++) await one("checksum", `byte ${bytes.length - 4 + i}`, flipped(bytes.length - 4 + i, 1 << Math.floor(r() * 8)));
    for (let i = 0; i < 6; i++) {
      const at = Math.floor(r() * bytes.length);
      await one("truncated or extended", `cut at ${at}`, bytes.subarray(0, at));
    }
    await one("truncated or extended", "4 bytes appended", Buffer.concat([bytes, new Uint8Array(4)]));
    for (const line of tally.summary()) t.diagnostic(line);
    assert.equal(tally.failures.length, 0, tally.failures.join("\n"));
  } finally {
    await model.close();
  }
});

test("through the engine host (the public loadModel, a worker thread): a corrupt header's typed error reaches the caller as it was raised", async () => {
  const { path, bytes } = await baseModel();
  const f = ggufFields(bytes).find((x) => x.what === "tensor blk.1.ffn_up_exps.weight type")!;
  await withPatch(path, f.at, le(BigInt(GGMLType.Q4_K), 4), () =>
    assert.rejects(loadModel(path, { ctxSize: 64, threads: 1 }), (e: unknown) =>
      e instanceof FormatError && e.code === "tensor_size_mismatch" && e.file === path && e.message.startsWith(`${path} at byte offset `) && e.message.includes('tensor "blk.1.ffn_up_exps.weight" (Q4_K [256, 256, 16]')));
});
