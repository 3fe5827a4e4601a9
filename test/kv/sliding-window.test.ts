// The sliding-window state against a plain record of every position's K/V rows: each forward sees exactly the window
// before it and its own rows; rollbacks within the held rows, save/load and an aborted forward keep that true. The
// backends' windowed attention, with sinks and without, against a direct evaluation of llama.cpp's masked softmax.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend } from "../../src/backends/backend.js";
import { NativeBackend } from "../../src/backends/cpu/native.js";
import { WasmBackend } from "../../src/backends/wasm/wasm.js";
import { SlidingWindowState, slidingWindow } from "../../src/kv/sliding-window.js";
import { FullAttentionState } from "../../src/kv/full-attention.js";
import { Stream } from "../../src/gen/random.js";

const be = new ScalarBackend();
const D = 3, W = 4, CTX = 40;
/** Position p's K row: values unique to (p, column); V is its negation. */
const kRow = (p: number) => Array.from({ length: D }, (_, c) => 100 * (p + 1) + c);

/** Store positions [s.length, s.length + n); returns the K and V rows the attention reads, as positions. */
async function store(s: SlidingWindowState, n: number, advance = true): Promise<{ positions: number[]; startPos: number }> {
  const start = s.length;
  const k = be.alloc(n * D), v = be.alloc(n * D);
  be.write(k, Float32Array.from({ length: n * D }, (_, i) => kRow(start + Math.floor(i / D))[i % D]));
  be.write(v, Float32Array.from({ length: n * D }, (_, i) => -kRow(start + Math.floor(i / D))[i % D]));
  const rows = W - 1 + n;
  const kv = s.store(k, v, n, be.alloc(rows * D), be.alloc(rows * D));
  assert.equal(kv.window, W);
  const ks = await be.read(kv.k), vs = await be.read(kv.v);
  const positions: number[] = [];
  for (let r = 0; r < kv.startPos + n; r++) {
    const p = ks[r * D] / 100 - 1;
    assert.deepEqual([...ks.subarray(r * D, (r + 1) * D)], kRow(p));
    assert.deepEqual([...vs.subarray(r * D, (r + 1) * D)], kRow(p).map((x) => -x));
    positions.push(p);
  }
  if (advance) s.advance(n);
  return { positions, startPos: kv.startPos };
}

/** What a forward at `start` of n tokens must see: the window - 1 positions before it (from 0), then its own. */
const expected = (start: number, n: number) => Array.from({ length: Math.min(start, W - 1) + n }, (_, i) => start - Math.min(start, W - 1) + i);

test("each forward sees the window before it and its rows, whatever the batch sizes", async () => {
  const s = new SlidingWindowState(be, CTX, D, W);
  assert.equal(s.kind, "sliding");
  assert.equal(s.capacity, 2 * W - 1);
  assert.equal(s.bytes, SlidingWindowState.bytesFor(CTX, D, W));
  assert.ok(s.bytes < FullAttentionState.bytesFor(CTX, D), "less than a full cache of the context");
  for (const n of [1, 2, 5, 1, 1, 9, 3, 1]) {
    const start = s.length;
    const { positions, startPos } = await store(s, n);
    assert.deepEqual(positions, expected(start, n), `batch of ${n} at ${start}`);
    assert.equal(startPos, Math.min(start, W - 1));
  }
  assert.equal(s.length, 23);
});

test("a forward that never advanced (failed or aborted) leaves the state as it was", async () => {
  const s = new SlidingWindowState(be, CTX, D, W);
  await store(s, 10);
  await store(s, 12, false); // wrote its rows, then the forward failed
  assert.throws(() => s.advance(3), /without a forward that stored them/);
  assert.deepEqual((await store(s, 2)).positions, expected(10, 2));
});

test("truncation: back to any point whose window is still held, else refused; to 0 always", async () => {
  const s = new SlidingWindowState(be, CTX, D, W);
  await store(s, 20); // holds positions [13, 20)
  // The next token at n reads [n - 3, n): held iff n - 3 >= 13.
  for (let n = 0; n <= 21; n++) assert.equal(s.canTruncate(n), n === 0 || (n >= 16 && n <= 20), `n = ${n}`);
  assert.throws(() => s.truncate(15), /cannot be truncated to 15/);
  s.truncate(17);
  assert.equal(s.length, 17);
  assert.deepEqual((await store(s, 2)).positions, expected(17, 2));
  assert.equal(s.canTruncate(17), true);
  s.truncate(0);
  assert.deepEqual((await store(s, 3)).positions, expected(0, 3));
});

test("checkpoint: a rollback past the held rows returns to it; a truncation before it forgets it", async () => {
  const s = new SlidingWindowState(be, CTX, D, W);
  await store(s, 9);
  s.checkpoint();
  assert.equal(s.checkpointLength, 9);
  await store(s, 12); // holds [14, 21)
  assert.deepEqual([8, 9, 10, 16].map((n) => s.canTruncate(n)), [false, true, false, false]);
  assert.throws(() => s.truncate(10), /or its checkpoint at 9\) cannot be truncated to 10/);
  s.truncate(9);
  assert.deepEqual((await store(s, 2)).positions, expected(9, 2), "the checkpoint's window, then the new rows");
  assert.equal(s.checkpointLength, 9, "kept for the next rollback");
  assert.equal(s.canTruncate(9), true);
  const t = new SlidingWindowState(be, CTX, D, W);
  await store(t, 6);
  t.checkpoint();
  await store(t, 2); // holds [1, 8)
  t.truncate(5); // [2, 5) is held: no checkpoint needed
  assert.equal(t.checkpointLength, undefined, "position 5 onwards will be fed again, perhaps other tokens");
  assert.deepEqual((await store(t, 1)).positions, expected(5, 1));
});

test("save and load: the held rows round-trip, sized by the length alone", async () => {
  const s = new SlidingWindowState(be, CTX, D, W);
  await store(s, 3);
  assert.equal((await s.save()).byteLength, s.savedBytes(3));
  await store(s, 15);
  const bytes = await s.save();
  assert.equal(bytes.byteLength, s.savedBytes(18));
  assert.equal(s.savedBytes(18), 2 * 4 * 7 * D);
  const t = slidingWindow(new SlidingWindowState(be, CTX, D, W));
  // At an odd offset inside a larger buffer, as a session file holds it.
  const inFile = new Uint8Array(bytes.byteLength + 3);
  inFile.set(bytes, 3);
  t.load(inFile.subarray(3), 18);
  assert.equal(t.length, 18);
  assert.deepEqual([0, 11, 12, 14, 18].map((n) => t.canTruncate(n)), [0, 11, 12, 14, 18].map((n) => s.canTruncate(n)));
  assert.deepEqual((await store(t, 2)).positions, expected(18, 2));
  assert.throws(() => t.load(bytes.subarray(1), 18), /needs \d+ bytes/);
  assert.throws(() => slidingWindow(new FullAttentionState(be, CTX, D)), /expected a sliding-window layer state, got 'full'/);
});

// Every backend, with and without sinks: one that hands windows or sinks to the reference must not drop them.
const BACKENDS: Record<string, () => Backend> = { scalar: () => be, native: () => new NativeBackend({ threads: 1 }), wasm: () => new WasmBackend({ fallback: new ScalarBackend() }) };
for (const [name, make] of Object.entries(BACKENDS)) {
  for (const withSinks of [true, false]) {
    test(`${name}: windowed attention${withSinks ? " with sinks" : ""} equals the masked softmax${withSinks ? " with the sink in its denominator" : ""}, computed directly`, async () => {
      const b = make();
      const nHead = 4, nHeadKv = 2, hd = 8, start = 5, T = 6, win = 3, scale = 0.3;
      const rnd = new Stream(7, "swa");
      const arr = (n: number) => {
        const a = new Float32Array(n);
        rnd.fillUniform(a, 1);
        return a;
      };
      const q = arr(T * nHead * hd), k = arr((start + T) * nHeadKv * hd), v = arr((start + T) * nHeadKv * hd);
      const sinks = withSinks ? arr(nHead) : undefined;
      const bufOf = (a: Float32Array) => {
        const x = b.alloc(a.length);
        b.write(x, a);
        return x;
      };
      const out = b.alloc(T * nHead * hd);
      b.attention(out, bufOf(q), bufOf(k), bufOf(v), { nTokens: T, startPos: start, nHead, nHeadKv, headDim: hd, scale, sinks, window: win });
      const got = await b.read(out);
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < nHead; h++) {
          const g = Math.floor(h / (nHead / nHeadKv));
          // llama.cpp: key p is masked for the query at position P when P - p >= window (and p > P, causal).
          const P = start + t;
          const keys = Array.from({ length: start + T }, (_, p) => p).filter((p) => p <= P && P - p < win);
          const s = keys.map((p) => scale * Array.from({ length: hd }, (_, i) => q[(t * nHead + h) * hd + i] * k[(p * nHeadKv + g) * hd + i]).reduce((a, x) => a + x));
          const sink = sinks ? sinks[h] : -Infinity;
          const m = Math.max(...s, sink);
          const z = s.reduce((a, x) => a + Math.exp(x - m), 0) + Math.exp(sink - m);
          for (let i = 0; i < hd; i++) {
            const want = keys.reduce((a, p, j) => a + (Math.exp(s[j] - m) / z) * v[(p * nHeadKv + g) * hd + i], 0);
            assert.ok(Math.abs(got[(t * nHead + h) * hd + i] - want) < 1e-5, `t ${t} head ${h} value ${i}`);
          }
        }
      }
      b.close?.();
    });
  }
}
