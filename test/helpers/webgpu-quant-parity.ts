// Each quant type's WebGPU kernels against the scalar reference (lavapipe in CI), shared by the test files that
// split the types between them (test/parity/webgpu-kernels.test.ts, webgpu-kquants.test.ts): each type's kernels
// are compiled on first use, a few seconds each on lavapipe, so the types run in two files side by side.
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend, ExpertRows, HostWeight, Weight } from "../../src/backends/backend.js";
import { tensorBytes } from "../../src/backends/backend.js";
import { WebGpuBackend } from "../../src/backends/webgpu/webgpu.js";
import { MXFP4, Q8_0, type QuantFormat } from "../../src/quant/index.js";
import { bufOf, perExpertMoe, quantiseX8, randomValues, randomWeight, runMatmul } from "./parity.js";
import { nmse, sameBits } from "./numeric.js";
import { gpuBackend, gpuDevice } from "./webgpu.js";

/** f32 sums in another order than the reference's f64: ~1e-14 seen; 1e-10 leaves room without hiding a wrong value. */
export const TOL = 1e-10;
/**
 * x quantised to 8 bits per 32 values (intDot, as llama.cpp's CUDA matvec): against the reference over the same
 * quantised x (a q rounded the other way at a tie moves a row by ~5e-8), and against x itself (the quantisation's
 * own error, up to ~5e-4 seen on random rows of 4096).
 */
const TOL_INT = 1e-6;
export const TOL_INT_X = 3e-3;

/**
 * matmul (the decode matvec, the tiled matmul over one and three token tiles) and embed of each format. The types
 * in `variants` also run four shapes (the other types two: the reader over one and many chunks), the tiled matmul
 * with one row a thread against two bit for bit, the matvec's other sums (workgroup memory, groups smaller than a
 * subgroup), and Q4_K's and Q8_0's other readers: code the same for every type, each variant a compile on lavapipe.
 */
export async function matmulParity(t: TestContext, formats: readonly QuantFormat[], variantTypes: ReadonlySet<string>): Promise<void> {
  const scalar = new ScalarBackend(), be = await gpuBackend(), tree = await gpuBackend({ subgroups: false }), pair = await gpuBackend(), word = await gpuBackend(), lanes = await gpuBackend(), int = await gpuBackend();
  int.intDot = true;
  const rows2 = await gpuBackend(), small = await gpuBackend();
  small.tiledMinGroups = Infinity; // every prompt matmul as the matvec, each token of z re-reading the weights
  [be.tileRows, rows2.tileRows] = [1, 2]; // be: one row a thread (the default is 2), compared with two bit for bit
  // The variant types' prompt matmuls always tiled: these shapes are below the default's least grid (a matmul that
  // small runs as the matvec), which would leave the tiled kernels untested. The other types run as the default runs
  // these shapes (`small`: the matvec over tokens): the tiled code is the same for every type (its dequantisation is
  // embed's, tested for each), and each type's compile of it takes ~12 s on lavapipe.
  be.tiledMinGroups = rows2.tiledMinGroups = 0;
  pair.q4kReader = "pair";
  word.q4kReader = "word"; // the others run vec4, the default
  lanes.matvecLanes = 16; // groups smaller than a subgroup: the xor-shuffle sums
  assert.ok(be.subgroups, "lavapipe has subgroups: the matvec sums over them");
  assert.ok((await gpuDevice()).int8Dot, "lavapipe's WGSL has the packed integer dot products: the intDot readers run");
  let worst = 0, worstInt = 0;
  for (const fmt of formats) {
    const variants = variantTypes.has(fmt.name), main = variants ? be : small;
    // K = 256 for the k-quants; 3 rows of Q6_K / 9 blocks of Q8_0 make an odd count of f16 scales.
    // 33001 rows: enough workgroups for the matvec's 4 rows per thread group, and a last group that is not full.
    // Rows of 4096 (2304 for 32-blocks: 9 chunks of 256 over 64 threads): more chunks than threads, read several
    // a loop turn, the last turn partly past the row.
    const shapes = fmt.blockSize === 256 ? [[256, 3], [512, 40], [256, 33001], [4096, 9]] : [[96, 3], [256, 40], [256, 33001], [2304, 9]];
    // The other types: 3 rows (an odd count of blocks beside a repacked neighbour) and rows of many chunks.
    for (const [k, n] of variants ? shapes : [shapes[0], shapes[3]]) {
      const hw = randomWeight(fmt, k, n, `${fmt.name}-${k}-${n}`);
      const ws = scalar.upload(hw), wg = main.upload(hw);
      for (const tk of n > 1000 ? [1] : [1, 2, 37]) { // the matvec; the tiled matmul within one token tile and over three (16 tokens each)
        const x = randomValues(k * tk, `x-${k}-${tk}`, 2);
        const want = await runMatmul(scalar, ws, x, { k, n, t: tk });
        const e = nmse(await runMatmul(main, wg, x, { k, n, t: tk }), want);
        worst = Math.max(worst, e);
        assert.ok(e < TOL, `${fmt.name} ${k}x${n} T=${tk}: nmse ${e.toExponential(2)}`);
        if (tk > 1 && n % 64 !== 0 && variants) {
          // Two rows a thread (the second past the last row on the last workgroup): the one-row kernel's bits.
          const one = await runMatmul(be, wg, x, { k, n, t: tk });
          assert.ok(sameBits(await runMatmul(rows2, rows2.upload(hw), x, { k, n, t: tk }), one), `${fmt.name} ${k}x${n} T=${tk}: two rows a thread differ from one`);
        }
        if (tk > 1 && variants) {
          const e6 = nmse(await runMatmul(small, small.upload(hw), x, { k, n, t: tk }), want);
          assert.ok(e6 < TOL, `${fmt.name} ${k}x${n} T=${tk}, as the matvec (tiledMinGroups): nmse ${e6.toExponential(2)}`);
        }
        // The matvec's other sums (workgroup memory, groups smaller than a subgroup) and other readers: `variants`.
        if (tk === 1 && variants) {
          // The same matvec summed in workgroup memory (devices without subgroups).
          const e2 = nmse(await runMatmul(tree, tree.upload(hw), x, { k, n, t: tk }), want);
          assert.ok(e2 < TOL, `${fmt.name} ${k}x${n}, no subgroups: nmse ${e2.toExponential(2)}`);
          if (fmt.name === "Q4_K" || fmt.name === "Q8_0") {
            // Against x quantised to 8 bits, integer dot products (rows of k % 64 != 0 keep f32 x).
            const got = await runMatmul(int, int.upload(hw), x, { k, n, t: tk });
            const e5 = nmse(got, k % 64 === 0 ? await runMatmul(scalar, ws, quantiseX8(x), { k, n, t: tk }) : want);
            worstInt = Math.max(worstInt, nmse(got, want));
            assert.ok(e5 < (k % 64 === 0 ? TOL_INT : TOL), `${fmt.name} ${k}x${n}, integer dot: nmse ${e5.toExponential(2)} against the reference over x quantised`);
            assert.ok(nmse(got, want) < TOL_INT_X, `${fmt.name} ${k}x${n}, integer dot: nmse ${nmse(got, want).toExponential(2)} against x`);
          }
          const e4 = nmse(await runMatmul(lanes, lanes.upload(hw), x, { k, n, t: tk }), want);
          assert.ok(e4 < TOL, `${fmt.name} ${k}x${n}, at most 16 threads a row: nmse ${e4.toExponential(2)}`);
          if (fmt.name === "Q4_K") {
            // Q4_K's other readers: two sub-blocks a thread (the default vec4 reader's sums in 4-byte loads, bit for
            // bit), and a word of each 32-byte group a thread.
            const p = await runMatmul(pair, pair.upload(hw), x, { k, n, t: tk });
            const e3 = nmse(p, want);
            assert.ok(e3 < TOL, `Q4_K ${k}x${n}, pair reader: nmse ${e3.toExponential(2)}`);
            assert.ok(sameBits(await runMatmul(be, wg, x, { k, n, t: tk }), p), `Q4_K ${k}x${n}: the vec4 reader's bits differ from the pair reader's`);
            const e7 = nmse(await runMatmul(word, word.upload(hw), x, { k, n, t: tk }), want);
            assert.ok(e7 < TOL, `Q4_K ${k}x${n}, word reader: nmse ${e7.toExponential(2)}`);
          }
        }
      }
      const ids = Int32Array.from([n - 1, 0, Math.floor(n / 2), n - 1]);
      const run = async (b: Backend, w: Weight) => {
        const o = b.alloc(ids.length * k);
        b.embed(o, w, ids);
        return b.read(o);
      };
      assert.ok(sameBits(await run(main, wg), await run(scalar, ws)), `${fmt.name} embed rows differ`);
    }
  }
  t.diagnostic(`worst matmul nmse ${worst.toExponential(2)}; against x quantised to 8 bits ${worstInt.toExponential(2)}`);
}

/** Weight arenas: repacked weights beside each other, rewritten slots, a weight straddling two bindings. */
export async function arenaParity(formats: readonly QuantFormat[]): Promise<void> {
  const scalar = new ScalarBackend();
  for (const fmt of formats) {
    // Rows long enough for the binding sizes below: 32-value blocks of under 32 bytes (MXFP4, the legacy types),
    // 256-value ones of under 100 (Q2_K, IQ2_XXS, IQ3_XXS).
    const k = fmt.blockSize === 256 ? (fmt.bytesPerBlock < 100 ? 512 : 256) : fmt.bytesPerBlock < 32 && fmt.blockSize === 32 ? 288 : 96;
    const a = randomWeight(fmt, k, 3, `a-${fmt.name}`), b = randomWeight(fmt, k, 4, `b-${fmt.name}`);
    const na = tensorBytes(a), nb = tensorBytes(b), atB = Math.ceil(na / 64) * 64 + 64;
    // Bindings of a few hundred bytes: the second weight crosses from the first into the second buffer.
    const maxBinding = Math.floor((atB + nb / 2) / 256) * 256;
    assert.ok(na <= maxBinding && nb <= maxBinding && atB < maxBinding && atB + nb > maxBinding);
    // Mapped staging of 256 bytes: a write goes in pieces, the first staged, the rest by writeBuffer.
    const staging = WebGpuBackend.staging;
    WebGpuBackend.staging = { bufferBytes: 256, buffers: 1 };
    const be = await gpuBackend({ maxBinding }).finally(() => (WebGpuBackend.staging = staging));
    const arena = be.allocWeights(atB + nb);
    arena.write(0, a.bytes);
    arena.write(atB, b.bytes);
    const check = async (hw: HostWeight, w: Weight, what: string) => {
      const x = randomValues(k * 2, `ax-${k}`);
      const sh = { k, n: hw.shape[1], t: 2 };
      const e = nmse(await runMatmul(be, w, x, sh), await runMatmul(scalar, scalar.upload(hw), x, sh));
      assert.ok(e < TOL, `${fmt.name} ${what}: nmse ${e.toExponential(2)}`);
    };
    const wa = arena.view(a, 0), wb = arena.view(b, atB);
    await check(a, wa, "first weight");
    await check(b, wb, "second weight (after its neighbour's repack)");
    await check(a, arena.view(a, 0), "the first bound again");
    // An expert slot reused: new bytes in the same place, bound again.
    const c = randomWeight(fmt, k, 3, `c-${fmt.name}`);
    arena.write(0, c.bytes);
    await check(c, arena.view(c, 0), "rewritten slot");
    await check(b, wb, "neighbour of the rewritten slot");
    arena.free();
    assert.throws(() => arena.view(a, 0), /after free/);
  }
}

/** A prompt's moeFfn over experts of each (format, D, F): tiles of 16 tokens and per-token rows; two rows a thread bit for bit. */
export async function moePromptParity(cases: readonly (readonly [QuantFormat, number, number])[]): Promise<void> {
  const scalar = new ScalarBackend(), be = await gpuBackend(), rows2 = await gpuBackend();
  [be.tileRows, rows2.tileRows] = [1, 2]; // one row a thread against two (the default)
  const T = 40;
  for (const [fmt, D, F] of cases) {
    const h = randomValues(T * D, `moet-h-${fmt.name}`, 2);
    // 20 tokens (a full tile and one of 4), 3 (per token), 4 (one tile), 16 (one full tile), none.
    const rowsOf = [Array.from({ length: 20 }, (_, i) => 2 * i), [1, 5, 39], [3, 4, 7, 30], Array.from({ length: 16 }, (_, i) => 39 - i), []];
    const set = rowsOf.map((rows, e) => (b: Backend): ExpertRows => ({
      gate: b.upload(randomWeight(fmt, D, F, `tg${e}${fmt.name}`)), up: b.upload(randomWeight(fmt, D, F, `tu${e}${fmt.name}`)), down: b.upload(randomWeight(fmt, F, D, `td${e}${fmt.name}`)),
      rows: Int32Array.from(rows), scales: Float32Array.from(rows, (_, i) => 0.125 + i / 64),
    }));
    const ref = bufOf(scalar, new Float32Array(T * D));
    perExpertMoe(scalar, ref, bufOf(scalar, h), set.map((s) => s(scalar)), D, F);
    const out = be.alloc(T * D);
    be.zero(out);
    const experts = set.map((s) => s(be)), hb = bufOf(be, h);
    const d0 = be.counters.dispatches;
    be.moeFfn(out, hb, experts);
    const e = nmse(await be.read(out), await scalar.read(ref));
    assert.ok(e < TOL, `${fmt.name} tiled moe: nmse ${e.toExponential(2)}`);
    // Each expert uploaded on its own (a buffer each): tiled gate/up and down for 3, per-token gate/up and down for
    // 1, the scatter-add.
    assert.equal(be.counters.dispatches - d0, 2 * 3 + 2 * 1 + 1);
    // Two rows a thread in the down tiles (D = 64 or 256: a second row past the last on the only or the last
    // workgroup): the same bits.
    const got = await be.read(out);
    const out2 = rows2.alloc(T * D);
    rows2.zero(out2);
    rows2.moeFfn(out2, bufOf(rows2, h), set.map((s) => s(rows2)));
    assert.ok(sameBits(await rows2.read(out2), got), `${fmt.name} tiled moe: two rows a thread differ from one`);
  }
}

/**
 * A weight larger than a binding (GpuSplitWeight): runs of whole rows where they sit, rows across two buffers in
 * one of their own. matmul (matvec, tiled, the matvec over tokens), embed and embedLater against the reference;
 * matmulSet falls back to a matmul each; other ops refuse it by name.
 */
export async function splitWeightParity(formats: readonly QuantFormat[]): Promise<void> {
  const scalar = new ScalarBackend();
  for (const fmt of formats) {
    // matmulParity's rows (its matvec pipelines, not new compiles: a minute and more on lavapipe).
    const k = fmt.blockSize === 256 ? 4096 : 2304, n = 37;
    const hw = randomWeight(fmt, k, n, `split-${fmt.name}`);
    const rowBytes = tensorBytes(hw) / n;
    // Bindings of ~7.4 rows, the weight 3 rows' bytes in (rounded to words): runs of 7 or so, and rows across two.
    const maxBinding = Math.ceil((rowBytes * 7.4) / 16) * 16, at = Math.ceil((rowBytes * 3) / 4) * 4;
    const be = await gpuBackend({ maxBinding }), ws = scalar.upload(hw);
    const arena = be.allocWeights(at + tensorBytes(hw));
    arena.write(at, hw.bytes);
    const w = arena.view(hw, at);
    const parts = (w as unknown as { parts?: { w: Weight; row0: number }[] }).parts;
    assert.ok(parts && parts.length > 4 && parts.some((p) => p.w.shape[1] === 1), `${fmt.name}: ${tensorBytes(hw)} bytes over bindings of ${maxBinding} are runs of rows, some of one row`);
    // The tiled matmul for one repacked type only: its code is the same for every type, each a ~15 s compile on lavapipe.
    for (const [t, tiled] of [[1, false], [3, false], ...(fmt === Q8_0 ? [[3, true] as const] : [])] as const) {
      be.tiledMinGroups = tiled ? 0 : Infinity;
      const x = randomValues(k * t, `split-x-${k}-${t}`, 2);
      const want = await runMatmul(scalar, ws, x, { k, n, t });
      const e = nmse(await runMatmul(be, w, x, { k, n, t }), want);
      assert.ok(e < TOL, `${fmt.name} split ${k}x${n} T=${t}${tiled ? " tiled" : ""}: nmse ${e.toExponential(2)}`);
    }
    const ids = Int32Array.from([n - 1, 0, 7, 8, Math.floor(n / 2), 3]);
    const embedded = async (b: Backend, table: Weight, later = false) => {
      const o = b.alloc(ids.length * k);
      if (later) b.embedLater!(o, table, ids.length, Promise.resolve(ids));
      else b.embed(o, table, ids);
      return b.read(o);
    };
    const ref = await embedded(scalar, ws);
    assert.ok(sameBits(await embedded(be, w), ref), `${fmt.name} split embed rows differ`);
    assert.ok(sameBits(await embedded(be, w, true), ref), `${fmt.name} split embedLater rows differ`);
    // Bound again after a rewrite of the same bytes (the repacked types repack each run again).
    arena.write(at, hw.bytes);
    const again = arena.view(hw, at), x = randomValues(k, `split-x-${k}-1`, 2);
    const outs = [be.alloc(n), be.alloc(n)];
    be.matmulSet(outs, [again, again], bufOf(be, x), 1);
    const want = await runMatmul(scalar, ws, x, { k, n, t: 1 });
    for (const o of outs) assert.ok(nmse(await be.read(o), want) < TOL, `${fmt.name} matmulSet over a split weight`);
    assert.throws(() => be.matmulHeads(be.alloc(n), again, bufOf(be, x), 1), /matmulHeads: weight '.*' is larger than the adapter binds at once, bound as \d+ runs of rows; only matmul and embed take it/);
    arena.free();
  }
  // Rows that do not start at 4-byte boundaries (MXFP4's 17-byte blocks, 3 a row) cannot be split: said so by name.
  const odd = randomWeight(MXFP4, 96, 40, "split-odd"), be = await gpuBackend({ maxBinding: 1024 });
  const arena = be.allocWeights(tensorBytes(odd) + 4);
  arena.write(0, odd.bytes);
  assert.throws(() => arena.view(odd, 0), /weight 'w_MXFP4_96x40' has 2040 bytes, more than the adapter binds at once \(1024\), and cannot be bound as runs of rows: its rows of 51 bytes do not start at 4-byte boundaries/);
}
