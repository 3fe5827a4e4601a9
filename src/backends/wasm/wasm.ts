// The WebAssembly SIMD128 backend: the browser path, and the CPU fallback where the native addon cannot build.
// Weights are copied into wasm linear memories at upload (first fit over instances of at most 4 GiB each);
// matmul, rmsNorm, rope, attention (sinks, windows), add, swiglu (and gpt-oss's clamped one), bias rows, the experts'
// scatter-add and f16-rounding copies run in wasm (wasm/assembly/kernels.ts), the plain row copies in the fallback
// backend it is given (the scalar reference), whose f32 buffers it shares: activations (and the KV rows attention
// reads) are copied in and out per call, small next to the bytes the kernels stream.
import type { AttentionParams, Backend, Buf, CopyParams, DeltaNetParams, HostWeight, OpName, RopeOptions, Weight, WeightArena, WeightDesc } from "../backend.js";
import { DelegatingBackend, heads3d, ropeByGather, ropeIsPlain, ropeTable, tensorBytes, weightDims } from "../backend.js";
import { MAX_MEMORY_BYTES, WasmMemory, kernelsModule, sharedKernelsModule, wasmKernelsError, type WasmModule } from "./memory.js";
import { WasmThreads, defaultThreads, threadsAvailable } from "./threads.js";

/** ggml types the wasm matmul takes: F32, F16, BF16, Q8_0, the legacy, K- and i-quants, MXFP4 (every registered type). */
const WASM_MATMUL_TYPES = new Set([0, 1, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 29, 30, 39]);
const F32_TYPE = 0;
/** Activations staged per matmul call at most (tokens are chunked to fit), so scratch stays small. */
const STAGE_BYTES = 8 << 20;
/** Room kept free in each memory for scratch when placing weights. */
const SCRATCH_HEADROOM = 32 << 20;

export interface WasmBackendOptions {
  /** Runs the ops wasm does not (embed, rope, attention, ...) and owns the buffers: a backend whose Bufs hold `.data` f32 arrays. */
  fallback: Backend;
  /** Bytes per wasm memory (default and most: 4 GiB less a page); smaller values exist for tests of several memories. */
  memoryBytes?: number;
  /** Threads for matmul, the calling thread included (default 1). More need Node worker threads and shared memory; where those are missing it runs on one. */
  threads?: number;
}

/** Matmuls smaller than this many weight bytes stay on the calling thread (the hand-off costs more). */
const THREAD_MIN_BYTES = 128 << 10;

/** Whether this runtime compiles the kernels (WebAssembly with SIMD128). */
export function wasmAvailable(): boolean {
  return kernelsModule() !== undefined;
}
export { wasmKernelsError, defaultThreads };

/** A dropped backend's workers stop when it is collected (close() stops them at once). */
const stopPool = new FinalizationRegistry<WasmThreads>((pool) => pool.close());

/** A weight held in one wasm memory; `bytes` is a fresh view of it, so the fallback's ops can read it too. */
class WasmWeight implements Weight {
  constructor(readonly name: string, readonly type: number, readonly shape: readonly number[], readonly mem: WasmMemory, readonly ptr: number, readonly byteLength: number) {}
  get bytes(): Uint8Array {
    return this.mem.bytes(this.ptr, this.byteLength);
  }
}

interface Placement { mem: WasmMemory; ptr: number; byteLength: number }

/** Weight memory inside one wasm memory: bytes are copied in by write(); views are weights in place. */
class WasmArena implements WeightArena {
  private freed = false;
  constructor(private readonly p: Placement) {}
  get byteLength(): number {
    return this.p.byteLength;
  }
  write(offset: number, src: Uint8Array): void {
    this.check(offset, src.byteLength);
    this.p.mem.bytes(this.p.ptr + offset, src.byteLength).set(src);
  }
  view(w: WeightDesc, offset: number): Weight {
    const n = tensorBytes(w);
    this.check(offset, n);
    return new WasmWeight(w.name, w.type, w.shape, this.p.mem, this.p.ptr + offset, n);
  }
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.p.mem.release(this.p.ptr, this.p.byteLength);
  }
  private check(offset: number, n: number): void {
    if (this.freed) throw new Error("wasm weight arena used after free()");
    if (!(offset >= 0 && offset + n <= this.p.byteLength)) throw new RangeError(`wasm weight arena range [${offset}, ${offset + n}) outside its ${this.p.byteLength} bytes`);
  }
}

function f32(b: Buf): Float32Array {
  const data = (b as { data?: unknown }).data;
  if (!(data instanceof Float32Array)) throw new TypeError("wasm backend: buffer was not allocated by the wasm backend or its fallback");
  return data;
}

export class WasmBackend extends DelegatingBackend {
  readonly name = "wasm";
  private readonly module: WasmModule;
  private readonly limit: number;
  private readonly mems: WasmMemory[] = [];
  private readonly pool: WasmThreads | undefined;
  /** Where host bytes were uploaded, by (buffer, offset): uploading the same place again (a reused expert slot) overwrites in place. */
  private readonly placed = new WeakMap<ArrayBufferLike, Map<number, Placement>>();

  constructor(opts: WasmBackendOptions) {
    super(opts.fallback); // buffers, host weights, other types, and the row copies
    const module = kernelsModule();
    if (!module) throw new Error(`wasm backend unavailable: ${wasmKernelsError()}`);
    const want = opts.threads ?? 1;
    if (!Number.isInteger(want) || want < 1) throw new RangeError(`wasm backend: threads must be a positive integer, got ${want}`);
    const shared = want > 1 && threadsAvailable() ? sharedKernelsModule() : null;
    this.module = shared ?? module;
    this.pool = shared ? new WasmThreads(shared, want) : undefined;
    if (this.pool) stopPool.register(this, this.pool, this);
    this.limit = Math.min(opts.memoryBytes ?? MAX_MEMORY_BYTES, MAX_MEMORY_BYTES);
    if (!(this.limit >= 1 << 20)) throw new RangeError(`wasm backend: memoryBytes ${opts.memoryBytes} is too small`);
  }

  /** Threads a matmul runs on (1 where worker threads or shared memory are unavailable). */
  get threads(): number {
    return this.pool?.threads ?? 1;
  }

  /** Stops the worker threads, if any (idle ones never keep the process alive). */
  close(): void {
    stopPool.unregister(this);
    this.pool?.close();
  }

  /** How many wasm memories hold weights, and their bytes in use. */
  get memories(): number[] {
    return this.mems.map((m) => m.used);
  }

  override supports(op: OpName, type?: number): boolean {
    if (op === "expert_ffn") return false; // the model composes matmul and swiglu
    return this.ref.supports(op, type);
  }

  delegates(op: OpName, type?: number): boolean {
    return (op === "matmul" || op === "matmul_heads") && type !== undefined && !WASM_MATMUL_TYPES.has(type);
  }

  /** Weights live in wasm memory: binding host bytes copies them (a streamed expert costs its bytes twice). */
  override get deviceWeights(): boolean {
    return true;
  }

  /** An arena in one wasm memory (first fit, as weights are placed); free() gives the range back for reuse. */
  override allocWeights(bytes: number): WeightArena {
    return new WasmArena(this.place("weight arena", bytes));
  }

  override upload(w: HostWeight): Weight {
    if (!WASM_MATMUL_TYPES.has(w.type)) return this.ref.upload(w);
    const src = w.bytes;
    let byBuf = this.placed.get(src.buffer);
    let p = byBuf?.get(src.byteOffset);
    if (!p || p.byteLength !== src.byteLength) {
      p = this.place(w.name, src.byteLength);
      if (!byBuf) this.placed.set(src.buffer, (byBuf = new Map()));
      byBuf.set(src.byteOffset, p);
    }
    p.mem.bytes(p.ptr, p.byteLength).set(src);
    return new WasmWeight(w.name, w.type, w.shape, p.mem, p.ptr, p.byteLength);
  }

  /** First fit over the memories, keeping scratch headroom in each; a new memory when none has room. */
  private place(name: string, bytes: number): Placement {
    const room = this.limit - Math.min(SCRATCH_HEADROOM, this.limit / 8);
    if (bytes > room) throw new RangeError(`wasm backend: weight '${name}' has ${bytes} bytes, more than one wasm memory holds (${room} bytes; wasm32 addresses 4 GiB)`);
    for (const mem of this.mems) {
      if (mem.used + bytes + 16 > room) continue;
      const ptr = mem.reserve(bytes);
      if (ptr !== undefined) return { mem, ptr, byteLength: bytes };
    }
    const mem = this.newMemory();
    return { mem, ptr: mem.reserve(bytes)!, byteLength: bytes };
  }

  private newMemory(): WasmMemory {
    const mem = new WasmMemory(this.module, this.limit, this.pool !== undefined);
    this.mems.push(mem);
    this.pool?.add(mem);
    return mem;
  }

  /** The memory element-wise ops run in (the first one). */
  private get mem0(): WasmMemory {
    return this.mems[0] ?? this.newMemory();
  }


  override matmul(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    // Arena views (dense arenas, bound experts) hold any type: those without a wasm kernel go to the reference.
    if (!(w instanceof WasmWeight) || !WASM_MATMUL_TYPES.has(w.type)) return this.ref.matmul(out, w, x, nTokens);
    const { k, n } = weightDims(w);
    const mem = w.mem, kern = mem.k;
    if (kern.rowBytes(w.type, k) * n !== w.byteLength) throw new RangeError(`wasm matmul: weight '${w.name}' has ${w.byteLength} bytes, shape [${w.shape}] needs ${kern.rowBytes(w.type, k) * n}`);
    const xs = f32(x), os = f32(out);
    if (xs.length < nTokens * k || os.length < nTokens * n) throw new RangeError(`wasm matmul '${w.name}': x has ${xs.length} values, out ${os.length}; need ${nTokens * k} and ${nTokens * n}`);
    const xrow = (k * 4 + 15) & ~15, orow = n * 4, qrow = kern.actRowBytes(w.type, k);
    const chunk = Math.max(1, Math.min(nTokens, Math.floor(STAGE_BYTES / (xrow + orow + qrow))));
    const xBytes = chunk * xrow, oBytes = (chunk * orow + 15) & ~15;
    const s = mem.scratch(xBytes + oBytes + chunk * qrow);
    for (let t0 = 0; t0 < nTokens; t0 += chunk) {
      const tc = Math.min(chunk, nTokens - t0);
      const xv = mem.f32(s, tc * k); // rows packed at k values (the kernel's stride)
      xv.set(xs.subarray(t0 * k, (t0 + tc) * k));
      if (this.pool && w.byteLength >= THREAD_MIN_BYTES && n >= 2 * this.pool.threads) {
        const xb = kern.prep(w.type, s, s + xBytes + oBytes, k, tc);
        this.pool.matmulRows(mem, w.type, w.ptr, xb, s + xBytes, k, n, tc);
      } else kern.matmul(w.type, w.ptr, s, s + xBytes, k, n, tc, s + xBytes + oBytes);
      os.set(mem.f32(s + xBytes, tc * n), t0 * n);
    }
  }

  override rmsNorm(out: Buf, x: Buf, w: Weight, eps: number, rowLen: number, nRows: number): void {
    if (!(w instanceof WasmWeight) || w.type !== F32_TYPE) return this.ref.rmsNorm(out, x, w, eps, rowLen, nRows);
    const mem = w.mem, len = rowLen * nRows;
    const s = mem.scratch(len * 4);
    mem.f32(s, len).set(f32(x).subarray(0, len));
    mem.k.rms_norm(s, s, w.ptr, eps, rowLen, nRows);
    f32(out).set(mem.f32(s, len));
  }

  override add(out: Buf, a: Buf, b: Buf, n: number): void {
    this.binary(out, a, b, n, (o, pa, pb) => this.mem0.k.add(o, pa, pb, n));
  }

  override swiglu(out: Buf, gate: Buf, up: Buf, n: number): void {
    this.binary(out, gate, up, n, (o, pg, pu) => this.mem0.k.swiglu(o, pg, pu, n));
  }

  override swigluOai(out: Buf, gate: Buf, up: Buf, n: number, alpha: number, limit: number): void {
    this.binary(out, gate, up, n, (o, pg, pu) => this.mem0.k.swiglu_oai(o, pg, pu, n, alpha, limit));
  }

  override addRows(out: Buf, bias: Weight, rowLen: number, nRows: number): void {
    // Biases are F32 in real files; another type, or a length the reference refuses, goes there.
    if (bias.type !== F32_TYPE || bias.shape.reduce((a, v) => a * v, 1) !== rowLen) return this.ref.addRows(out, bias, rowLen, nRows);
    const n = rowLen * nRows;
    const [po, pb] = this.stage([f32(out).subarray(0, n), { w: bias, n: rowLen }]);
    this.mem0.k.add_rows(po, pb, rowLen, nRows);
    f32(out).set(this.mem0.f32(po, n));
  }

  /** A copy rounding to f16 (an f16 cache's store, q's conversion) rounds in wasm; a plain copy stays a copy in place. */
  override copy(out: Buf, x: Buf, p: CopyParams): void {
    const o = f32(out), xs = f32(x), { rows, n, src, dst } = p;
    const overrun = rows > 0 && (src.offset + (rows - 1) * src.stride + n > xs.length || dst.offset + (rows - 1) * dst.stride + n > o.length);
    if (!p.roundF16 || rows * n === 0 || overrun) return this.ref.copy(out, x, p); // which refuses an overrun
    const [px] = this.stage([rows * n]), staged = this.mem0.f32(px, rows * n);
    for (let r = 0; r < rows; r++) staged.set(xs.subarray(src.offset + r * src.stride, src.offset + r * src.stride + n), r * n);
    this.mem0.k.round_f16(px, rows * n);
    for (let r = 0; r < rows; r++) o.set(staged.subarray(r * n, (r + 1) * n), dst.offset + r * dst.stride);
  }

  /** The rows out[rows[i]] are staged packed, summed into in wasm and put back; repeated rows (never a MoE bucket) go to the reference. */
  override scatterAddRows(out: Buf, x: Buf, rows: Int32Array, scales: Float32Array, rowLen: number): void {
    const o = f32(out), xs = f32(x), n = rows.length;
    const fits = rows.every((r) => r >= 0 && (r + 1) * rowLen <= o.length) && scales.length >= n && xs.length >= n * rowLen;
    if (n === 0 || !fits || new Set(rows).size !== n) return this.ref.scatterAddRows(out, x, rows, scales, rowLen);
    const [po, px, ps] = this.stage([n * rowLen, xs.subarray(0, n * rowLen), scales.subarray(0, n)]), staged = this.mem0.f32(po, n * rowLen);
    for (let i = 0; i < n; i++) staged.set(o.subarray(rows[i] * rowLen, (rows[i] + 1) * rowLen), i * rowLen);
    this.mem0.k.scale_add_rows(po, px, ps, n, rowLen);
    for (let i = 0; i < n; i++) o.set(staged.subarray(i * rowLen, (i + 1) * rowLen), rows[i] * rowLen);
  }

  /** Stages a[0..n) and b[0..n) in scratch, runs fn(out, a, b) in place over a, copies back. */
  private binary(out: Buf, a: Buf, b: Buf, n: number, fn: (o: number, pa: number, pb: number) => void): void {
    const mem = this.mem0, bytes = (n * 4 + 15) & ~15;
    const s = mem.scratch(2 * bytes);
    mem.f32(s, n).set(f32(a).subarray(0, n));
    mem.f32(s + bytes, n).set(f32(b).subarray(0, n));
    fn(s, s, s + bytes);
    f32(out).set(mem.f32(s, n));
  }

  /** Activations quantised as the Q8_0 matmul sees them (34 bytes per 32 values); for tests. */
  quantizeQ8_0(x: Float32Array): Uint8Array {
    return this.quantize(x, 34 * (x.length / 32), (px, py) => this.mem0.k.quant_q8_0(px, py, x.length));
  }
  /** Activations quantised as the Q4_K / Q6_K matmuls see them (ggml block_q8_K, 292 bytes per 256 values); for tests. */
  quantizeQ8K(x: Float32Array): Uint8Array {
    return this.quantize(x, 292 * (x.length / 256), (px, py) => this.mem0.k.quant_q8_K(px, py, x.length));
  }
  private quantize(x: Float32Array, outBytes: number, fn: (px: number, py: number) => void): Uint8Array {
    const mem = this.mem0, xb = (x.length * 4 + 15) & ~15;
    const s = mem.scratch(xb + outBytes);
    mem.f32(s, x.length).set(x);
    fn(s, s + xb);
    return mem.bytes(s + xb, outBytes).slice();
  }

  override rope(x: Buf, pos: Int32Array, nHead: number, headDim: number, freqBase: number, nRot = headDim, opts?: RopeOptions): void {
    if (!ropeIsPlain(opts)) {
      // NORM / offset / YaRN: the reference's angles (ropeAngles), rotated in wasm; what the reference refuses, it refuses.
      const off = opts?.offset ?? 0;
      if (nRot % 2 !== 0 || nRot < 2 || off < 0 || off + nRot > headDim || pos.length === 0) return this.ref.rope(x, pos, nHead, headDim, freqBase, nRot, opts);
      const n = pos.length * nHead * headDim, cs = ropeTable(pos, nRot, freqBase, opts?.yarn);
      const [px, pc] = this.stage([f32(x).subarray(0, n), cs.length * 2]);
      this.mem0.f64(pc, cs.length).set(cs);
      this.mem0.k.rope_table(px, pc, pos.length, nHead, headDim, nRot, off, opts?.mode === "norm" ? 1 : 0);
      return f32(x).set(this.mem0.f32(px, n));
    }
    if (nRot % 2 !== 0 || nRot < 2 || nRot > headDim || pos.length === 0) return this.ref.rope(x, pos, nHead, headDim, freqBase, nRot);
    if (nRot === headDim) return this.ropeHeads(f32(x), pos, nHead, headDim, freqBase);
    ropeByGather(f32(x), pos.length * nHead, headDim, nRot, (y) => this.ropeHeads(y, pos, nHead, nRot, freqBase));
  }

  /** The wasm kernel over whole heads of x[pos.length, nHead, headDim]. */
  private ropeHeads(xs: Float32Array, pos: Int32Array, nHead: number, headDim: number, freqBase: number): void {
    const mem = this.mem0, n = pos.length * nHead * headDim, xb = Math.ceil((n * 4) / 16) * 16, pb = Math.ceil((pos.length * 4) / 16) * 16;
    const s = mem.scratch(xb + pb + headDim * 8);
    mem.f32(s, n).set(xs.subarray(0, n));
    mem.i32(s + xb, pos.length).set(pos);
    mem.k.rope(s, s + xb, pos.length, nHead, headDim, freqBase, s + xb + pb);
    xs.set(mem.f32(s, n));
  }

  override attention(out: Buf, q: Buf, kCache: Buf, vCache: Buf, p: AttentionParams): void {
    const { nTokens, startPos, nHead, nHeadKv, headDim } = p;
    if (headDim % 4 !== 0 || nHead % nHeadKv !== 0 || nTokens === 0) return this.ref.attention(out, q, kCache, vCache, p);
    if ((p.vDim !== undefined && p.vDim !== headDim) || p.f16Probs || p.sinks || p.window !== undefined) return this.attentionExt(out, q, kCache, vCache, p);
    const mem = this.mem0, nq = nTokens * nHead * headDim, nkv = (startPos + nTokens) * nHeadKv * headDim;
    const qb = nq * 4, kb = nkv * 4, sb = Math.ceil((startPos + nTokens) / 4) * 16;
    const s = mem.scratch(2 * qb + 2 * kb + sb);
    const pq = s, pk = s + qb, pv = pk + kb, po = pv + kb, ps = po + qb;
    mem.f32(pq, nq).set(f32(q).subarray(0, nq));
    mem.f32(pk, nkv).set(f32(kCache).subarray(0, nkv)); // the rows attended to: at most the filled cache
    mem.f32(pv, nkv).set(f32(vCache).subarray(0, nkv));
    mem.k.attention(po, pq, pk, pv, nTokens, startPos, nHead, nHeadKv, headDim, p.scale, ps);
    f32(out).set(mem.f32(po, nq));
  }

  /**
   * MLA attention (V heads the first vDim values of each cache row, f16 probabilities) and gpt-oss's (sinks, a
   * sliding window); the cache is staged once when V is K.
   */
  private attentionExt(out: Buf, q: Buf, kCache: Buf, vCache: Buf, p: AttentionParams): void {
    const { nTokens, startPos, nHead, nHeadKv, headDim } = p, vd = p.vDim ?? headDim;
    // Sinks as a weight are read by stage() once scratch is placed (they may sit in the memory it grows).
    const s = p.sinks;
    const sinks = s === undefined ? 0 : s instanceof Float32Array ? (s.length >= nHead ? s.subarray(0, nHead) : undefined) : s.type === F32_TYPE ? { w: s, n: nHead } : undefined;
    const badWindow = p.window !== undefined && !(Number.isInteger(p.window) && p.window >= 1);
    // What the reference refuses (vDim, a window, too few sinks), and sinks of another type, it runs.
    if (!(vd >= 1 && vd <= headDim) || badWindow || sinks === undefined) return this.ref.attention(out, q, kCache, vCache, p);
    const nkv = (startPos + nTokens) * nHeadKv * headDim, same = kCache === vCache;
    const [pq, pk, pv, po, ps, pz] = this.stage([f32(q).subarray(0, nTokens * nHead * headDim), f32(kCache).subarray(0, nkv), same ? 0 : f32(vCache).subarray(0, nkv),
      nTokens * nHead * vd, startPos + nTokens, sinks]);
    const k = this.mem0.k;
    k.attention_ext(po, pq, pk, same ? pk : pv, nTokens, startPos, nHead, nHeadKv, headDim, vd, p.scale, p.f16Probs ? 1 : 0, ps, s ? pz : 0, p.window ?? 0);
    f32(out).set(this.mem0.f32(po, nTokens * nHead * vd));
  }

  /** Per head, the wasm matmul over that head's slice of the weight (in place in wasm memory). */
  override matmulHeads(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    if (!(w instanceof WasmWeight) || !WASM_MATMUL_TYPES.has(w.type)) return this.ref.matmulHeads(out, w, x, nTokens);
    const [k, n, nHead] = heads3d(w);
    const per = w.byteLength / nHead, xs = f32(x), o = f32(out);
    const xh = this.alloc(nTokens * k), oh = this.alloc(nTokens * n), xv = f32(xh), ov = f32(oh);
    for (let h = 0; h < nHead; h++) {
      for (let t = 0; t < nTokens; t++) xv.set(xs.subarray((t * nHead + h) * k, (t * nHead + h + 1) * k), t * k);
      this.matmul(oh, new WasmWeight(`${w.name}[${h}]`, w.type, [k, n], w.mem, w.ptr + h * per, per), xh, nTokens);
      for (let t = 0; t < nTokens; t++) o.set(ov.subarray(t * n, (t + 1) * n), (t * nHead + h) * n);
    }
    this.free(xh);
    this.free(oh);
  }

  override gatedDeltaNet(out: Buf, q: Buf, k: Buf, v: Buf, g: Buf, beta: Buf, state: Buf, stateOut: Buf, p: DeltaNetParams): void {
    const { nTokens: T, nHeadK, nHeadV, headDim: S } = p;
    if (nHeadV % nHeadK !== 0 || T === 0) return this.ref.gatedDeltaNet(out, q, k, v, g, beta, state, stateOut, p);
    const ns = nHeadV * S * S;
    const [pq, pk, pv, pg, pb, pst, po] = this.stage([f32(q).subarray(0, T * nHeadK * S), f32(k).subarray(0, T * nHeadK * S), f32(v).subarray(0, T * nHeadV * S),
      f32(g).subarray(0, T * nHeadV), f32(beta).subarray(0, T * nHeadV), f32(state).subarray(0, ns), T * nHeadV * S]);
    this.mem0.k.gated_delta_net(po, pq, pk, pv, pg, pb, pst, T, nHeadK, nHeadV, S, p.kvMap === "tile" ? 1 : 0);
    f32(out).set(this.mem0.f32(po, T * nHeadV * S));
    f32(stateOut).set(this.mem0.f32(pst, ns)); // the input state stays as it was unless it is stateOut
  }

  override convSilu(out: Buf, x: Buf, state: Buf, w: Weight, nTokens: number, channels: number): void {
    const { k: taps, n } = weightDims(w);
    if (w.type !== F32_TYPE || n !== channels || taps < 1) return this.ref.convSilu(out, x, state, w, nTokens, channels);
    const nx = nTokens * channels, ns = channels * (taps - 1);
    const [px, pst, pw, po] = this.stage([f32(x).subarray(0, nx), f32(state).subarray(0, ns), { w, n: taps * channels }, nx]);
    this.mem0.k.conv_silu(po, px, pst, pw, nTokens, channels, taps);
    f32(out).set(this.mem0.f32(po, nx));
    f32(state).set(this.mem0.f32(pst, ns));
  }

  override l2Norm(out: Buf, x: Buf, eps: number, rowLen: number, nRows: number): void {
    const n = rowLen * nRows;
    const [px] = this.stage([f32(x).subarray(0, n)]);
    this.mem0.k.l2_norm(px, px, eps, rowLen, nRows);
    f32(out).set(this.mem0.f32(px, n));
  }

  override rmsNormGated(out: Buf, x: Buf, w: Weight, gate: Buf, eps: number, rowLen: number, nRows: number): void {
    if (w.type !== F32_TYPE) return this.ref.rmsNormGated(out, x, w, gate, eps, rowLen, nRows);
    const n = rowLen * nRows;
    const [px, pz, pw] = this.stage([f32(x).subarray(0, n), f32(gate).subarray(0, n), { w, n: rowLen }]);
    this.mem0.k.rms_norm_gated(px, px, pw, pz, eps, rowLen, nRows);
    f32(out).set(this.mem0.f32(px, n));
  }

  override sigmoidMul(out: Buf, x: Buf, gate: Buf, n: number): void {
    const [px, pg] = this.stage([f32(x).subarray(0, n), f32(gate).subarray(0, n)]);
    this.mem0.k.sigmoid_mul(px, px, pg, n);
    f32(out).set(this.mem0.f32(px, n));
  }

  /**
   * Scratch in the first memory for each item, 16-byte aligned: arrays copied in, numbers as that many f32 left
   * uninitialised, weights' f32 values copied in (read after the scratch is placed: growing a memory detaches views of it).
   */
  private stage(items: readonly (Float32Array | number | { w: Weight; n: number })[]): number[] {
    const count = (it: Float32Array | number | { n: number }) => (typeof it === "number" ? it : it instanceof Float32Array ? it.length : it.n);
    const sizes = items.map((it) => (count(it) * 4 + 15) & ~15);
    const mem = this.mem0, base = mem.scratch(sizes.reduce((a, b) => a + b, 0));
    let at = base;
    return items.map((it, i) => {
      const p = at;
      if (typeof it !== "number") mem.f32(p, count(it)).set(it instanceof Float32Array ? it : floatsOf(it.w, it.n));
      at += sizes[i];
      return p;
    });
  }
}

/** The f32 values of a weight of type F32 (its bytes at any alignment). */
function floatsOf(w: Weight, n: number): Float32Array {
  const bytes = (w as { bytes?: Uint8Array }).bytes;
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < n * 4) throw new RangeError(`wasm backend: weight '${w.name}' has no ${n} f32 values`);
  return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, n) : new Float32Array(bytes.slice(0, n * 4).buffer);
}
