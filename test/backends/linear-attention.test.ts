// The linear-attention ops (Qwen3-Next / Qwen3.5 gated DeltaNet) of the scalar reference, against values worked
// out by hand and against straightforward loops written in HF's layout (state[key][value], transposed from ours);
// the native and wasm kernels of these ops are held to it in test/parity/{native,wasm}-mla-ops.test.ts and
// native-delta-net.test.ts; here, their conv1d and gated RMSNorm with weights each backend uploaded itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend, DeltaNetParams, HostWeight } from "../../src/backends/backend.js";
import { F32 } from "../../src/quant/index.js";
import { Stream } from "../../src/gen/random.js";
import { NativeBackend } from "../../src/backends/cpu/native.js";
import { WasmBackend } from "../../src/backends/wasm/wasm.js";

const be = new ScalarBackend();
const f32w = (name: string, shape: number[], values: ArrayLike<number>): HostWeight => ({ name, type: F32.type, shape, bytes: new Uint8Array(Float32Array.from(values).buffer) });
const buf = (b: Backend, values: ArrayLike<number>) => {
  const x = b.alloc(values.length);
  b.write(x, Float32Array.from(values));
  return x;
};
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `[${i}] ${a[i]} vs ${b[i]}`);
};
const silu = (x: number) => x / (1 + Math.exp(-x));
const rand = (n: number, seed: string, std = 1) => {
  const out = new Float32Array(n);
  new Stream(7, seed).fillUniform(out, std);
  return out;
};

test("convSilu: 4 taps over the 3 earlier raw inputs, oldest first; the state rolls to the last 3 inputs", async () => {
  // 2 channels; channel 0 taps [1, 0, 0, 2] (oldest .. newest), channel 1 taps [0.5, 0.5, 0.5, 0.5].
  const w = be.upload(f32w("ssm_conv1d", [4, 2], [1, 0, 0, 2, 0.5, 0.5, 0.5, 0.5]));
  const state = buf(be, [10, 20, 30, /* ch 1 */ 1, 2, 3]); // [C, 3]
  const out = be.alloc(4);
  be.convSilu(out, buf(be, [1, -1, /* t1 */ 2, 5]), state, w, 2, 2);
  // t0: ch0 = 1*10 + 2*1 = 12; ch1 = 0.5*(1+2+3-1) = 2.5. t1: ch0 = 1*20 + 2*2 = 24; ch1 = 0.5*(2+3-1+5) = 4.5.
  close(await be.read(out), [silu(12), silu(2.5), silu(24), silu(4.5)]);
  close(await be.read(state), [30, 1, 2, /* ch 1 */ 3, -1, 5]);
});

test("convSilu over a batch equals the same rows fed one at a time (the state carries them)", async () => {
  const C = 6, T = 5;
  const w = be.upload(f32w("ssm_conv1d", [4, C], rand(4 * C, "w")));
  const x = rand(T * C, "x");
  const s1 = buf(be, rand(3 * C, "s")), s2 = buf(be, rand(3 * C, "s"));
  const batch = be.alloc(T * C);
  be.convSilu(batch, buf(be, x), s1, w, T, C);
  const one = be.alloc(C);
  const rows: number[] = [];
  for (let t = 0; t < T; t++) {
    be.convSilu(one, buf(be, x.subarray(t * C, (t + 1) * C)), s2, w, 1, C);
    rows.push(...(await be.read(one)));
  }
  close(await be.read(batch), rows);
  close(await be.read(s1), await be.read(s2));
});

test("l2Norm: x / sqrt(sum x^2 + eps) per row", async () => {
  const out = be.alloc(4);
  be.l2Norm(out, buf(be, [3, 4, /* row 1 */ 0, 0]), 1e-6, 2, 2);
  close(await be.read(out), [3 / Math.sqrt(25 + 1e-6), 4 / Math.sqrt(25 + 1e-6), 0, 0]);
});

test("deltaGates: beta = sigmoid(b), g = softplus(alpha + dt) * a, softplus linear above 20", async () => {
  const dt = be.upload(f32w("ssm_dt.bias", [2], [0.5, 30]));
  const a = be.upload(f32w("ssm_a", [2], [-2, -0.25]));
  const g = be.alloc(2), beta = be.alloc(2);
  be.deltaGates(g, beta, buf(be, [0.25, 1]), buf(be, [0, -1]), dt, a, 2, 1);
  close(await be.read(g), [Math.log(1 + Math.exp(0.75)) * -2, 31 * -0.25]);
  close(await be.read(beta), [0.5, 1 / (1 + Math.E)]);
});

test("gatedDeltaNet by hand: one head of 2, two tokens", async () => {
  // M0 = 0. t0: g = 0, beta = 1, k = (1, 0), v = (2, 3), q = (1, 0): M = v kᵀ = [[2, 0], [3, 0]]; o = M q / sqrt2 = (2, 3)/sqrt2.
  // t1: g = ln 0.5 (M halves to [[1, 0], [1.5, 0]]), beta = 0.5, k = (0, 1), v = (4, 2): M k = 0, delta = (2, 1),
  //     M = [[1, 2], [1.5, 1]]; q = (1, 1): o = (3, 2.5)/sqrt2.
  const p: DeltaNetParams = { nTokens: 2, nHeadK: 1, nHeadV: 1, headDim: 2, kvMap: "interleave" };
  const out = be.alloc(4), state = be.alloc(4);
  be.gatedDeltaNet(out, buf(be, [1, 0, 1, 1]), buf(be, [1, 0, 0, 1]), buf(be, [2, 3, 4, 2]), buf(be, [0, Math.log(0.5)]), buf(be, [1, 0.5]), state, state, p);
  close(await be.read(out), [2 / Math.SQRT2, 3 / Math.SQRT2, 3 / Math.SQRT2, 2.5 / Math.SQRT2]);
  close(await be.read(state), [1, 2, 1.5, 1]);
});

/** HF's torch_recurrent_gated_delta_rule, state S[key][value], q/k heads repeated per the mapping. */
function hfDeltaRule(q: Float32Array, k: Float32Array, v: Float32Array, g: Float32Array, beta: Float32Array, s0: Float32Array, p: DeltaNetParams) {
  const { nTokens: T, nHeadK, nHeadV, headDim: S } = p;
  const rep = nHeadV / nHeadK;
  const out = new Float32Array(T * nHeadV * S);
  const state = new Float32Array(s0.length);
  for (let h = 0; h < nHeadV; h++) {
    const hk = p.kvMap === "interleave" ? Math.floor(h / rep) : h % nHeadK;
    const st: number[][] = Array.from({ length: S }, (_, kk) => Array.from({ length: S }, (_, vv) => s0[h * S * S + vv * S + kk]));
    for (let t = 0; t < T; t++) {
      const kt = k.subarray((t * nHeadK + hk) * S, (t * nHeadK + hk + 1) * S);
      const qt = Array.from(q.subarray((t * nHeadK + hk) * S, (t * nHeadK + hk + 1) * S), (x) => x / Math.sqrt(S));
      const vt = v.subarray((t * nHeadV + h) * S, (t * nHeadV + h + 1) * S);
      const e = Math.exp(g[t * nHeadV + h]);
      for (const row of st) for (let j = 0; j < S; j++) row[j] *= e;
      const mem = Array.from({ length: S }, (_, vv) => st.reduce((a, row, kk) => a + row[vv] * kt[kk], 0));
      const delta = mem.map((m, vv) => (vt[vv] - m) * beta[t * nHeadV + h]);
      st.forEach((row, kk) => row.forEach((_, vv) => (row[vv] += kt[kk] * delta[vv])));
      for (let vv = 0; vv < S; vv++) out[(t * nHeadV + h) * S + vv] = st.reduce((a, row, kk) => a + row[vv] * qt[kk], 0);
    }
    st.forEach((row, kk) => row.forEach((x, vv) => (state[h * S * S + vv * S + kk] = x)));
  }
  return { out, state };
}

for (const kvMap of ["interleave", "tile"] as const) {
  test(`gatedDeltaNet equals HF's recurrent rule, 2 key heads / 6 value heads (${kvMap}), from a nonzero state`, async () => {
    const p: DeltaNetParams = { nTokens: 4, nHeadK: 2, nHeadV: 6, headDim: 8, kvMap };
    const { nTokens: T, nHeadK, nHeadV, headDim: S } = p;
    const q = rand(T * nHeadK * S, "q"), k = rand(T * nHeadK * S, "k"), v = rand(T * nHeadV * S, "v");
    const g = rand(T * nHeadV, "g").map((x) => -Math.abs(x)), beta = rand(T * nHeadV, "b").map((x) => 1 / (1 + Math.exp(-x)));
    const s0 = rand(nHeadV * S * S, "s0", 0.3);
    const want = hfDeltaRule(q, k, v, g, beta, s0, p);
    const out = be.alloc(T * nHeadV * S), state = buf(be, s0);
    be.gatedDeltaNet(out, buf(be, q), buf(be, k), buf(be, v), buf(be, g), buf(be, beta), state, state, p);
    close(await be.read(out), want.out, 1e-5);
    close(await be.read(state), want.state, 1e-5);
    // Out of place: the same results, the input state untouched.
    const from = buf(be, s0), to = be.alloc(s0.length), out2 = be.alloc(T * nHeadV * S);
    be.gatedDeltaNet(out2, buf(be, q), buf(be, k), buf(be, v), buf(be, g), buf(be, beta), from, to, p);
    assert.deepEqual(await be.read(out2), await be.read(out));
    assert.deepEqual(await be.read(to), await be.read(state));
    assert.deepEqual(await be.read(from), s0);
  });
}

test("gatedDeltaNet: the two head mappings differ (a model with the wrong one computes something else)", async () => {
  const p = { nTokens: 1, nHeadK: 2, nHeadV: 4, headDim: 4 };
  const q = rand(8, "q"), k = rand(8, "k"), v = rand(16, "v");
  const run = async (kvMap: DeltaNetParams["kvMap"]) => {
    const out = be.alloc(16);
    const st = be.alloc(64);
    be.gatedDeltaNet(out, buf(be, q), buf(be, k), buf(be, v), buf(be, [0, 0, 0, 0]), buf(be, [1, 1, 1, 1]), st, st, { ...p, kvMap });
    return be.read(out);
  };
  const [a, b] = [await run("interleave"), await run("tile")];
  // Value heads 0 and 3 read key head 0 / 1 under both; heads 1 and 2 swap.
  close(a.subarray(0, 4), b.subarray(0, 4));
  assert.notDeepEqual(a.subarray(4, 8), b.subarray(4, 8));
});

test("rmsNormGated: rmsnorm(x) * w * silu(gate) per row; sigmoidMul: x * sigmoid(gate)", async () => {
  const w = be.upload(f32w("ssm_norm", [2], [1, 2]));
  const out = be.alloc(4);
  be.rmsNormGated(out, buf(be, [3, 4, 1, -1]), w, buf(be, [1, 0, 2, -2]), 0, 2, 2);
  const r0 = 1 / Math.sqrt(12.5);
  close(await be.read(out), [3 * r0 * silu(1), 0, 1 * silu(2), -1 * 2 * silu(-2)]);
  be.sigmoidMul(out, buf(be, [1, 2, 3, 4]), buf(be, [0, 100, -100, Math.log(3)]), 4);
  close(await be.read(out), [0.5, 2, 0, 3]);
});

const OTHERS = { native: () => new NativeBackend({ threads: 1 }), wasm: () => new WasmBackend({ fallback: new ScalarBackend() }) };
for (const [name, make] of Object.entries(OTHERS)) {
  test(`${name} backend's conv1d and gated RMSNorm kernels equal the scalar reference bit for bit, with its own weights`, async () => {
    const other: Backend = make();
    try {
      const C = 8, T = 3;
      const wv = rand(4 * C, "w"), x = rand(T * C, "x"), s0 = rand(3 * C, "s");
      const run = async (b: Backend) => {
        const w = b.upload(f32w("ssm_conv1d", [4, C], wv));
        const norm = b.upload(f32w("ssm_norm", [C], rand(C, "n")));
        const out = b.alloc(T * C), st = buf(b, s0);
        b.convSilu(out, buf(b, x), st, w, T, C);
        b.rmsNormGated(out, out, norm, buf(b, x), 1e-6, C, T);
        return [...(await b.read(out)), ...(await b.read(st))];
      };
      close(await run(other), await run(be), 0);
    } finally {
      other.close?.();
    }
  });
}
