// WebAssembly SIMD128 kernels of the DeepSeek (MLA), gpt-oss and Qwen3-Next / Qwen3.5 (gated DeltaNet) ops, the same
// math as native/src/attn_ext.c, ops.c and ops_linear.c: attention with narrow V heads, f16 probabilities, sinks and
// a sliding window, gpt-oss's clamped SwiGLU and bias rows, the gated delta rule, causal conv1d + SiLU, L2 norm,
// gated RMSNorm, the sigmoid gate, rope from a table of angles (YaRN), f16 rounding and the experts' scatter-add.
// Pointers are offsets into the memory.

/** Round to nearest even (native/src/common.h fp16_from_f32), then back: the f16 value as f32. */
function roundF16(f: f32): f32 {
  const u = reinterpret<u32>(f), sign = (u >> 16) & 0x8000, a = u & 0x7fffffff;
  let h: u32;
  if (a >= 0x7f800000) h = sign | 0x7c00 | (a > 0x7f800000 ? 0x200 : 0);
  else if (a >= 0x477ff000) h = sign | 0x7c00;
  else if (a < 0x38800000) h = sign | (reinterpret<u32>(reinterpret<f32>(a) + <f32>0.5) - 0x3f000000);
  else h = sign | ((a + 0xfff + ((a >> 13) & 1) - (112 << 23)) >> 13);
  const v = reinterpret<f32>((h & 0x7fff) << 13) * reinterpret<f32>(0x77800000); // exact for normals and subnormals
  let bits = reinterpret<u32>(v) | ((h & 0x8000) << 16);
  if ((h & 0x7c00) == 0x7c00) bits |= 0x7f800000;
  return reinterpret<f32>(bits);
}

/** Dot product of n f32 values at a and b: 8 lanes of f32 partial sums added in f64, as native dot8. */
function dot8(a: usize, b: usize, n: i32): f64 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const p = <usize>i * 4;
    a0 = f32x4.add(a0, f32x4.mul(v128.load(a + p), v128.load(b + p)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(a + p, 16), v128.load(b + p, 16)));
  }
  let s: f64 = <f64>f32x4.extract_lane(a0, 0) + <f64>f32x4.extract_lane(a0, 1) + <f64>f32x4.extract_lane(a0, 2) + <f64>f32x4.extract_lane(a0, 3) +
    <f64>f32x4.extract_lane(a1, 0) + <f64>f32x4.extract_lane(a1, 1) + <f64>f32x4.extract_lane(a1, 2) + <f64>f32x4.extract_lane(a1, 3);
  for (; i < n; i++) s += <f64>load<f32>(a + <usize>i * 4) * <f64>load<f32>(b + <usize>i * 4);
  return s;
}

/**
 * Attention with V heads of the first vd values of each cache head row (MLA) and, when f16, the normalised
 * probabilities rounded to f16 before they weight V; gpt-oss's sinks (nHead f32 logits at `sinks`, 0: none) join
 * each softmax's max and denominator, and a window (0: none) limits token t to its last `window` keys.
 * q[T, nHead, hd], k, v rows [startPos + T, nHeadKv * hd]; out[T, nHead * vd]; sc: (startPos + T) f32 of scratch.
 */
export function attention_ext(out: usize, q: usize, k: usize, v: usize, nTok: i32, startPos: i32, nHead: i32, nHeadKv: i32, hd: i32, vd: i32,
  scale: f32, f16: i32, sc: usize, sinks: usize, window: i32): void {
  const group = nHead / nHeadKv, kvRow = <usize>(nHeadKv * hd) * 4;
  for (let t = 0; t < nTok; t++) {
    const nk = startPos + t + 1, j0 = window > 0 && nk > window ? nk - window : 0;
    const kw = k + <usize>j0 * kvRow, vw = v + <usize>j0 * kvRow, n = nk - j0; // the keys in the window, from sc[0]
    for (let h = 0; h < nHead; h++) {
      const qh = q + <usize>(t * nHead + h) * hd * 4, kvOff = <usize>(h / group) * hd * 4;
      const sink: f32 = sinks ? load<f32>(sinks + <usize>h * 4) : -Infinity;
      let mx: f32 = sink;
      for (let j = 0; j < n; j++) {
        const s = <f32>dot8(kw + <usize>j * kvRow + kvOff, qh, hd) * scale;
        store<f32>(sc + <usize>j * 4, s);
        mx = max(mx, s);
      }
      let l: f64 = sinks ? Math.exp(<f64>sink - <f64>mx) : 0;
      for (let j = 0; j < n; j++) {
        const e = Math.exp(<f64>load<f32>(sc + <usize>j * 4) - <f64>mx);
        store<f32>(sc + <usize>j * 4, <f32>e);
        l += e;
      }
      const inv = 1 / l;
      for (let j = 0; j < n; j++) {
        const p = <f32>(<f64>load<f32>(sc + <usize>j * 4) * inv);
        store<f32>(sc + <usize>j * 4, f16 ? roundF16(p) : p);
      }
      // out = sum_j p_j v_j, 16 values at a time in registers, keys in order
      const oh = out + <usize>(t * nHead + h) * vd * 4;
      let i = 0;
      for (; i + 16 <= vd; i += 16) {
        let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
        let vj = vw + kvOff + <usize>i * 4;
        for (let j = 0; j < n; j++, vj += kvRow) {
          const p = v128.load32_splat(sc + <usize>j * 4);
          o0 = f32x4.add(o0, f32x4.mul(p, v128.load(vj)));
          o1 = f32x4.add(o1, f32x4.mul(p, v128.load(vj, 16)));
          o2 = f32x4.add(o2, f32x4.mul(p, v128.load(vj, 32)));
          o3 = f32x4.add(o3, f32x4.mul(p, v128.load(vj, 48)));
        }
        const o = oh + <usize>i * 4;
        v128.store(o, o0);
        v128.store(o, o1, 16);
        v128.store(o, o2, 32);
        v128.store(o, o3, 48);
      }
      for (; i < vd; i++) {
        let acc: f32 = 0;
        let vj = vw + kvOff + <usize>i * 4;
        for (let j = 0; j < n; j++, vj += kvRow) acc += load<f32>(sc + <usize>j * 4) * load<f32>(vj);
        store<f32>(oh + <usize>i * 4, acc);
      }
    }
  }
}

/**
 * The gated delta rule (Backend.gatedDeltaNet), in place on state [nV, s, s]: q, k [T, nK, s], v, out [T, nV, s],
 * g, beta [T, nV]; value head j reads key head j % nK (tile) or j / (nV / nK). As native op_gated_delta_net.
 */
export function gated_delta_net(out: usize, q: usize, k: usize, v: usize, g: usize, beta: usize, state: usize, nTok: i32, nK: i32, nV: i32,
  s: i32, tile: i32): void {
  const rep = nV / nK, scale = 1 / Math.sqrt(<f64>s), sb = <usize>s * 4;
  for (let j = 0; j < nV; j++) {
    const hk = tile ? j % nK : j / rep;
    const m = state + <usize>j * s * sb;
    for (let t = 0; t < nTok; t++) {
      const kt = k + <usize>(t * nK + hk) * sb, qt = q + <usize>(t * nK + hk) * sb;
      const vt = v + <usize>(t * nV + j) * sb, ot = out + <usize>(t * nV + j) * sb;
      const decay = <f32>Math.exp(<f64>load<f32>(g + <usize>(t * nV + j) * 4));
      const b = <f64>load<f32>(beta + <usize>(t * nV + j) * 4);
      const dv = f32x4.splat(decay);
      for (let i = 0; i < s; i++) {
        const row = m + <usize>i * sb;
        const delta = <f32>((<f64>load<f32>(vt + <usize>i * 4) - <f64>decay * dot8(row, kt, s)) * b);
        const dl = f32x4.splat(delta);
        let x = 0;
        for (; x + 4 <= s; x += 4) {
          const p = <usize>x * 4;
          v128.store(row + p, f32x4.add(f32x4.mul(v128.load(row + p), dv), f32x4.mul(dl, v128.load(kt + p))));
        }
        for (; x < s; x++) {
          const p = <usize>x * 4;
          store<f32>(row + p, load<f32>(row + p) * decay + delta * load<f32>(kt + p));
        }
        store<f32>(ot + <usize>i * 4, <f32>(dot8(row, qt, s) * scale));
      }
    }
  }
}

@inline function silu(x: f64): f64 {
  return x / (1 + Math.exp(-x));
}

/** Causal depthwise conv1d then SiLU: x[T, C], state [C, taps - 1] updated, w f32 [C, taps] (Backend.convSilu). */
export function conv_silu(out: usize, x: usize, state: usize, w: usize, nTok: i32, C: i32, taps: i32): void {
  const keep = taps - 1;
  for (let c = 0; c < C; c++) {
    const wc = w + <usize>c * taps * 4, st = state + <usize>c * keep * 4;
    for (let t = 0; t < nTok; t++) {
      let s: f64 = 0;
      for (let j = 0; j < taps; j++) {
        const i = t + j;
        const win = i < keep ? load<f32>(st + <usize>i * 4) : load<f32>(x + (<usize>(i - keep) * C + c) * 4);
        s += <f64>load<f32>(wc + <usize>j * 4) * <f64>win;
      }
      store<f32>(out + (<usize>t * C + c) * 4, <f32>silu(s));
    }
    for (let j = 0; j < keep; j++) { // reads window position nTok + j >= j: not yet overwritten
      const i = nTok + j;
      store<f32>(st + <usize>j * 4, i < keep ? load<f32>(st + <usize>i * 4) : load<f32>(x + (<usize>(i - keep) * C + c) * 4));
    }
  }
}

function sumsq(x: usize, n: i32): f64 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = <f64>load<f32>(x + <usize>i * 4);
    s += v * v;
  }
  return s;
}

/** Per row: out = x / sqrt(sum(x²) + eps) (out may equal x). */
export function l2_norm(out: usize, x: usize, eps: f64, len: i32, nRows: i32): void {
  for (let r = 0; r < nRows; r++) {
    const xr = x + <usize>r * len * 4, or = out + <usize>r * len * 4;
    const inv = 1 / Math.sqrt(sumsq(xr, len) + eps);
    for (let i = 0; i < len; i++) store<f32>(or + <usize>i * 4, <f32>(<f64>load<f32>(xr + <usize>i * 4) * inv));
  }
}

/** Per row: out = x / sqrt(mean(x²) + eps) * w * silu(gate), w f32 [len] (out may equal x). */
export function rms_norm_gated(out: usize, x: usize, w: usize, gate: usize, eps: f64, len: i32, nRows: i32): void {
  for (let r = 0; r < nRows; r++) {
    const xr = x + <usize>r * len * 4, zr = gate + <usize>r * len * 4, or = out + <usize>r * len * 4;
    const inv = 1 / Math.sqrt(sumsq(xr, len) / len + eps);
    for (let i = 0; i < len; i++) {
      const p = <usize>i * 4;
      store<f32>(or + p, <f32>(<f64>load<f32>(xr + p) * inv * <f64>load<f32>(w + p) * silu(<f64>load<f32>(zr + p))));
    }
  }
}

/** out = x * sigmoid(gate) (out may equal x). */
export function sigmoid_mul(out: usize, x: usize, gate: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = <usize>i * 4;
    store<f32>(out + p, <f32>(<f64>load<f32>(x + p) / (1 + Math.exp(-<f64>load<f32>(gate + p)))));
  }
}

/**
 * Rope in place on x[T, nHead, hd] over values [off, off + nRot) of each head from cs: T * nRot/2 (cos, sin) f64
 * pairs (any angles: YaRN, scaled); norm 1 pairs (2i, 2i + 1), 0 NeoX's (i, i + nRot/2). As native op_rope_table.
 */
export function rope_table(x: usize, cs: usize, nTok: i32, nHead: i32, hd: i32, nRot: i32, off: i32, norm: i32): void {
  const half = nRot / 2, step: usize = norm ? 8 : 4, other: usize = norm ? 4 : <usize>half * 4;
  for (let t = 0; t < nTok; t++) {
    const ct = cs + <usize>t * half * 16;
    for (let h = 0; h < nHead; h++) {
      const xh = x + (<usize>(t * nHead + h) * hd + off) * 4;
      for (let i = 0; i < half; i++) {
        const c = load<f64>(ct + <usize>i * 16), s = load<f64>(ct + <usize>i * 16 + 8);
        const pa = xh + <usize>i * step, pb = pa + other;
        const a = <f64>load<f32>(pa), b = <f64>load<f32>(pb);
        store<f32>(pa, <f32>(a * c - b * s));
        store<f32>(pb, <f32>(a * s + b * c));
      }
    }
  }
}

/** gpt-oss's clamped SwiGLU (as native op_swiglu_oai): g = min(g, limit), u = clamp(u, ±limit), out = g·σ(alpha·g)·(u + 1). */
export function swiglu_oai(out: usize, gate: usize, up: usize, n: i32, alpha: f64, limit: f64): void {
  for (let i = 0; i < n; i++) {
    const p = <usize>i * 4;
    const g = min(<f64>load<f32>(gate + p), limit), u = max(-limit, min(<f64>load<f32>(up + p), limit));
    store<f32>(out + p, <f32>((g / (1 + Math.exp(-alpha * g))) * (u + 1)));
  }
}

/** out[r, :] += bias for nRows rows of len values (bias: len f32). */
export function add_rows(out: usize, bias: usize, len: i32, nRows: i32): void {
  for (let r = 0; r < nRows; r++) {
    const o = out + <usize>r * len * 4;
    let i = 0;
    for (; i + 4 <= len; i += 4) {
      const p = <usize>i * 4;
      v128.store(o + p, f32x4.add(v128.load(o + p), v128.load(bias + p)));
    }
    for (; i < len; i++) {
      const p = <usize>i * 4;
      store<f32>(o + p, load<f32>(o + p) + load<f32>(bias + p));
    }
  }
}

/** x[0..n) rounded to f16 in place (native op_copy_rows' roundF16: an f16 cache's store, an operand's conversion). */
export function round_f16(x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = x + <usize>i * 4;
    store<f32>(p, roundF16(load<f32>(p)));
  }
}

/** out[i, :] += scales[i] · x[i, :] over n packed rows of len, in f64 then rounded to f32: the scalar reference's bits. */
export function scale_add_rows(out: usize, x: usize, scales: usize, n: i32, len: i32): void {
  for (let i = 0; i < n; i++) {
    const s = <f64>load<f32>(scales + <usize>i * 4), o = out + <usize>i * len * 4, xr = x + <usize>i * len * 4;
    for (let j = 0; j < len; j++) {
      const p = <usize>j * 4;
      store<f32>(o + p, <f32>(<f64>load<f32>(o + p) + s * <f64>load<f32>(xr + p)));
    }
  }
}
