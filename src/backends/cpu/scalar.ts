// The scalar reference backend: plain TypeScript, f32 storage, f64 accumulation. It is the oracle
// every faster kernel is held to, so it favours obviousness over speed.
import type { AttentionParams, Backend, Buf, CopyParams, DeltaNetParams, HostWeight, OpName, RopeOptions, Weight, WeightArena } from "../backend.js";
import { heads3d, HostArena, ropeAngles, weightDims } from "../backend.js";
import { roundToF16 } from "../../util/f16.js";
import { quantFormat } from "../../quant/index.js";

class F32Buf implements Buf {
  constructor(readonly data: Float32Array) {}
  get length(): number {
    return this.data.length;
  }
}

interface HostWeightHandle extends Weight {
  readonly bytes: Uint8Array;
}

function d(b: Buf): Float32Array {
  return (b as F32Buf).data;
}

export class ScalarBackend implements Backend {
  readonly name = "scalar";
  readonly deviceWeights = false;
  private scratch = new Float32Array(0);

  supports(op: OpName, type?: number): boolean {
    if (op === "expert_ffn") return false; // no fused op: the model composes matmul and swiglu
    if (type === undefined) return true;
    try {
      quantFormat(type);
      return true;
    } catch {
      return false;
    }
  }

  upload(w: HostWeight): Weight {
    quantFormat(w.type); // refuse unsupported types at load, not mid-forward
    return { name: w.name, type: w.type, shape: w.shape, bytes: w.bytes } as HostWeightHandle;
  }
  allocWeights(bytes: number): WeightArena {
    return new HostArena(this, bytes);
  }
  alloc(length: number): Buf {
    return new F32Buf(new Float32Array(length));
  }
  write(dst: Buf, src: Float32Array, dstOffset = 0): void {
    d(dst).set(src, dstOffset);
  }
  async read(src: Buf): Promise<Float32Array> {
    return d(src).slice();
  }
  async readMany(srcs: readonly Buf[], idle?: () => void): Promise<Float32Array[]> {
    idle?.(); // nothing to wait for: run it now
    return srcs.map((b) => d(b).slice());
  }
  free(_buf: Buf): void {}

  private row(w: Weight, r: number, k: number): Float32Array {
    const q = quantFormat(w.type);
    const rowBytes = (k / q.blockSize) * q.bytesPerBlock;
    if (this.scratch.length < k) this.scratch = new Float32Array(k);
    const out = this.scratch.subarray(0, k);
    const bytes = (w as HostWeightHandle).bytes;
    q.dequantRow(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), out, k);
    return out;
  }

  embed(out: Buf, table: Weight, ids: Int32Array): void {
    const { k, n } = weightDims(table);
    const o = d(out);
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t];
      if (id < 0 || id >= n) throw new RangeError(`token id ${id} out of range [0, ${n})`);
      o.set(this.row(table, id, k), t * k);
    }
  }

  matmul(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    const { k, n } = weightDims(w);
    const o = d(out);
    const xs = d(x);
    for (let r = 0; r < n; r++) {
      const wr = this.row(w, r, k);
      for (let t = 0; t < nTokens; t++) {
        const base = t * k;
        let s = 0;
        for (let i = 0; i < k; i++) s += wr[i] * xs[base + i];
        o[t * n + r] = s;
      }
    }
  }

  rmsNorm(out: Buf, x: Buf, w: Weight, eps: number, rowLen: number, nRows: number): void {
    const xs = d(x);
    const o = d(out);
    const g = this.row(w, 0, rowLen).slice();
    for (let base = 0; base < nRows * rowLen; base += rowLen) {
      let ss = 0;
      for (let i = 0; i < rowLen; i++) ss += xs[base + i] * xs[base + i];
      const inv = 1 / Math.sqrt(ss / rowLen + eps);
      for (let i = 0; i < rowLen; i++) o[base + i] = xs[base + i] * inv * g[i];
    }
  }

  rope(x: Buf, pos: Int32Array, nHead: number, headDim: number, freqBase: number, nRot = headDim, opts?: RopeOptions): void {
    const off = opts?.offset ?? 0;
    if (nRot % 2 !== 0 || nRot < 2 || off < 0 || off + nRot > headDim) throw new RangeError(`rope: nRot ${nRot} must be even, at least 2, and fit headDim ${headDim} from offset ${off}`);
    const xs = d(x);
    const half = nRot / 2;
    // NeoX pairs value i with i + nRot/2, NORM (GPT-J) 2i with 2i + 1; values outside [off, off + nRot) pass through.
    const [step, other] = opts?.mode === "norm" ? [2, 1] : [1, half];
    const angle = ropeAngles(nRot, freqBase, opts?.yarn);
    for (let t = 0; t < pos.length; t++) {
      for (let i = 0; i < half; i++) {
        const { cos: c, sin: s } = angle(pos[t], i);
        for (let h = 0; h < nHead; h++) {
          const j = (t * nHead + h) * headDim + off + i * step;
          const a = xs[j];
          const b = xs[j + other];
          xs[j] = a * c - b * s;
          xs[j + other] = a * s + b * c;
        }
      }
    }
  }

  copy(out: Buf, x: Buf, p: CopyParams): void {
    const o = d(out), xs = d(x);
    const { rows, n, src, dst } = p;
    if (rows > 0 && (src.offset + (rows - 1) * src.stride + n > xs.length || dst.offset + (rows - 1) * dst.stride + n > o.length))
      throw new RangeError(`copy: ${rows} rows of ${n} (src stride ${src.stride} from ${src.offset}, dst stride ${dst.stride} from ${dst.offset}) overrun ${xs.length} -> ${o.length} values`);
    for (let r = 0; r < rows; r++) {
      const sb = src.offset + r * src.stride, db = dst.offset + r * dst.stride;
      if (p.roundF16) for (let i = 0; i < n; i++) o[db + i] = roundToF16(xs[sb + i]);
      else o.set(xs.subarray(sb, sb + n), db);
    }
  }

  matmulHeads(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    const [k, n, nHead] = heads3d(w);
    const o = d(out), xs = d(x);
    for (let h = 0; h < nHead; h++) {
      for (let r = 0; r < n; r++) {
        const wr = this.row(w, h * n + r, k);
        for (let t = 0; t < nTokens; t++) {
          const xb = (t * nHead + h) * k;
          let s = 0;
          for (let i = 0; i < k; i++) s += wr[i] * xs[xb + i];
          o[(t * nHead + h) * n + r] = s;
        }
      }
    }
  }

  kvStore(kCache: Buf, vCache: Buf, k: Buf, v: Buf, startPos: number, nTokens: number, kvDim: number): void {
    d(kCache).set(d(k).subarray(0, nTokens * kvDim), startPos * kvDim);
    d(vCache).set(d(v).subarray(0, nTokens * kvDim), startPos * kvDim);
  }

  attention(out: Buf, q: Buf, kCache: Buf, vCache: Buf, p: AttentionParams): void {
    const { nTokens, startPos, nHead, nHeadKv, headDim, scale } = p;
    const qs = d(q);
    const ks = d(kCache);
    const vs = d(vCache);
    const o = d(out);
    const group = nHead / nHeadKv;
    const kvDim = nHeadKv * headDim;
    const vd = p.vDim ?? headDim; // MLA: each V head is the first vDim values of its K-shaped row
    if (!(vd >= 1 && vd <= headDim)) throw new RangeError(`attention: vDim ${vd} not in [1, headDim ${headDim}]`);
    const scores = new Float64Array(startPos + nTokens);
    const sinks = p.sinks === undefined ? undefined : p.sinks instanceof Float32Array ? p.sinks : this.row(p.sinks, 0, nHead).slice();
    const win = p.window;
    if (win !== undefined && !(Number.isInteger(win) && win >= 1)) throw new RangeError(`attention: window ${win} is not a positive integer`);
    for (let t = 0; t < nTokens; t++) {
      const nKeys = startPos + t + 1;
      const j0 = win === undefined ? 0 : Math.max(0, nKeys - win); // keys before it are outside the window (masked)
      for (let h = 0; h < nHead; h++) {
        const qb = (t * nHead + h) * headDim;
        const kvh = Math.floor(h / group);
        const sink = sinks ? sinks[h] : -Infinity; // exp(-Infinity) = 0: no sink, the plain softmax
        let max = sink;
        for (let j = j0; j < nKeys; j++) {
          const kb = j * kvDim + kvh * headDim;
          let s = 0;
          for (let i = 0; i < headDim; i++) s += qs[qb + i] * ks[kb + i];
          s *= scale;
          scores[j] = s;
          if (s > max) max = s;
        }
        let sum = sinks ? Math.exp(sink - max) : 0; // the sink's share of the denominator; it weights no value
        for (let j = j0; j < nKeys; j++) {
          scores[j] = Math.exp(scores[j] - max);
          sum += scores[j];
        }
        const ob = (t * nHead + h) * vd;
        let div = sum;
        if (p.f16Probs) {
          for (let j = j0; j < nKeys; j++) scores[j] = roundToF16(scores[j] / sum);
          div = 1;
        }
        for (let i = 0; i < vd; i++) {
          let acc = 0;
          for (let j = j0; j < nKeys; j++) acc += scores[j] * vs[j * kvDim + kvh * headDim + i];
          o[ob + i] = acc / div;
        }
      }
    }
  }

  add(out: Buf, a: Buf, b: Buf, n: number): void {
    const o = d(out), as = d(a), bs = d(b);
    for (let i = 0; i < n; i++) o[i] = as[i] + bs[i];
  }

  swiglu(out: Buf, gate: Buf, up: Buf, n: number): void {
    const o = d(out), g = d(gate), u = d(up);
    for (let i = 0; i < n; i++) o[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
  }

  swigluOai(out: Buf, gate: Buf, up: Buf, n: number, alpha: number, limit: number): void {
    const o = d(out), gs = d(gate), us = d(up);
    for (let i = 0; i < n; i++) {
      const g = Math.min(gs[i], limit), u = Math.max(-limit, Math.min(us[i], limit));
      o[i] = (g / (1 + Math.exp(-alpha * g))) * (u + 1);
    }
  }

  gatherRows(out: Buf, x: Buf, rows: Int32Array, rowLen: number): void {
    const o = d(out), xs = d(x);
    for (let i = 0; i < rows.length; i++) o.set(xs.subarray(rows[i] * rowLen, (rows[i] + 1) * rowLen), i * rowLen);
  }

  scatterAddRows(out: Buf, x: Buf, rows: Int32Array, scales: Float32Array, rowLen: number): void {
    const o = d(out), xs = d(x);
    for (let i = 0; i < rows.length; i++) {
      const ob = rows[i] * rowLen, xb = i * rowLen, s = scales[i];
      for (let j = 0; j < rowLen; j++) o[ob + j] += s * xs[xb + j];
    }
  }

  addRows(out: Buf, bias: Weight, rowLen: number, nRows: number): void {
    const nb = bias.shape.reduce((a, v) => a * v, 1);
    if (nb !== rowLen) throw new RangeError(`addRows: bias '${bias.name}' has ${nb} values, rows have ${rowLen}`);
    const o = d(out), b = this.row(bias, 0, rowLen).slice();
    for (let base = 0; base < nRows * rowLen; base += rowLen) for (let i = 0; i < rowLen; i++) o[base + i] += b[i];
  }

  zero(out: Buf): void {
    d(out).fill(0);
  }

  convSilu(out: Buf, x: Buf, state: Buf, w: Weight, nTokens: number, channels: number): void {
    const { k: taps, n } = weightDims(w);
    if (n !== channels) throw new RangeError(`convSilu: weight '${w.name}' has ${n} channels, expected ${channels}`);
    const keep = taps - 1;
    const xs = d(x), st = d(state), o = d(out);
    // Rows of `taps` values can only be of a type with blocks of 1 (F32, F16, BF16): the whole tensor dequantises as one row.
    const wAll = new Float32Array(taps * channels);
    quantFormat(w.type).dequantRow((w as HostWeightHandle).bytes, wAll, taps * channels);
    const win = new Float32Array(keep + nTokens);
    for (let c = 0; c < channels; c++) {
      const wr = wAll.subarray(c * taps, (c + 1) * taps);
      for (let j = 0; j < keep; j++) win[j] = st[c * keep + j];
      for (let t = 0; t < nTokens; t++) win[keep + t] = xs[t * channels + c];
      for (let t = 0; t < nTokens; t++) {
        let s = 0;
        for (let j = 0; j < taps; j++) s += wr[j] * win[t + j];
        o[t * channels + c] = s / (1 + Math.exp(-s));
      }
      for (let j = 0; j < keep; j++) st[c * keep + j] = win[nTokens + j];
    }
  }

  l2Norm(out: Buf, x: Buf, eps: number, rowLen: number, nRows: number): void {
    const xs = d(x), o = d(out);
    for (let base = 0; base < nRows * rowLen; base += rowLen) {
      let ss = 0;
      for (let i = 0; i < rowLen; i++) ss += xs[base + i] * xs[base + i];
      const inv = 1 / Math.sqrt(ss + eps);
      for (let i = 0; i < rowLen; i++) o[base + i] = xs[base + i] * inv;
    }
  }

  deltaGates(g: Buf, beta: Buf, alpha: Buf, betaRaw: Buf, dtBias: Weight, a: Weight, nHead: number, nRows: number): void {
    const dt = this.row(dtBias, 0, nHead).slice(), av = this.row(a, 0, nHead).slice();
    const go = d(g), bo = d(beta), al = d(alpha), br = d(betaRaw);
    for (let r = 0; r < nRows; r++) {
      for (let h = 0; h < nHead; h++) {
        const i = r * nHead + h;
        const z = al[i] + dt[h];
        const softplus = z > 20 ? z : Math.log1p(Math.exp(z)); // ggml's softplus threshold
        go[i] = softplus * av[h];
        bo[i] = 1 / (1 + Math.exp(-br[i]));
      }
    }
  }

  gatedDeltaNet(out: Buf, q: Buf, k: Buf, v: Buf, g: Buf, beta: Buf, state: Buf, stateOut: Buf, p: DeltaNetParams): void {
    const { nTokens: T, nHeadK, nHeadV, headDim: S, kvMap } = p;
    if (nHeadV % nHeadK !== 0) throw new RangeError(`gatedDeltaNet: ${nHeadV} value heads not a multiple of ${nHeadK} key heads`);
    const rep = nHeadV / nHeadK;
    const qs = d(q), ks = d(k), vs = d(v), gs = d(g), bs = d(beta), st = d(stateOut), o = d(out);
    if (stateOut !== state) st.set(d(state).subarray(0, nHeadV * S * S)); // then updated in place
    const scale = 1 / Math.sqrt(S);
    for (let j = 0; j < nHeadV; j++) {
      const hk = kvMap === "interleave" ? Math.floor(j / rep) : j % nHeadK;
      const M = st.subarray(j * S * S, (j + 1) * S * S); // M[i][c] at i·S + c: value row i over keys c
      for (let t = 0; t < T; t++) {
        const qb = (t * nHeadK + hk) * S, kb = qb, vb = (t * nHeadV + j) * S;
        const decay = Math.exp(gs[t * nHeadV + j]), b = bs[t * nHeadV + j];
        // Row i of M at a time (rows are independent): decayed M k, the correction, then the updated row · q.
        for (let i = 0; i < S; i++) {
          const r = i * S;
          let mk = 0;
          for (let c = 0; c < S; c++) mk += M[r + c] * ks[kb + c];
          const delta = (vs[vb + i] - decay * mk) * b; // v − (exp(g) M) k, times β
          let mq = 0;
          for (let c = 0; c < S; c++) {
            const m = (M[r + c] = M[r + c] * decay + delta * ks[kb + c]);
            mq += m * qs[qb + c];
          }
          o[vb + i] = mq * scale;
        }
      }
    }
  }

  rmsNormGated(out: Buf, x: Buf, w: Weight, gate: Buf, eps: number, rowLen: number, nRows: number): void {
    const xs = d(x), gs = d(gate), o = d(out);
    const wv = this.row(w, 0, rowLen).slice();
    for (let base = 0; base < nRows * rowLen; base += rowLen) {
      let ss = 0;
      for (let i = 0; i < rowLen; i++) ss += xs[base + i] * xs[base + i];
      const inv = 1 / Math.sqrt(ss / rowLen + eps);
      for (let i = 0; i < rowLen; i++) {
        const z = gs[base + i];
        o[base + i] = xs[base + i] * inv * wv[i] * (z / (1 + Math.exp(-z)));
      }
    }
  }

  sigmoidMul(out: Buf, x: Buf, gate: Buf, n: number): void {
    const o = d(out), xs = d(x), gs = d(gate);
    for (let i = 0; i < n; i++) o[i] = xs[i] / (1 + Math.exp(-gs[i]));
  }
}
