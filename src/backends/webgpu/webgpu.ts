/// <reference types="@webgpu/types" />
// The WebGPU backend: weights and activations live on the device; ops are recorded into one command encoder
// (one compute pass, a bind group per dispatch) and submitted only when the host needs a result (read, readMany)
// or new bytes must land in order (write, a weight arena's write): a MoE layer is one submission up to its
// routing read, the rest of the layer and the next one's attention the next. Host arrays an op takes (token ids,
// rope cos/sin, row lists, scales) and every op's parameters go into a staging buffer written once per submission.
// Nothing here blocks: a read awaits mapAsync, so the thread driving Dawn keeps its event loop turning.
// The recording (encoder and pass, staging bytes, held submissions, pipeline and bind group caches, bench timing)
// is recorder.ts's, which the backend owns; reads back are readback.ts's. The matmuls are in matmul-ops.ts, the MoE
// ops (expert slots, routing on the device, pair tables) in moe.ts, the attention ops in attention-ops.ts, the gated
// DeltaNet's in linear-attention-ops.ts: all dispatch through the recorder too.
import type { AttentionParams, Backend, Buf, CopyParams, DeltaNetParams, DeviceRoute, ExpertParts, ExpertRows, HostWeight, NormRopeStoreParams, OpName, RopeOptions, RouteSpec, Weight, WeightArena } from "../backend.js";
import { tensorBytes, weightDims } from "../backend.js";
import { GpuArena, type ArenaHost } from "./arena.js";
import { GpuPad } from "./pad.js";
import { F32, GpuBuf, gbuf, gw, f32Word, rowRuns } from "./buffers.js";
import { GpuMoe } from "./moe.js";
import type { GpuDevice } from "./device.js";
import { ADD_ROWS_WGSL, ADD_STAGED_WGSL, COPY_WGSL, GATHER_WGSL, quantXWords, REPACK_WGSL, SCATTER_ADD_WGSL, binaryWgsl, normShape, normWgsl, embedWgsl, inPlace } from "./kernels.js";
import { GPU_QUANTS, type GpuQuant } from "./quant/index.js";
import { GpuAttention } from "./attention-ops.js";
import { GpuLinearAttention } from "./linear-attention-ops.js";
import type { KernelTimes } from "./profiler.js";
import { Readbacks } from "./readback.js";
import { Recorder } from "./recorder.js";
import { MappedStaging } from "./staging.js";
import { GpuMatmul, Q4_K_READERS } from "./matmul-ops.js";


const COPY_SRC = 0x04, COPY_DST = 0x08, STORAGE = 0x80;
/** Writes of at most this many bytes go through the staging buffer as recorded copies (write()); larger ones submit first. */
const WRITE_STAGED_BYTES = 256 << 10;

/** Ops this backend runs (every architecture's). */
const OPS = new Set<OpName>(["embed", "matmul", "matmul_heads", "rmsnorm", "rope", "kv_store", "attention", "add", "swiglu", "gather_rows", "scatter_add_rows", "add_rows", "moe_ffn", "copy", "sigmoid_mul", "swiglu_oai",
  "conv_silu", "l2_norm", "delta_gates", "delta_net", "rmsnorm_gated"]);

const f = f32Word;

export class WebGpuBackend implements Backend, ArenaHost {
  readonly name = "webgpu";
  readonly deviceWeights = true;
  /** Recording a layer takes ~0.2 ms of the thread: let timers run every 4 (a token records 48 with no read). */
  readonly breatheEvery = 4;
  readonly device: GPUDevice;
  readonly maxBinding: number;
  readonly adapterName: string;
  private readonly gpu: GpuDevice;
  /** Uploads of weights and expert records (staging.ts): by default 8 mapped buffers of 32 MiB at most. */
  private readonly uploads: MappedStaging;
  private readonly readbacks: Readbacks;
  /** @internal The recording: ops (and moe.ts) record their dispatches, host data and copies through it. */
  readonly rec: Recorder;
  private error: string | undefined;
  /** Kernels' scratch by name (scratchBuf). */
  private readonly scratch = new Map<string, GpuBuf>();
  private readonly moe = new GpuMoe(this);
  private readonly attn: GpuAttention;
  /** @internal The matmuls (moe.ts plans its matvecs and quantises x through it). */
  readonly mm: GpuMatmul;
  private readonly linear = new GpuLinearAttention(this);

  /** Matvec sums over subgroups (the device has the feature, and the caller did not turn it off). */
  readonly subgroups: boolean;
  /**
   * A decode token's routing inside its gate+up dispatch (every workgroup routes); else a dispatch of its own. Off:
   * on an H100 the fused pair took 2x the time of the two (327 vs 72 + 67 µs, a3b-8L, 2026-12-06). Benches compare.
   */
  fuseRouting = false;
  /**
   * The MoE's down projection and weighted sum in one dispatch; else down, then the combine. On: on an H100 (session
   * 13, one row a group) 27.3 vs 18.5 + 9.6 µs a layer, and a dispatch fewer, where a decode token is bound by the
   * host's ~9 µs of recording a dispatch (s10c, two rows a group: 123 vs 59 + 24).
   */
  fuseDownSum = true;
  /** Dispatches recorded before a submit, so the GPU starts while the host records the rest (the recorder's knob). */
  get flushEvery(): number {
    return this.rec.flushEvery;
  }
  set flushEvery(n: number) {
    this.rec.flushEvery = n;
  }
  /** A decode token's norms, rope, KV store and attention in one dispatch (normRopeAttention); else two. */
  fuseAttention = true;
  /**
   * addLater submits what was recorded before it, so the GPU runs a split layer's device experts while this
   * thread records the next layer's attention (one more submit a layer). On: an H100, a3b at a 25% tier, 72.2 vs
   * 78.8 ms a token (medians of 5 alternating rounds, session 17). Benches compare.
   */
  submitBeforeLater = true;
  /** Opt-in pads in the split tier's idle windows (pad.ts): the spin's iterations a pad, 0: off. */
  get padIters(): number {
    return this.pads.iters;
  }
  set padIters(n: number) {
    this.pads.iters = n;
  }
  private readonly pads: GpuPad;
  /** Rows per thread group of every matvec, instead of matvecShape's choice by row count (benches compare). */
  matvecRows: number | undefined;
  /** Threads per row of every matvec at most this (8-64), instead of matvecShape's 64 (benches compare). */
  matvecLanes: number | undefined;
  /** Q4_K and Q8_0 matvecs against x quantised to 8 bits, with integer dot products (as llama.cpp's CUDA matvec), where WGSL has them. */
  intDot = false;
  /**
   * Weight rows a thread of the tiled matmul and the prompt MoE's down tiles computes: 1, or 2 (each x load feeds
   * both; the same bits). 2: on an H100 (session 13) a 128-token prompt's GPU time 298 -> 270 ms.
   */
  tileRows: 1 | 2 = 2;
  /**
   * A prompt's matmul whose tiled grid has fewer workgroups than this runs as the matvec, each token re-reading the
   * (then L2-resident) weights: a3b's router (128 rows) tiles into 8 workgroups for 128 tokens, 1.1 ms on an H100
   * (session 15), where the whole GPU could work. 0: always tiled. 256: a 128-token prompt of a3b took 138 ms of
   * GPU time against 257 always tiled (router 1086 -> 33 µs, k/v 640 -> 69; 1024: 135 ms).
   */
  tiledMinGroups = 256;
  /**
   * Q4_K's matvec reader (quant/q4_k.ts): a word of each 32-byte group a thread, 2 sub-blocks a thread, or those in
   * 16-byte loads. vec4: on an H100 (session 15, a3b decode) 0.969x the word reader's wall time, 0.985x its GPU time.
   */
  q4kReader: keyof typeof Q4_K_READERS = "vec4";
  /**
   * How uploads copy bytes into mapped staging (a record of an expert is MBs): a CPU backend's copyBytes where the
   * engine has one (native: its thread pool), else one thread's set().
   */
  set hostCopy(copy: ((dst: Uint8Array, src: Uint8Array) => void) | undefined) {
    this.uploads.copy = copy ?? ((dst, src) => dst.set(src));
  }
  /** Mapped staging of backends made from now on (tests shrink it so uploads also take the writeBuffer fallback). */
  static staging = { bufferBytes: 32 << 20, buffers: 8 };
  /** Benches: knob values every backend made from now on starts with (bench gpu --tune=JSON). */
  static tuning: Partial<Pick<WebGpuBackend, "fuseRouting" | "fuseDownSum" | "matvecRows" | "matvecLanes" | "q4kReader" | "intDot" | "fuseQuantX" | "mapDelay" | "tileRows" | "tiledMinGroups" | "flushEvery" | "fuseAttention" | "submitBeforeLater" | "padIters">> = {};

  constructor(gpu: GpuDevice, opts: { subgroups?: boolean } = {}) {
    // The recorder before the tuning: flushEvery, one of its knobs, is set through it.
    this.uploads = new MappedStaging(gpu.device, WebGpuBackend.staging.bufferBytes, WebGpuBackend.staging.buffers);
    this.rec = new Recorder(gpu.device, this.uploads, gpu.timestamps, (why) => {
      this.error ??= why;
    });
    this.pads = new GpuPad(gpu.device, this.rec);
    Object.assign(this, WebGpuBackend.tuning);
    this.gpu = gpu;
    this.subgroups = gpu.subgroups && opts.subgroups !== false;
    this.device = gpu.device;
    this.attn = new GpuAttention(this);
    this.readbacks = new Readbacks(gpu.device, this.rec);
    this.mm = new GpuMatmul(this, gpu.int8Dot);
    this.maxBinding = gpu.maxBinding;
    this.adapterName = gpu.adapterName;
    this.device.addEventListener("uncapturederror", (e) => {
      this.error ??= (e as GPUUncapturedErrorEvent).error.message;
    });
    void this.device.lost.then((info) => {
      this.error ??= `device lost (${info.reason}): ${info.message}`;
    });
  }

  supports(op: OpName, type?: number): boolean {
    if (!OPS.has(op)) return false;
    if (type === undefined) return true;
    if (op === "matmul" || op === "embed" || op === "moe_ffn" || op === "matmul_heads") return GPU_QUANTS.has(type);
    if (op === "rmsnorm" || op === "add_rows") return type === F32;
    if (op === "attention") return type === F32; // sinks (gpt-oss), a weight of one logit per head
    if (op === "conv_silu" || op === "delta_gates" || op === "rmsnorm_gated") return type === F32;
    return false;
  }

  // ---- memory

  upload(w: HostWeight): Weight {
    const a = new GpuArena(this, tensorBytes(w));
    a.write(0, w.bytes.subarray(0, tensorBytes(w)));
    return a.view(w, 0); // the arena lives as long as its weight's buffer: the backend's lifetime
  }
  allocWeights(bytes: number): WeightArena {
    return new GpuArena(this, bytes);
  }
  alloc(length: number): Buf {
    const size = Math.max(16, Math.ceil((length * 4) / 4) * 4);
    return new GpuBuf(this.device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST }), length);
  }
  write(dst: Buf, src: Float32Array, dstOffset = 0): void {
    const b = gbuf(dst);
    if (dstOffset < 0 || dstOffset + src.length > b.length) throw new RangeError(`webgpu write: ${src.length} values at ${dstOffset} overrun a buffer of ${b.length}`);
    if (src.length === 0) return;
    if (src.byteLength <= WRITE_STAGED_BYTES) {
      // Through this submission's staging bytes, as a recorded copy: ordered with the ops around it, so nothing is
      // submitted early (a split tier writes its host experts' sum every layer; a submit cost ~0.3 ms on the H100 host).
      const at = this.rec.hostData(src) * 4;
      this.rec.copyBytes(this.rec.stageBuf, at, b.buffer, dstOffset * 4, src.byteLength);
      return;
    }
    this.rec.flushForQueueWrite();
    this.rec.wrote(b.buffer);
    this.device.queue.writeBuffer(b.buffer, dstOffset * 4, src);
  }
  /**
   * out's first n values += `values` once they come, in one dispatch that reads them where they land in the staging
   * bytes, ordered with the ops recorded around this call; what is recorded after it waits (sealed, not submitted)
   * until then, so the host can compute them while this thread records on. Values that never come (a rejection, or
   * not n of them) add nothing: the work still runs, and the next read throws that error. Settles (never rejects)
   * once they are in or known never to come.
   */
  addLater(out: Buf, n: number, values: Promise<Float32Array>): Promise<void> {
    const o = gbuf(out);
    if (n < 0 || n > o.length) throw new RangeError(`webgpu addLater: ${n} values overrun a buffer of ${o.length}`);
    if (n === 0) return values.then(() => undefined, () => undefined);
    if (this.submitBeforeLater) {
      if (this.padIters > 0) this.pads.record(false);
      this.rec.flush();
    }
    const at = this.rec.hostData(new Float32Array(n));
    this.rec.dispatch("add_staged", () => ADD_STAGED_WGSL, [n, at], [this.rec.stageBuf, o.buffer], Math.ceil(n / 64));
    return this.rec.holdForBytes(values.then((v) => {
      if (v.length !== n) throw new RangeError(`webgpu addLater: ${v.length} values came for ${n}`);
      return v;
    }), at * 4);
  }
  /** Pads of about `us` µs in the split tier's idle windows (pad.ts); 0: none. */
  keepBusy(us: number): Promise<void> {
    return this.pads.calibrate(us);
  }
  dropLateError(): void {
    this.rec.takeHoldError();
  }
  async read(src: Buf): Promise<Float32Array> {
    return (await this.readMany([src]))[0];
  }
  async readMany(srcs: readonly Buf[], idle?: () => void): Promise<Float32Array[]> {
    try {
      return await this.readbacks.read(srcs.map(gbuf), this.mapDelay, idle, this.padIters > 0 ? () => this.pads.record(true) : undefined);
    } finally {
      this.throwIfFailed();
    }
  }
  free(buf: Buf): void {
    this.rec.release(gbuf(buf).buffer);
  }
  close(): void {
    this.rec.flush();
    this.readbacks.destroy();
    this.uploads.destroy();
    for (const b of this.scratch.values()) b.buffer.destroy();
    this.device.destroy();
  }

  private throwIfFailed(): void {
    if (this.error !== undefined) throw new Error(`webgpu backend (${this.adapterName}): ${this.error}`);
  }

  // ---- recording (recorder.ts): the surface benches, tests and ArenaHost use

  /** Work recorded so far: dispatches, submits and host reads (readMany calls); benches and tests count per token. */
  get counters(): Recorder["counters"] {
    return this.rec.counters;
  }
  /** Benches: count the host's ms recording dispatches and submitting them (counters.recordMs, submitMs). */
  get timeHost(): boolean {
    return this.rec.timeHost;
  }
  set timeHost(on: boolean) {
    this.rec.timeHost = on;
  }
  /** Submits what was recorded (with its staging bytes); returns at once. */
  flush(): void {
    this.rec.flush();
  }
  /** Submits what was recorded before a queue.writeBuffer into a buffer recorded work may use (refused while work waits for embedLater's ids). */
  flushForQueueWrite(): void {
    this.rec.flushForQueueWrite();
  }
  /** Benches: times every dispatch recorded from now until profileEnd (needs the timestamp-query feature). */
  profileBegin(): void {
    this.rec.profileBegin();
  }
  /** GPU time by pipeline key (dispatch count, total µs) since profileBegin. */
  profileEnd(): Promise<KernelTimes> {
    return this.rec.profileEnd();
  }
  /** Destroy once the work recorded so far has been submitted. */
  release(b: GPUBuffer): void {
    this.rec.release(b);
  }
  /** `bytes` (whole words) in mapped staging for a copy the caller records; undefined when none is free (then queue.writeBuffer). */
  stageUpload(bytes: Uint8Array): { buffer: GPUBuffer; offset: number } | undefined {
    return this.rec.stageUpload(bytes);
  }
  /** Staging buffers' size: a larger upload goes in pieces. */
  get stagePieceBytes(): number {
    return this.rec.stagePieceBytes;
  }
  copyBytes(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.rec.copyBytes(src, srcOffset, dst, dstOffset, bytes);
  }
  /** The in-place variant when out is the aliasing input itself. */
  private aliased(key: string, src: () => string, out: GpuBuf, input: GpuBuf, name: string): { key: string; code: () => string; binds: (b: GPUBuffer[]) => GPUBuffer[] } {
    if (out !== input) return { key, code: src, binds: (b) => b };
    return { key: `${key}/inplace`, code: () => inPlace(src(), name), binds: (b) => b.filter((x, i) => !(x === input.buffer && i !== b.length - 1)) };
  }

  // ---- ops

  embed(out: Buf, table: Weight, ids: Int32Array): void {
    this.embedAt(out, table, rowRuns(table, "embed"), ids);
  }
  /**
   * embed() over the table's runs of rows (rowRuns), returning where the ids sit in the staging bytes. A table larger
   * than a binding: a dispatch per run, each writing the tokens whose rows it holds.
   */
  private embedAt(out: Buf, table: Weight, parts: ReturnType<typeof rowRuns>, ids: Int32Array): number {
    const { k, n } = weightDims(table);
    for (const id of ids) if (id < 0 || id >= n) throw new RangeError(`token id ${id} out of range [0, ${n})`);
    if (k % 32 !== 0) throw new RangeError(`webgpu embed: '${table.name}' rows of ${k} values are not whole units of 32`);
    const o = gbuf(out);
    if (o.length < ids.length * k) throw new RangeError(`webgpu embed: out holds ${o.length} values, needs ${ids.length * k}`);
    const hd = this.rec.hostData(ids);
    for (const { w, row0 } of parts) this.rec.dispatch(`embed/${w.type}`, () => embedWgsl(w.quant.wgsl), [w.wordOffset, k, weightDims(w).n, ids.length, hd, row0], [w.buffer, this.rec.stageBuf, o.buffer], Math.ceil((ids.length * (k / 32)) / 64));
    return hd * 4;
  }

  get waitingForIds(): boolean {
    return this.rec.waitingForIds;
  }
  embedLater(out: Buf, table: Weight, nTokens: number, ids: Promise<Int32Array>): void {
    if (this.rec.waitingForIds) throw new Error("webgpu embedLater: the ids of an earlier embedLater are not in yet");
    const parts = rowRuns(table, "embedLater");
    this.rec.flush(); // what came before runs now; what follows waits for the ids
    const at = this.embedAt(out, table, parts, new Int32Array(nTokens)); // id 0 in the staging words until the ids come
    this.rec.holdForIds(ids, at, nTokens, table);
  }

  /** The matmuls (matvec, tiled, sets, per head): matmul-ops.ts. */
  matmul(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    this.mm.matmul(out, w, x, nTokens);
  }
  matmulSet(outs: readonly Buf[], ws: readonly Weight[], x: Buf, nTokens: number): void {
    this.mm.matmulSet(outs, ws, x, nTokens);
  }
  matmulHeads(out: Buf, w: Weight, x: Buf, nTokens: number): void {
    this.mm.matmulHeads(out, w, x, nTokens);
  }

  addRmsNorm(x: Buf, y: Buf, h: Buf, w: Weight, eps: number, rowLen: number, nRows: number): void {
    const g = gw(w, "addRmsNorm");
    if (g.type !== F32) throw new RangeError(`webgpu addRmsNorm: weight '${g.name}' must be F32`);
    const xs = gbuf(x), ys = gbuf(y), hs = gbuf(h);
    if (xs === hs || ys === hs || xs === ys) throw new RangeError("webgpu addRmsNorm: x, y and h must be three buffers");
    if ([xs, ys, hs].some((b) => b.length < rowLen * nRows)) throw new RangeError(`webgpu addRmsNorm: ${nRows} rows of ${rowLen} overrun its buffers`);
    const params = [rowLen, nRows, g.wordOffset, f(eps)], binds = [g.buffer, ys.buffer, xs.buffer, hs.buffer];
    const { threads, per } = normShape(rowLen);
    if (this.quantNorms && nRows === 1 && rowLen % 32 === 0) {
      // h quantised too, for the intDot matvecs that read it next (q/k/v, the experts' gate and up): a dispatch
      // of quant_x fewer for each.
      const q = this.scratchBuf("xq-norm", quantXWords(rowLen)).buffer;
      this.rec.dispatch(`add_rmsnorm/${threads}/${per}/q`, () => normWgsl("add", threads, per, true), params, [...binds, q], nRows);
      this.rec.quantised = { src: hs.buffer, q, k: rowLen };
      return;
    }
    this.rec.dispatch(`add_rmsnorm/${threads}/${per}`, () => normWgsl("add", threads, per), params, binds, nRows);
  }
  /** Decode norms also quantise their output for intDot's matvecs (xFor takes it); off: quant_x per matvec (tests compare). */
  fuseQuantX = true;
  /**
   * A read back sleeps on a timer for this share of what the last reads of its size waited (an average) before it
   * maps, instead of Dawn spinning for all of it. 0: off. Unmeasured on a GPU: benches compare.
   */
  mapDelay = 0;
  private get quantNorms(): boolean {
    return this.fuseQuantX && this.intDot && this.gpu.int8Dot;
  }

  rmsNorm(out: Buf, x: Buf, w: Weight, eps: number, rowLen: number, nRows: number): void {
    const g = gw(w, "rmsNorm");
    if (g.type !== F32) throw new RangeError(`webgpu rmsNorm: weight '${g.name}' must be F32`);
    const o = gbuf(out), xs = gbuf(x);
    const { threads, per } = normShape(rowLen);
    const v = this.aliased(`rmsnorm/${threads}/${per}`, () => normWgsl("rms", threads, per), o, xs, "xin");
    this.rec.dispatch(v.key, v.code, [rowLen, nRows, g.wordOffset, f(eps)], v.binds([g.buffer, xs.buffer, o.buffer]), nRows);
  }

  /** Rope, the KV store and attention: attention-ops.ts. */
  rope(x: Buf, pos: Int32Array, nHead: number, headDim: number, freqBase: number, nRot = headDim, opts?: RopeOptions): void {
    this.attn.rope(x, pos, nHead, headDim, freqBase, nRot, opts);
  }
  normRopeStore(q: Buf, k: Buf, v: Buf, p: NormRopeStoreParams): void {
    this.attn.normRopeStore(q, k, v, p);
  }
  normRopeAttention(out: Buf, q: Buf, k: Buf, v: Buf, p: NormRopeStoreParams & { readonly scale: number }): boolean {
    return this.attn.normRopeAttention(out, q, k, v, p);
  }
  kvStore(kCache: Buf, vCache: Buf, k: Buf, v: Buf, startPos: number, nTokens: number, kvDim: number): void {
    this.attn.kvStore(kCache, vCache, k, v, startPos, nTokens, kvDim);
  }
  attention(out: Buf, q: Buf, kCache: Buf, vCache: Buf, p: AttentionParams): void {
    this.attn.attention(out, q, kCache, vCache, p);
  }

  copy(out: Buf, x: Buf, p: CopyParams): void {
    this.copyRows(gbuf(out), x, p);
  }
  /** @internal */
  copyRows(out: GpuBuf, x: Buf, p: CopyParams): void {
    const xs = gbuf(x);
    const { rows, n, src, dst } = p;
    if (rows > 0 && (src.offset + (rows - 1) * src.stride + n > xs.length || dst.offset + (rows - 1) * dst.stride + n > out.length))
      throw new RangeError(`copy: ${rows} rows of ${n} (src stride ${src.stride} from ${src.offset}, dst stride ${dst.stride} from ${dst.offset}) overrun ${xs.length} -> ${out.length} values`);
    this.rec.dispatch("copy", () => COPY_WGSL, [rows, n, src.offset, src.stride, dst.offset, dst.stride, p.roundF16 ? 1 : 0], [xs.buffer, out.buffer], Math.ceil((rows * n) / 64));
  }

  add(out: Buf, a: Buf, b: Buf, n: number): void {
    this.binary("add", "a + c", out, a, b, n);
  }
  swiglu(out: Buf, gate: Buf, up: Buf, n: number): void {
    this.binary("swiglu", "a / (1.0 + exp(-a)) * c", out, gate, up, n);
  }
  swigluOai(out: Buf, gate: Buf, up: Buf, n: number, alpha: number, limit: number): void {
    const lit = (v: number) => (Number.isInteger(v) ? v.toFixed(1) : String(v));
    const [A, L] = [lit(alpha), lit(limit)];
    this.binary(`swiglu_oai/${A}/${L}`, `min(a, ${L}) / (1.0 + exp(-${A} * min(a, ${L}))) * (clamp(c, -${L}, ${L}) + 1.0)`, out, gate, up, n);
  }
  sigmoidMul(out: Buf, x: Buf, gate: Buf, n: number): void {
    this.binary("sigmoid_mul", "a / (1.0 + exp(-c))", out, x, gate, n);
  }
  private binary(name: string, expr: string, out: Buf, a: Buf, b: Buf, n: number): void {
    const o = gbuf(out), as = gbuf(a), bs = gbuf(b);
    if (as.length < n || bs.length < n || o.length < n) throw new RangeError(`webgpu ${name}: ${n} values overrun its buffers`);
    if (bs === o) throw new RangeError(`webgpu ${name}: out may alias only the first operand`);
    const v = this.aliased(name, () => binaryWgsl(expr), o, as, "ain");
    this.rec.dispatch(v.key, v.code, [n], v.binds([as.buffer, bs.buffer, o.buffer]), Math.ceil(n / 64));
  }

  gatherRows(out: Buf, x: Buf, rows: Int32Array, rowLen: number): void {
    if (rows.length === 0) return;
    const hd = this.rec.hostData(rows);
    this.rec.dispatch("gather", () => GATHER_WGSL, [rowLen, rows.length, hd], [this.rec.stageBuf, gbuf(x).buffer, gbuf(out).buffer], Math.ceil((rows.length * rowLen) / 64));
  }
  scatterAddRows(out: Buf, x: Buf, rows: Int32Array, scales: Float32Array, rowLen: number): void {
    if (rows.length === 0) return;
    // Pairs by output row, each row's in list order (a stable sort): the kernel's CSR.
    const P = rows.length;
    const order = Int32Array.from(rows.keys()).sort((a, b) => rows[a] - rows[b] || a - b);
    // One block of host data, words: the output rows [nu], their starts [nu + 1], the pair order [P], the scales [P].
    const words = new Int32Array(4 * P + 1), starts = new Int32Array(P + 1);
    let nu = 0;
    for (let q = 0; q < P; q++) if (q === 0 || rows[order[q]] !== rows[order[q - 1]]) (starts[nu] = q), (words[nu++] = rows[order[q]]);
    starts[nu] = P;
    words.set(starts.subarray(0, nu + 1), nu);
    words.set(order, 2 * nu + 1);
    words.set(new Int32Array(scales.buffer, scales.byteOffset, P), 2 * nu + 1 + P);
    const h = this.rec.hostData(words.subarray(0, 2 * nu + 1 + 2 * P));
    this.rec.dispatch("scatter_add", () => SCATTER_ADD_WGSL, [rowLen, nu, h, h + nu, h + 2 * nu + 1, h + 2 * nu + 1 + P], [this.rec.stageBuf, gbuf(x).buffer, gbuf(out).buffer], Math.ceil(rowLen / 64) * nu);
  }
  addRows(out: Buf, bias: Weight, rowLen: number, nRows: number): void {
    const g = gw(bias, "addRows");
    const nb = g.shape.reduce((a, v) => a * v, 1);
    if (nb !== rowLen || g.type !== F32) throw new RangeError(`addRows: bias '${g.name}' must be F32 of ${rowLen} values`);
    this.rec.dispatch("add_rows", () => ADD_ROWS_WGSL, [rowLen, nRows, g.wordOffset], [g.buffer, gbuf(out).buffer], Math.ceil((rowLen * nRows) / 64));
  }
  zero(out: Buf): void {
    const o = gbuf(out);
    this.rec.clearBuffer(o.buffer);
  }

  /** The MoE ops: moe.ts. */
  moeFfn(out: Buf, x: Buf, experts: readonly ExpertRows[]): void {
    this.moe.moeFfn(out, x, experts);
  }
  routeOnDevice(logits: Buf, nTokens: number, spec: RouteSpec, resident?: readonly ExpertParts[]): DeviceRoute {
    return this.moe.routeOnDevice(logits, nTokens, spec, resident);
  }
  moeRouted(out: Buf, x: Buf, route: DeviceRoute): void {
    this.moe.moeRouted(out, x, route);
  }
  /** @internal Scratch of the backend's kernels by name, grown to at least `length` values and kept (never shrunk). */
  scratchBuf(name: string, length: number): GpuBuf {
    const have = this.scratch.get(name);
    if (have && have.length >= length) return have;
    if (have) this.rec.release(have.buffer);
    const b = this.alloc(Math.max(length, 2 * (have?.length ?? 0))) as GpuBuf;
    this.scratch.set(name, b);
    return b;
  }

  // ---- the in-place repack the weight arenas ask for

  repack(w: GPUBuffer, wordOffset: number, raw: GPUBuffer, nBlocks: number, r: NonNullable<GpuQuant["repack"]>): void {
    const sb = r.scaleBytes ?? 2;
    this.rec.dispatch("repack", () => REPACK_WGSL, [wordOffset, nBlocks, r.rawBytes, r.bodyAt, r.bodyBytes / 4, r.scaleAt, sb], [w, raw], Math.ceil(nBlocks / (4 / sb) / 64));
  }

  // ---- linear attention (the gated DeltaNet): linear-attention-ops.ts

  convSilu(out: Buf, x: Buf, state: Buf, w: Weight, nTokens: number, channels: number): void {
    this.linear.convSilu(out, x, state, w, nTokens, channels);
  }
  l2Norm(out: Buf, x: Buf, eps: number, rowLen: number, nRows: number): void {
    this.linear.l2Norm(out, x, eps, rowLen, nRows);
  }
  rmsNormGated(out: Buf, x: Buf, w: Weight, gate: Buf, eps: number, rowLen: number, nRows: number): void {
    this.linear.rmsNormGated(out, x, w, gate, eps, rowLen, nRows);
  }
  deltaGates(g: Buf, beta: Buf, alpha: Buf, betaRaw: Buf, dtBias: Weight, a: Weight, nHead: number, nRows: number): void {
    this.linear.deltaGates(g, beta, alpha, betaRaw, dtBias, a, nHead, nRows);
  }
  gatedDeltaNet(out: Buf, q: Buf, k: Buf, v: Buf, g: Buf, beta: Buf, state: Buf, stateOut: Buf, p: DeltaNetParams): void {
    this.linear.gatedDeltaNet(out, q, k, v, g, beta, state, stateOut, p);
  }
}
