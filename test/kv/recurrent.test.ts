// RecurrentState (gated DeltaNet layers): fixed size, truncation only to its length or 0 (0 zeroes both states),
// save/load round trip read back through the backend, and a ModelCache mixing it with full attention.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { FullAttentionState } from "../../src/kv/full-attention.js";
import { RecurrentState, recurrent } from "../../src/kv/recurrent.js";
import { ModelCache } from "../../src/kv/state.js";

const be = new ScalarBackend();
const DIMS = { convChannels: 5, convKeep: 3, nHeadV: 2, headDim: 4 };
const CTX = 10;

test("RecurrentState: fixed size, truncates only to its length or 0, and 0 clears both states", async () => {
  const s = new RecurrentState(be, CTX, DIMS);
  assert.equal(s.kind, "recurrent");
  assert.equal(s.bytes, 3 * 4 * (5 * 3 + 2 * 4 * 4), "both states, their second buffers and the checkpoint");
  assert.equal(RecurrentState.bytesFor(DIMS), s.bytes);
  assert.equal(s.savedBytes(0), s.bytes / 3);
  assert.equal(s.savedBytes(7), s.bytes / 3, "the same whatever the length");
  be.write(s.conv, Float32Array.from({ length: 15 }, (_, i) => i + 1));
  be.write(s.ssm, Float32Array.from({ length: 32 }, (_, i) => -i - 1));
  s.advance(6);
  assert.throws(() => s.advance(5), RangeError, "past nCtx");
  for (const n of [0, 6]) assert.equal(s.canTruncate(n), true, `to ${n}`);
  for (const n of [1, 5, 7]) assert.equal(s.canTruncate(n), false, `to ${n}`);
  assert.throws(() => s.truncate(3), /cannot be rolled back to 3/);
  s.truncate(6);
  assert.equal((await be.read(s.conv))[0], 1, "truncating to its own length keeps the state");
  s.truncate(0);
  assert.equal(s.length, 0);
  assert.ok((await be.read(s.conv)).every((v) => v === 0) && (await be.read(s.ssm)).every((v) => v === 0), "0 is the zero state");
});

test("RecurrentState: a forward's delta-rule state becomes current at commit(); restore() brings back the conv state", async () => {
  const s = new RecurrentState(be, CTX, DIMS);
  be.write(s.conv, Float32Array.from({ length: 15 }, (_, i) => i));
  be.write(s.ssm, Float32Array.from({ length: 32 }, (_, i) => 2 * i));
  const before = [await be.read(s.conv), await be.read(s.ssm)];
  // A forward that fails: it changed the conv state in place and wrote the next delta-rule state.
  s.snapshot();
  be.write(s.conv, new Float32Array(15).fill(9));
  be.write(s.ssmNext, new Float32Array(32).fill(-9));
  s.restore();
  assert.deepEqual([await be.read(s.conv), await be.read(s.ssm)], before);
  // One that completes.
  s.snapshot();
  be.write(s.ssmNext, new Float32Array(32).fill(5));
  s.commit();
  assert.ok((await be.read(s.ssm)).every((v) => v === 5));
  assert.notEqual(s.ssm, s.ssmNext);
});

test("RecurrentState: truncating to its checkpoint brings back the states it had there; 0 and load() drop the checkpoint", async () => {
  const s = new RecurrentState(be, CTX, DIMS);
  const write = (v: number) => {
    be.write(s.conv, new Float32Array(15).fill(v));
    be.write(s.ssm, new Float32Array(32).fill(-v));
  };
  write(1);
  s.advance(3);
  s.checkpoint();
  assert.equal(s.checkpointLength, 3);
  write(2);
  s.advance(4);
  for (const n of [0, 3, 7]) assert.equal(s.canTruncate(n), true, `to ${n}`);
  for (const n of [1, 4, 6]) assert.equal(s.canTruncate(n), false, `to ${n}`);
  s.truncate(3);
  assert.equal(s.length, 3);
  assert.ok((await be.read(s.conv)).every((v) => v === 1) && (await be.read(s.ssm)).every((v) => v === -1), "the checkpoint's states");
  s.advance(2);
  s.truncate(3); // the checkpoint stays usable
  assert.ok((await be.read(s.conv)).every((v) => v === 1));
  s.truncate(0);
  assert.equal(s.checkpointLength, undefined);
  s.checkpoint();
  s.advance(2);
  s.load(await s.save(), 2);
  assert.equal(s.checkpointLength, undefined, "a loaded state has no checkpoint");
  assert.equal(s.canTruncate(1), false);
});

test("ModelCache.rollbackPoint: the longest prefix every layer can return to", () => {
  const full = new FullAttentionState(be, CTX, 4);
  const rec = new RecurrentState(be, CTX, DIMS);
  const cache = new ModelCache([rec, full], CTX);
  cache.advance(4);
  cache.checkpoint();
  cache.advance(3);
  assert.deepEqual([7, 6, 5, 4, 3, 0].map((n) => cache.rollbackPoint(n)), [7, 4, 4, 4, 0, 0]);
  cache.free();
});

test("RecurrentState: save, load into a fresh state (bytes at an odd offset too) gives the same states", async () => {
  const a = new RecurrentState(be, CTX, DIMS);
  be.write(a.conv, Float32Array.from({ length: 15 }, (_, i) => Math.sin(i)));
  be.write(a.ssm, Float32Array.from({ length: 32 }, (_, i) => Math.cos(i) * 3));
  a.advance(4);
  const bytes = await a.save();
  assert.equal(bytes.byteLength, a.savedBytes(4));
  const file = new Uint8Array(bytes.byteLength + 3);
  file.set(bytes, 3);
  const b = new RecurrentState(be, CTX, DIMS);
  b.load(file.subarray(3), 4);
  assert.equal(b.length, 4);
  assert.deepEqual(await be.read(b.conv), await be.read(a.conv));
  assert.deepEqual(await be.read(b.ssm), await be.read(a.ssm));
  assert.throws(() => b.load(bytes.subarray(4), 4), /needs 188 bytes, got 184/);
  assert.throws(() => b.load(bytes, CTX + 1), RangeError);
});

test("a hybrid ModelCache truncates to 0 or its length only, and recurrent() refuses a full-attention layer", () => {
  const full = new FullAttentionState(be, CTX, 4);
  const rec = new RecurrentState(be, CTX, DIMS);
  const cache = new ModelCache([rec, full], CTX);
  cache.advance(5);
  assert.equal(cache.canTruncate(3), false, "the recurrent layer cannot roll back");
  assert.equal(cache.canTruncate(5), true);
  assert.throws(() => cache.truncate(3), /layer 0's recurrent state cannot be truncated to 3/);
  cache.truncate(0);
  assert.deepEqual([rec.length, full.length], [0, 0]);
  assert.equal(cache.bytes, rec.bytes + full.bytes);
  assert.throws(() => recurrent(full), /expected a recurrent layer state, got 'full'/);
  cache.free();
});
