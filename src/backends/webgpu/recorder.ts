/// <reference types="@webgpu/types" />
// The WebGPU backend's recording machinery (the ops are in webgpu.ts): one command encoder and one open compute
// pass, a bind group per (pipeline, buffers) reused across dispatches, and every dispatch's parameters and the host
// arrays ops take in a staging buffer written once per submission. A submission is recorded until the host needs a
// result or new bytes must land in order; a submission that host bytes still to come go into (embedLater's token
// ids, addLater's values) is sealed and held with those after it, then submitted in order once they are in.
// Benches time passes and dispatches through here too.
import { weightDims } from "../backend.js";
import type { Weight } from "../backend.js";
import { DispatchProfiler, type KernelTimes } from "./profiler.js";
import type { MappedStaging } from "./staging.js";

const COPY_SRC = 0x04, COPY_DST = 0x08, UNIFORM = 0x40, STORAGE = 0x80;
const COMPUTE = 0x4; // GPUShaderStage.COMPUTE
/** Staging bytes per submission to start with (parameters take 256 bytes per dispatch). */
const STAGE_BYTES = 1 << 20;
/** Cached bind groups before the cache starts over. */
const MAX_BIND_GROUPS = 16384;

/** A recorded submission: its command buffer, staging bytes and the staging buffers that read them, uploads staged for it, buffers to destroy after it. */
interface Sealed {
  cb: GPUCommandBuffer;
  bytes: Uint8Array;
  stages: GPUBuffer[];
  staged: GPUBuffer[];
  dead: GPUBuffer[];
}

/** Compiled pipelines by device, shared by the backends on it (a software GPU takes seconds of CPU per kernel). */
const PIPELINES = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();
const LAYOUTS = new WeakMap<GPUComputePipeline, GPUBindGroupLayout>();
/** Each pipeline's writable storage bindings, as indices into dispatch()'s `binds`. */
const WRITES = new WeakMap<GPUComputePipeline, number[]>();

export class Recorder {
  private readonly pipelines: Map<string, GPUComputePipeline>;
  private readonly layouts = LAYOUTS;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 0;
  private enc: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private stage = new Uint8Array(STAGE_BYTES);
  /** The staging bytes as words (dispatch parameters), and a dispatch's dynamic offset, kept to allocate nothing per dispatch. */
  private stageWords = new Uint32Array(this.stage.buffer);
  private readonly offset = new Uint32Array(1);
  /**
   * @internal The staging buffer of this submission: every dispatch's parameters and the host data of hostData().
   * Read it after the op's hostData() calls: they may grow it (a new buffer).
   */
  stageBuf: GPUBuffer;
  /** Staging buffers this submission outgrew (reserve): written with their share of the bytes at its submit, then destroyed. */
  private outgrown: GPUBuffer[] = [];
  private used = 0;
  private dead: GPUBuffer[] = [];
  /**
   * Sealed submissions not yet submitted, in order: each waits while a host fill (holdForIds, holdForBytes) into it
   * or into one before it is still to come. `sealed` counts submissions sealed so far, so held[0] is number
   * sealed - held.length and the one being recorded is number `sealed`. Fills pending, each with its submission's
   * number; reads waiting for a submission's number to go out.
   */
  private held: Sealed[] = [];
  private sealed = 0;
  private fills: { chunk: number; ids: boolean }[] = [];
  private waiters: { chunk: number; go: () => void }[] = [];
  /** The first error of a holdForBytes whose bytes never came: the next read throws it. */
  private holdError: unknown;
  /** Compute passes so far (timestampedPass: its work in one pass, with counters.submits unchanged). */
  private passes = 0;
  /** Work recorded so far: dispatches, submits and host reads (readMany calls); benches and tests count per token. */
  readonly counters = { dispatches: 0, submits: 0, reads: 0, recordMs: 0, submitMs: 0, stageWriteMs: 0, finishMs: 0, heldWaitMs: 0, mapWaitMs: 0, bindGroups: 0 };
  /** Timestamp writes for the next pass begun (timestampedPass). */
  private nextTimestamps: GPUComputePassTimestampWrites | undefined;
  /**
   * Benches: count the host's ms recording dispatches and submitting them (counters.recordMs, submitMs; of the
   * latter, stageWriteMs writing the staging bytes), finishing encoders (finishMs), and the ms reads wait for their
   * work's host values (heldWaitMs) and then for the GPU (mapWaitMs, the backend's).
   */
  timeHost = false;
  /** Dispatches recorded since the last submit, and whether a timed pass is being recorded. */
  private sinceFlush = 0;
  private timing = false;
  /** Benches: while on, each dispatch is its own pass between two timestamps, summed by pipeline key. */
  private prof: DispatchProfiler | undefined;
  /**
   * Dispatches recorded before a submit, so the GPU starts while the host records the rest (see dispatch()). 32: on
   * an H100 (session 15, a3b decode wall against 64 in alternating rounds, three runs) 0.92-0.99x; 128 and more
   * 1.07-1.46x.
   */
  flushEvery = 32;

  /**
   * `uploads`: the backend's mapped staging, unmapped into each submission. `timestamps`: the device has the
   * timestamp-query feature (profileBegin). `fail`: the backend's failure, where held work can never run.
   */
  constructor(readonly device: GPUDevice, private readonly uploads: MappedStaging, private readonly timestamps: boolean, private readonly fail: (why: string) => void) {
    this.pipelines = PIPELINES.get(this.device) ?? new Map();
    PIPELINES.set(this.device, this.pipelines);
    this.stageBuf = this.newStage(STAGE_BYTES);
  }

  /** Submits what was recorded (with its staging bytes); returns at once. */
  flush(): void {
    if (!this.enc) return;
    this.pass?.end();
    this.pass = undefined;
    const t0 = this.timeHost ? performance.now() : 0;
    const cb = this.enc.finish();
    if (this.timeHost) this.counters.finishMs += performance.now() - t0;
    const chunk = { cb, bytes: this.stage.slice(0, this.used), stages: [...this.outgrown, this.stageBuf], staged: this.uploads.beforeSubmit(), dead: [...this.dead, ...this.outgrown] };
    this.enc = undefined;
    this.used = 0;
    this.sinceFlush = 0;
    this.dead = [];
    this.outgrown = [];
    this.sealed++;
    // Submitted now unless a host fill into it or into one before it is still to come (releaseHeld() submits it then).
    if (this.holding) {
      this.held.push(chunk);
      this.releaseHeld();
    } else this.submit(chunk);
  }
  /**
   * Seals what was recorded (flush); a promise that settles once it and everything before it is submitted, or
   * undefined where that happened now.
   */
  seal(): Promise<void> | undefined {
    this.flush();
    if (!this.held.length) return undefined;
    return new Promise((go) => this.waiters.push({ chunk: this.sealed - 1, go }));
  }
  /** One recorded submission: its staging bytes into every staging buffer it reads, the command buffer, then its cleanup. */
  private submit(c: Sealed): void {
    const t0 = this.timeHost ? performance.now() : 0;
    for (const b of c.stages) if (c.bytes.length) this.device.queue.writeBuffer(b, 0, c.bytes, 0, Math.min(c.bytes.length, b.size));
    if (this.timeHost) this.counters.stageWriteMs += performance.now() - t0;
    this.device.queue.submit([c.cb]);
    this.uploads.afterSubmit(c.staged);
    if (this.timeHost) this.counters.submitMs += performance.now() - t0;
    this.counters.submits++;
    for (const b of c.dead) b.destroy(); // after the submit: Dawn keeps them until that work is done
  }
  /**
   * Submits what was recorded before a queue.writeBuffer into a buffer recorded work may use (the write lands at
   * once, in queue order); not while work waits for embedLater's ids, which would then run after the write.
   */
  flushForQueueWrite(): void {
    if (this.holding) throw new Error("webgpu backend (internal): a queue write while recorded work waits for host values (embedLater's ids or addLater's values)");
    this.flush();
  }

  /** Recorded work is held for host values (embedLater's ids, addLater's values): a queue write now would overtake it. */
  get holding(): boolean {
    return this.held.length > 0 || this.fills.length > 0;
  }
  /** Work recorded since an embedLater waits for its token ids. */
  get waitingForIds(): boolean {
    return this.fills.some((f) => f.ids);
  }
  /** A holdForBytes's error (its bytes never came), once: reads throw it. */
  takeHoldError(): unknown {
    const e = this.holdError;
    this.holdError = undefined;
    return e;
  }
  /**
   * embedLater's part here: everything recorded from now on is sealed and held until `ids` (`n` rows of `table`)
   * come, then written at byte `at` of the first held submission's staging bytes (the current one's, recorded just
   * before). Ids that never come, or are not valid, fail the backend and the held work never runs.
   */
  holdForIds(ids: Promise<Int32Array>, at: number, n: number, table: Weight): void {
    const { n: vocab } = weightDims(table);
    const fail = (why: string) => {
      this.fail(`embedLater: ${why}`);
      this.dropHeld();
    };
    const fill = this.hold(at, true);
    ids.then(
      (v) => {
        if (!fill.pending()) return; // dropped meanwhile (the backend failed)
        try {
          if (v.length !== n || v.some((id) => id < 0 || id >= vocab)) throw new RangeError(`ids [${[...v.subarray(0, 8)].join(", ")}${v.length > 8 ? ", ..." : ""}] are not ${n} ids in [0, ${vocab})`);
          fill.put(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
        } catch (e) {
          fail(e instanceof Error ? e.message : String(e));
        }
      },
      (e: unknown) => fail(`the token ids never came (${e instanceof Error ? e.message : String(e)})`),
    );
  }
  /**
   * addLater's part here: `bytes` go at staging byte `at` of the submission being recorded once they come;
   * everything recorded until then is sealed and held. Bytes that never come leave the zeros already there: the
   * held work still runs (uploads recorded in it must land), and the next read throws the error. Settles (never
   * rejects) once the bytes are in, or their error is kept.
   */
  holdForBytes(bytes: Promise<ArrayBufferView>, at: number): Promise<void> {
    const fill = this.hold(at, false);
    return bytes.then(
      (v) => fill.put(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)),
      (e: unknown) => {
        this.holdError ??= e;
        fill.put(undefined);
      },
    );
  }
  /**
   * One more pending fill at staging byte `at` of the submission being recorded: `put` takes its bytes (undefined:
   * none), `pending` says it still waits for them. That submission and those after it wait for it; those before
   * it do not (a read of earlier work must not wait for ids that only its result can give: record-ahead).
   */
  private hold(at: number, ids: boolean): { put: (bytes: Uint8Array | undefined) => void; pending: () => boolean } {
    const fill = { chunk: this.sealed, ids };
    this.fills.push(fill);
    const pending = () => this.fills.includes(fill);
    const put = (bytes: Uint8Array | undefined) => {
      const i = this.fills.indexOf(fill);
      if (i < 0) return; // once; not after the held work was dropped (the backend failed)
      this.fills.splice(i, 1);
      // Into the staging bytes of the submission that reads them: sealed (and held) by now, or being recorded.
      if (bytes) (fill.chunk < this.sealed ? this.held[fill.chunk - (this.sealed - this.held.length)].bytes : this.stage).set(bytes, at);
      this.releaseHeld();
    };
    return { put, pending };
  }

  /**
   * Submits the held submissions that no pending fill waits for, in order, and settles the reads waiting on them.
   * What is being recorded goes with the next flush: a flush here too would cost a split tier a second submit a
   * layer whenever the host's values came before the layer's read.
   */
  private releaseHeld(): void {
    const first = this.fills.reduce((m, f) => Math.min(m, f.chunk), Infinity);
    while (this.held.length && this.sealed - this.held.length < first) this.submit(this.held.shift()!);
    this.settleWaiters();
  }
  private settleWaiters(): void {
    const out = this.sealed - this.held.length; // numbers below this are submitted
    this.waiters = this.waiters.filter((w) => (w.chunk < out ? (w.go(), false) : true));
  }

  /** The work recorded since an embedLater whose ids cannot go in: never run (the backend has failed: reads throw). */
  private dropHeld(): void {
    for (const c of this.held) {
      this.uploads.afterSubmit(c.staged);
      for (const b of c.dead) b.destroy();
    }
    this.held = [];
    this.fills = [];
    this.settleWaiters();
    this.pass = undefined;
    this.enc = undefined;
    this.used = 0;
    this.sinceFlush = 0;
  }

  /**
   * Benches: records `record` as one compute pass whose start and end times go to `qs` (queries 0 and 1), resolved
   * into `dst` (not submitted). False when the work took more than one pass or submission (the times then miss some).
   */
  timestampedPass(qs: GPUQuerySet, dst: GPUBuffer, record: () => void): boolean {
    this.endPass();
    this.nextTimestamps = { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 };
    const [passes, submits] = [this.passes, this.counters.submits];
    this.timing = true;
    try {
      record();
    } finally {
      this.timing = false;
    }
    this.nextTimestamps = undefined;
    const one = this.passes === passes + 1 && this.counters.submits === submits;
    this.endPass();
    this.encoder().resolveQuerySet(qs, 0, 2, dst, 0);
    return one;
  }
  /** Benches: times every dispatch recorded from now until profileEnd (needs the timestamp-query feature). */
  profileBegin(): void {
    if (!this.timestamps) throw new Error("webgpu profile: the device has no timestamp-query feature");
    this.flush();
    this.prof = new DispatchProfiler(this);
  }
  /** GPU time by pipeline key (dispatch count, total µs) since profileBegin. */
  async profileEnd(): Promise<KernelTimes> {
    const p = this.prof;
    if (!p) throw new Error("webgpu profile: not begun");
    this.prof = undefined;
    return p.end();
  }
  /** The command encoder with no compute pass open (ProfilerHost). */
  passFreeEncoder(): GPUCommandEncoder {
    this.endPass();
    return this.encoder();
  }
  /** Benches: one dispatch of a pipeline of their own, recorded in order with the backend's ops. */
  rawDispatch(pipe: GPUComputePipeline, bg: GPUBindGroup, groups: number): void {
    const pass = this.computePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(groups);
  }
  /** The open compute pass, begun (with the timestamp writes asked for) if none is. */
  private computePass(): GPUComputePassEncoder {
    if (!this.pass) {
      this.pass = this.encoder().beginComputePass(this.nextTimestamps && { timestampWrites: this.nextTimestamps });
      this.nextTimestamps = undefined;
      this.passes++;
    }
    return this.pass;
  }
  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }
  /** Destroy once the work recorded so far has been submitted. */
  release(b: GPUBuffer): void {
    if (this.enc) this.dead.push(b);
    else b.destroy();
  }
  private encoder(): GPUCommandEncoder {
    return (this.enc ??= this.device.createCommandEncoder());
  }
  /** `bytes` (whole words) in mapped staging for a copy the caller records; undefined when none is free (then queue.writeBuffer). */
  stageUpload(bytes: Uint8Array): { buffer: GPUBuffer; offset: number } | undefined {
    return this.uploads.stage(bytes);
  }
  /** Staging buffers' size: a larger upload goes in pieces. */
  get stagePieceBytes(): number {
    return this.uploads.bufferBytes;
  }
  /**
   * A norm's output quantised to 8 bits in the same dispatch, for the intDot matvecs that read it next (xFor): valid
   * until anything recorded writes its source or the quantised words. Every write the backend records comes through
   * dispatch(), copyBytes(), clearBuffer() or wrote(), which drop it.
   */
  quantised: { src: GPUBuffer; q: GPUBuffer; k: number } | undefined;
  /** A write to `b` recorded outside dispatch() (a queue write): drops `quantised` if it is b's. */
  wrote(b: GPUBuffer): void {
    if (this.quantised && (b === this.quantised.src || b === this.quantised.q)) this.quantised = undefined;
  }
  copyBytes(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.wrote(dst);
    const enc = this.encoder();
    this.pass?.end();
    this.pass = undefined;
    enc.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }
  /** Zeroes `b`, recorded in order with the ops (outside the compute pass, as copyBytes). */
  clearBuffer(b: GPUBuffer): void {
    this.wrote(b);
    const enc = this.encoder();
    this.pass?.end();
    this.pass = undefined;
    enc.clearBuffer(b);
  }
  private newStage(bytes: number): GPUBuffer {
    return this.device.createBuffer({ size: bytes, usage: UNIFORM | STORAGE | COPY_SRC | COPY_DST });
  }
  /** Staging room for `bytes` at a 256-byte boundary; returns its byte offset (submits first when full). */
  private reserve(bytes: number): number {
    const need = Math.ceil(Math.max(bytes, 256) / 256) * 256;
    if (this.used + need > this.stage.byteLength) {
      // Grown, never submitted early: an op's host data and the dispatch reading it stay in one submission. The old
      // buffer is written too at the submit, for what was recorded against it.
      const size = Math.max(this.used + need, 2 * this.stage.byteLength);
      const stage = new Uint8Array(size);
      stage.set(this.stage.subarray(0, this.used));
      this.stage = stage;
      this.stageWords = new Uint32Array(stage.buffer);
      this.outgrown.push(this.stageBuf);
      this.stageBuf = this.newStage(size);
      this.bindGroups.clear(); // every bind group holds the old staging buffer
    }
    const at = this.used;
    this.used += need;
    return at;
  }
  /** @internal Host values for a kernel to read from the staging buffer (stageBuffer): their word offset there. */
  hostData(a: Int32Array | Float32Array | Uint32Array): number {
    const at = this.reserve(a.byteLength);
    this.stage.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    return at / 4;
  }
  private pipeline(key: string, code: () => string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const src = code();
      const entries = bindingLayout(src, key);
      const layout = this.device.createBindGroupLayout({ entries });
      p = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module: this.device.createShaderModule({ code: src, label: key }), entryPoint: "main" },
      });
      this.pipelines.set(key, p);
      this.layouts.set(p, layout);
      WRITES.set(p, entries.filter((e) => e.buffer?.type === "storage").map((e) => e.binding - 1));
    }
    return p;
  }
  /**
   * Records one dispatch of `groups` workgroups (spread over x and y), `z` deep; binding 0 holds `params`.
   * Bind groups are made once per (pipeline, buffers) and reused: the parameters sit behind a dynamic offset into
   * the staging buffer. Making a bind group per dispatch cost ~10x the rest of recording one (measured on Dawn),
   * and a decode step records thousands of dispatches.
   */
  /** @internal */
  dispatch(key: string, code: () => string, params: readonly number[], binds: readonly GPUBuffer[], groups: number, z = 1): void {
    if (groups === 0 || z === 0) return;
    const t0 = this.timeHost ? performance.now() : 0;
    const pipe = this.pipeline(key, code);
    if (this.quantised) for (const i of WRITES.get(pipe)!) this.wrote(binds[i]);
    const at = this.reserve(256);
    const words = this.stageWords, w0 = at >> 2;
    for (let i = 0; i < params.length; i++) words[w0 + i] = params[i];
    let bgKey = key;
    for (const b of binds) bgKey += `|${this.bufferId(b)}`;
    let bg = this.bindGroups.get(bgKey);
    if (!bg) {
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear(); // entries of destroyed buffers are never hit again
      this.counters.bindGroups++;
      bg = this.device.createBindGroup({
        layout: this.layouts.get(pipe)!,
        entries: [{ binding: 0, resource: { buffer: this.stageBuf, offset: 0, size: 256 } }, ...binds.map((buffer, i) => ({ binding: i + 1, resource: { buffer } }))],
      });
      this.bindGroups.set(bgKey, bg);
    }
    const p = this.prof;
    if (p) {
      this.endPass();
      this.nextTimestamps = p.next(key);
    }
    const pass = this.computePass();
    pass.setPipeline(pipe);
    this.offset[0] = at;
    pass.setBindGroup(0, bg, this.offset, 0, 1);
    const x = Math.min(groups, 65535);
    pass.dispatchWorkgroups(x, Math.ceil(groups / x), z);
    this.counters.dispatches++;
    if (this.timeHost) this.counters.recordMs += performance.now() - t0;
    if (p) {
      this.endPass();
      p.ended();
    }
    // Submit every so often, so the GPU runs the start of a long recording (a whole token when nothing is read
    // back) while the rest is recorded. Never inside a timed pass.
    if (++this.sinceFlush >= this.flushEvery && !this.timing) this.flush();
  }
  /** @internal */
  bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }
}

/**
 * The bind group layout a kernel declares: binding 0 is its parameter block (a uniform read at a dynamic offset into
 * the staging buffer), the others storage buffers, read-only or not as the WGSL says.
 */
function bindingLayout(wgsl: string, key: string): GPUBindGroupLayoutEntry[] {
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (const m of wgsl.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<(uniform|storage)(?:\s*,\s*(read_write|read))?>/g)) {
    const binding = Number(m[1]);
    const type: GPUBufferBindingType = m[2] === "uniform" ? "uniform" : m[3] === "read_write" ? "storage" : "read-only-storage";
    if ((binding === 0) !== (type === "uniform")) throw new Error(`webgpu kernel '${key}': binding ${binding} is ${type}; only binding 0 (the parameters) may be uniform`);
    entries.push({ binding, visibility: COMPUTE, buffer: binding === 0 ? { type, hasDynamicOffset: true } : { type } });
  }
  if (!entries.some((e) => e.binding === 0)) throw new Error(`webgpu kernel '${key}': no parameter block at binding 0`);
  return entries;
}
