// Per-layer state: FullAttentionState's bounds, its save/load round trip read back through the backend, and
// ModelCache refusing a truncation any one layer cannot undo (a recurrent state only rolls back to 0).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { FullAttentionState, fullAttention } from "../../src/kv/full-attention.js";
import { ModelCache, type LayerState } from "../../src/kv/state.js";
import { LatentState, latent } from "../../src/kv/latent.js";
import { roundToF16 } from "../../src/util/f16.js";

const be = new ScalarBackend();
const KV = 6, CTX = 10;

/** Fill every K and V position with values unique to (which, position, column). */
function fill(s: FullAttentionState): void {
  const n = s.nCtx * s.kvDim;
  be.write(s.k, Float32Array.from({ length: n }, (_, i) => 1000 + i * 0.25));
  be.write(s.v, Float32Array.from({ length: n }, (_, i) => -7 - i * 0.5));
}

test("FullAttentionState: advance, canTruncate and truncate bounds", () => {
  const s = new FullAttentionState(be, CTX, KV);
  assert.equal(s.kind, "full");
  assert.equal(s.bytes, FullAttentionState.bytesFor(CTX, KV));
  assert.equal(s.bytes, 2 * 4 * CTX * KV);
  s.advance(4);
  s.advance(3);
  assert.equal(s.length, 7);
  assert.throws(() => s.advance(4), RangeError, "past nCtx");
  assert.equal(s.length, 7, "a refused advance changes nothing");
  for (const n of [0, 3, 7]) assert.equal(s.canTruncate(n), true, `to ${n}`);
  for (const n of [-1, 8, CTX]) assert.equal(s.canTruncate(n), false, `to ${n}`);
  assert.throws(() => s.truncate(8), RangeError);
  assert.throws(() => s.truncate(-1), RangeError);
  s.truncate(2);
  assert.equal(s.length, 2);
  s.advance(CTX - 2);
  assert.equal(s.length, CTX, "fills to exactly nCtx");
  assert.equal(s.savedBytes(5), 2 * 4 * 5 * KV);
  s.free();
});

test("FullAttentionState: save at n, load into a fresh state gives the same K/V rows for [0, n)", async () => {
  const a = new FullAttentionState(be, CTX, KV);
  fill(a);
  a.advance(5);
  const bytes = await a.save();
  assert.equal(bytes.byteLength, a.savedBytes(5));
  const b = new FullAttentionState(be, CTX, KV);
  b.load(bytes, 5);
  assert.equal(b.length, 5);
  const rows = 5 * KV;
  assert.deepEqual((await be.read(b.k)).subarray(0, rows), (await be.read(a.k)).subarray(0, rows));
  assert.deepEqual((await be.read(b.v)).subarray(0, rows), (await be.read(a.v)).subarray(0, rows));
  assert.ok((await be.read(b.k)).subarray(rows).every((v) => v === 0), "positions past n are not written");

  // The bytes may sit at an odd offset inside a file buffer.
  const file = new Uint8Array(bytes.byteLength + 3);
  file.set(bytes, 3);
  const c = new FullAttentionState(be, CTX, KV);
  c.load(file.subarray(3), 5);
  assert.deepEqual(await c.save(), bytes);

  // An empty state saves nothing and loads back to length 0.
  const e = new FullAttentionState(be, CTX, KV);
  e.load(await e.save(), 0);
  assert.equal(e.length, 0);
});

test("FullAttentionState.load refuses a wrong byte length or a length past nCtx, unchanged", async () => {
  const a = new FullAttentionState(be, CTX, KV);
  fill(a);
  a.advance(4);
  const bytes = await a.save();
  const b = new FullAttentionState(be, CTX, KV);
  b.advance(2);
  assert.throws(() => b.load(bytes.subarray(0, bytes.byteLength - 4), 4), /needs 192 bytes, got 188/);
  assert.throws(() => b.load(bytes, 3), RangeError, "bytes of 4 positions as 3");
  assert.throws(() => b.load(new Uint8Array(b.savedBytes(CTX + 1)), CTX + 1), /does not fit/);
  assert.equal(b.length, 2, "a refused load leaves the state as it was");
  assert.ok((await be.read(b.k)).every((v) => v === 0));
});

/** A fake recurrent state: it can roll back only to 0 (or stay where it is). */
class RollbackToZero implements LayerState {
  readonly kind = "recurrent";
  length = 0;
  truncations: number[] = [];
  constructor(readonly bytes: number) {}
  canTruncate(n: number): boolean {
    return n === this.length || n === 0;
  }
  truncate(n: number): void {
    if (!this.canTruncate(n)) throw new RangeError(`fake state cannot go to ${n}`);
    this.truncations.push(n);
    this.length = n;
  }
  advance(n: number): void {
    this.length += n;
  }
  async save(): Promise<Uint8Array> {
    return new Uint8Array(this.bytes);
  }
  savedBytes(): number {
    return this.bytes;
  }
  load(_b: Uint8Array, length: number): void {
    this.length = length;
  }
  free(): void {}
}

test("fullAttention() refuses a state of another kind, naming it", () => {
  const s = new FullAttentionState(be, CTX, KV);
  assert.equal(fullAttention(s), s);
  assert.throws(() => fullAttention(new RollbackToZero(1)), /'recurrent'/);
});

test("ModelCache: layers advance together; bytes sum; bounds", () => {
  const full = new FullAttentionState(be, CTX, KV), rec = new RollbackToZero(40);
  const c = new ModelCache([full, rec], CTX);
  assert.equal(c.bytes, full.bytes + 40);
  c.advance(6);
  assert.equal(c.length, 6);
  assert.deepEqual([full.length, rec.length], [6, 6]);
  assert.throws(() => c.truncate(7), RangeError);
  assert.throws(() => c.truncate(-1), RangeError);
  assert.equal(c.canTruncate(7), false);
  assert.equal(c.canTruncate(-1), false);
  assert.equal(c.canTruncate(6), true);
  // A cache of no layers still counts its tokens (tests build models without layers).
  const empty = new ModelCache([], 8);
  empty.advance(3);
  assert.equal(empty.length, 3);
  empty.truncate(1);
  assert.equal(empty.length, 1);
});

test("ModelCache refuses truncating to the middle when one layer cannot, naming the layer and kind; 0 works", () => {
  const full = new FullAttentionState(be, CTX, KV), rec = new RollbackToZero(40);
  const c = new ModelCache([full, new FullAttentionState(be, CTX, KV), rec], CTX);
  c.advance(6);
  assert.equal(c.canTruncate(3), false);
  assert.throws(() => c.truncate(3), (e: unknown) => e instanceof RangeError && /layer 2's recurrent state cannot be truncated to 3 tokens/.test(e.message));
  assert.equal(full.length, 6, "no layer was truncated by the refused call");
  assert.deepEqual(rec.truncations, []);
  assert.equal(c.canTruncate(6), true, "to its own length");
  c.truncate(6);
  assert.equal(c.canTruncate(0), true);
  c.truncate(0);
  assert.equal(c.length, 0);
  assert.deepEqual(c.layers.map((l) => l.length), [0, 0, 0]);
});

test("LatentState: bounds, f16 save (2 bytes a value) and load at an odd byte offset restore the rows in use exactly", async () => {
  const W = 9; // kv_lora_rank + rope of a tiny MLA model
  const a = new LatentState(be, CTX, W);
  assert.equal(a.kind, "latent");
  assert.equal(a.bytes, LatentState.bytesFor(CTX, W));
  // Values as the model stores them: already rounded to f16 (exactly representable), with a subnormal and signs.
  const vals = Float32Array.from({ length: CTX * W }, (_, i) => roundToF16((i % 2 ? -1 : 1) * (0.001 + i * 0.37)));
  vals[3] = roundToF16(3e-6);
  be.write(a.kv, vals);
  a.advance(6);
  assert.throws(() => a.advance(5), RangeError);
  assert.equal(a.canTruncate(7), false);
  const bytes = await a.save();
  assert.equal(bytes.byteLength, 2 * 6 * W);
  assert.equal(a.savedBytes(6), bytes.byteLength);
  const shifted = new Uint8Array(bytes.byteLength + 1).subarray(1);
  shifted.set(bytes);
  const b = new LatentState(be, CTX, W);
  b.load(shifted, 6);
  assert.equal(b.length, 6);
  assert.deepEqual((await be.read(b.kv)).subarray(0, 6 * W), vals.subarray(0, 6 * W));
  assert.throws(() => b.load(bytes, 5), /needs 90 bytes, got 108/);
  assert.throws(() => b.load(new Uint8Array(2 * 11 * W), 11), /does not fit 10/);
  b.truncate(2);
  assert.equal(b.length, 2);
  assert.throws(() => latent(new FullAttentionState(be, CTX, KV)), /expected a latent \(MLA\) layer state, got 'full'/);
  assert.equal(latent(b), b);
});
