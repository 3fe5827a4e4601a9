/// <reference types="@webgpu/types" />
// npm run bench -- gpu [--model=PATH] [--json=PATH] [--quick]   (built: node dist-bench/bench/main.js gpu ...)
// (a) WebGPU kernel table: a plain read kernel and a copy kernel give the memory-bandwidth ceiling of this run; then
// the backend's own matmul per weight type at Qwen3-30B-A3B shapes (the MoE op over 8 experts as a layer runs it,
// attention and output projections, and one prefill matmul), in GB/s of weight bytes and % of the read ceiling.
// Many iterations go into one pass; GPU time from timestamp queries where the adapter has them, else the wall time
// of submit to onSubmittedWorkDone. Weights rotate over copies bigger than any L2, and one result per type is
// checked against the scalar reference. (b) With --model: decode and prefill tok/s of that GGUF on --backend
// webgpu, after a sanity check that its greedy tokens equal the CPU backend's on a short prompt (and its logits
// agree). --quick: small shapes (lavapipe). Prints a table; --json writes every figure.
import { writeFileSync } from "node:fs";
import { openGpuDevice, setDawnFlags, type GpuDevice } from "../src/backends/webgpu/device.js";
import { WebGpuBackend } from "../src/backends/webgpu/webgpu.js";
import { matmulPlan } from "../src/backends/webgpu/matmul-ops.js";
import { matvecShape } from "../src/backends/webgpu/matvec.js";
import { gbuf } from "../src/backends/webgpu/buffers.js";
import { GPU_QUANTS } from "../src/backends/webgpu/quant/index.js";
import { ScalarBackend } from "../src/backends/cpu/scalar.js";
import type { Buf, ExpertRows, Weight, WeightArena } from "../src/backends/backend.js";
import { BF16, F16, IQ2_XXS, Q4_0, Q4_K, Q6_K, Q8_0, type QuantFormat } from "../src/quant/index.js";
import { directFill } from "../src/gen/direct.js";
import { Stream } from "../src/gen/random.js";
import { f32ToF16 } from "../src/util/f16.js";
import { loadModel, type LoadedModel } from "../src/engine/load.js";
import type { DeviceTierStats } from "../src/experts/device-tier.js";
import { defaultEngineConfig, type BackendName } from "../src/engine/config.js";
import { Session } from "../src/engine/session.js";
import { NativeBackend, nativeAvailable } from "../src/backends/cpu/native.js";
import { engineFigures, promptIds, type Figures } from "./engine-figures.js";
import { machineLine } from "./machine.js";
import { quantile } from "./timer-lag.js";

const QUERY_RESOLVE = 0x200, MAP_READ = 0x01, COPY_SRC = 0x04, COPY_DST = 0x08, STORAGE = 0x80;
// Q4_0 and IQ2_XXS: the legacy reader and a grid i-quant's (its grid a WGSL constant), untimed before session 21.
const TYPES = [F16, BF16, Q8_0, Q4_K, Q6_K, Q4_0, IQ2_XXS];
/** Bytes of distinct weights a row cycles through: well past an H100's 50 MB L2. */
const ROTATE_BYTES = 512 << 20;
/** Bytes of weights read per timed pass (more iterations for small kernels). */
const PASS_BYTES = 2 << 30;
const REPS = 5;
/** ms of untimed work before a timed pass, so the GPU's clock has risen (timeIt). */
const WARM_MS = 200;

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");

interface Timing {
  /** Per iteration, µs: from the pass's timestamps, and from submit to done. */
  gpuUs: number | undefined;
  wallUs: number;
  /** Per iteration, µs: the sum of its dispatches' times, each timed in a pass of its own. */
  ownPassUs?: number;
}

/** Best of REPS: `iters` iterations of `record` in one pass (backend ops) or raw commands on the device. */
async function timeIt(be: WebGpuBackend, gpu: GpuDevice, iters: number, record: (i: number) => void): Promise<Timing> {
  const dev = gpu.device;
  const qs = gpu.timestamps ? dev.createQuerySet({ type: "timestamp", count: 2 }) : undefined;
  const resolve = qs && dev.createBuffer({ size: 16, usage: QUERY_RESOLVE | COPY_SRC });
  const read = qs && dev.createBuffer({ size: 16, usage: MAP_READ | COPY_DST });
  record(0); // warm: pipelines compiled, weights repacked
  be.flush();
  await dev.queue.onSubmittedWorkDone();
  let gpuUs = Infinity, wallUs = Infinity, i = 1;
  // The GPU's clock falls while it idles (the weights' upload before a row idles it for seconds): on an H100 a row
  // timed straight after ran at 345-800 MHz of 1980 (nvidia-smi, session 15), so instruction-bound kernels read
  // 2-5x slow. Keep it busy WARM_MS before the first rep and WARM_MS / 4 before each, as a decode keeps it.
  const busy = async (ms: number) => {
    const t0 = performance.now();
    do {
      for (let j = 0; j < iters; j++) record(i++);
      be.flush();
      await dev.queue.onSubmittedWorkDone();
    } while (performance.now() - t0 < ms);
  };
  await busy(WARM_MS);
  for (let r = 0; r < REPS; r++) {
    if (r) await busy(WARM_MS / 4);
    const all = () => {
      for (let j = 0; j < iters; j++) record(i++);
    };
    let one = false;
    if (qs) one = be.rec.timestampedPass(qs, resolve!, all);
    else all();
    const t0 = performance.now();
    be.flush();
    await dev.queue.onSubmittedWorkDone();
    wallUs = Math.min(wallUs, ((performance.now() - t0) * 1000) / iters);
    if (qs && one) {
      const enc = dev.createCommandEncoder();
      enc.copyBufferToBuffer(resolve!, 0, read!, 0, 16);
      dev.queue.submit([enc.finish()]);
      await read!.mapAsync(1);
      const t = new BigUint64Array(read!.getMappedRange().slice(0));
      read!.unmap();
      if (t[1] > t[0]) gpuUs = Math.min(gpuUs, Number(t[1] - t[0]) / 1000 / iters);
    }
  }
  qs?.destroy();
  // The same work with each dispatch in a timed pass of its own (how the decode profile times a layer's kernels).
  let ownPassUs: number | undefined;
  if (gpu.timestamps) {
    await busy(WARM_MS / 4);
    be.profileBegin();
    for (let j = 0; j < Math.min(iters, 64); j++) record(i++);
    const totals = [...(await be.profileEnd()).values()];
    const n = totals.reduce((a, v) => a + v.count, 0);
    if (n) ownPassUs = totals.reduce((a, v) => a + v.us, 0) / Math.min(iters, 64);
  }
  return { gpuUs: Number.isFinite(gpuUs) ? gpuUs : undefined, wallUs, ownPassUs };
}
const usOf = (t: Timing) => t.gpuUs ?? t.wallUs;

const SPIN_WGSL = /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  var x = a[g.x];
  for (var i = 0u; i < p.n; i++) { x = x * 1.0000001 + 0.5; }
  a[g.x] = x;
}`;
/**
 * What the host does while it awaits the GPU: a dependent FMA chain long enough for ~100 ms (calibrated), then the
 * heap allocated, the GCs (a gc PerformanceObserver) and this process's CPU time meanwhile.
 */
async function waitGarbage(be: WebGpuBackend): Promise<{ ms: number; heapMB: number; gcs: number; gcMs: number; cpuMs: number }> {
  const a = be.alloc(64 * 1024);
  be.zero(a);
  const run = async (n: number) => {
    be.rec.dispatch("bench_spin", () => SPIN_WGSL, [n], [gbuf(a).buffer], 1024);
    const t0 = performance.now();
    be.flush();
    await be.device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  let n = 1 << 12, ms = await run(n);
  while (ms < 50 && n < 1 << 30) ms = await run((n *= Math.min(64, Math.max(2, Math.ceil(100 / Math.max(ms, 0.1))))));
  const { PerformanceObserver } = await import("node:perf_hooks");
  let gcs = 0, gcMs = 0;
  const obs = new PerformanceObserver((l) => l.getEntries().forEach((e) => ((gcs += 1), (gcMs += e.duration))));
  obs.observe({ entryTypes: ["gc"] });
  const h0 = process.memoryUsage().heapUsed, c0 = process.cpuUsage();
  let allocated = 0, last = h0;
  // heapUsed falls at each GC: sum the rises between samples taken on the GC observer's turns and at the end.
  const sampler = setInterval(() => {
    const h = process.memoryUsage().heapUsed;
    if (h > last) allocated += h - last;
    last = h;
  }, 1);
  ms = await run(n);
  clearInterval(sampler);
  const h = process.memoryUsage().heapUsed;
  if (h > last) allocated += h - last;
  const c = process.cpuUsage(c0);
  await new Promise((r) => setImmediate(r)); // the observer's last entries
  obs.disconnect();
  be.free(a);
  return { ms, heapMB: allocated / 1e6, gcs, gcMs, cpuMs: (c.user + c.system) / 1000 };
}

// ---- the ceiling: read every 16-byte word of a buffer (xor kept live), and copy it

const READ_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4u>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let n = arrayLength(&src);
  let stride = nw.x * 256u;
  var a = vec4u(0u);
  for (var i = g.x; i < n; i += stride) { a ^= src[i]; }
  dst[g.x] = a.x ^ a.y ^ a.z ^ a.w;
}`;
const COPY_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> src: array<vec4u>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4u>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let n = arrayLength(&src);
  let stride = nw.x * 256u;
  for (var i = g.x; i < n; i += stride) { dst[i] = src[i]; }
}`;

interface Ceiling { bytes: number; readGBs: number; copyGBs: number; uploadGBs: number; mappedUploadGBs: number; mappedNativeUploadGBs: number; workgroups: number; timing: "timestamps" | "wall" }

async function ceiling(be: WebGpuBackend, gpu: GpuDevice, bytes: number): Promise<Ceiling> {
  const dev = gpu.device;
  const src = dev.createBuffer({ size: bytes, usage: STORAGE | COPY_DST });
  const dst = dev.createBuffer({ size: bytes, usage: STORAGE });
  // Non-zero contents (a zero page could be special-cased somewhere): a pattern written in 16 MiB pieces.
  const piece = new Uint32Array(Math.min(bytes, 16 << 20) / 4);
  new Stream(3, "ceiling").fillUniform(new Float32Array(piece.buffer), 1);
  for (let at = 0; at < bytes; at += piece.byteLength) dev.queue.writeBuffer(src, at, piece, 0, Math.min(piece.length, (bytes - at) / 4));
  const groups = 4096;
  const out: Record<string, number> = {};
  for (const [name, code, mult] of [["read", READ_WGSL, 1], ["copy", COPY_WGSL, 2]] as const) {
    const pipe = dev.createComputePipeline({ layout: "auto", compute: { module: dev.createShaderModule({ code }), entryPoint: "main" } });
    const bg = dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }] });
    // Raw dispatches through the backend's pass so the same timing applies.
    const iters = Math.max(2, Math.ceil(PASS_BYTES / bytes));
    const t = await timeIt(be, gpu, iters, () => be.rec.rawDispatch(pipe, bg, groups));
    out[name] = (mult * bytes) / usOf(t) / 1e3;
  }
  // Host to device: queue.writeBuffer of 16 MiB pieces (as the expert tier uploads), best of 3, to the queue's done.
  let upload = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    for (let at = 0; at < bytes; at += piece.byteLength) dev.queue.writeBuffer(src, at, piece, 0, Math.min(piece.length, (bytes - at) / 4));
    await dev.queue.onSubmittedWorkDone();
    upload = Math.min(upload, performance.now() - t0);
  }
  // The same through the backend's mapped staging (staging.ts, what weights and tier records go through): each piece
  // set into a mapped buffer and copied in the command stream; with none free, wait for one to be mapped again.
  const viaStaging = async () => {
    let best = Infinity;
    for (let rep = 0; rep < 3; rep++) {
      const t0 = performance.now();
      for (let at = 0; at < bytes; at += piece.byteLength) {
        const n = Math.min(piece.byteLength, bytes - at), bytesOf = new Uint8Array(piece.buffer, 0, n);
        let st = be.stageUpload(bytesOf);
        while (!st) {
          be.flush();
          await dev.queue.onSubmittedWorkDone();
          await new Promise((r) => setImmediate(r)); // the staging's maps settle
          st = be.stageUpload(bytesOf);
        }
        be.copyBytes(st.buffer, st.offset, src, at, n);
      }
      be.flush();
      await dev.queue.onSubmittedWorkDone();
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };
  const mapped = await viaStaging();
  // Again with the bytes copied into mapped memory on the native pool's threads (what a split tier's uploads use).
  let mappedNative = NaN;
  if (nativeAvailable()) {
    const native = new NativeBackend();
    be.hostCopy = native.hostCopyBytes.bind(native);
    mappedNative = await viaStaging().finally(() => (be.hostCopy = undefined));
  }
  src.destroy();
  dst.destroy();
  return { bytes, readGBs: out.read, copyGBs: out.copy, uploadGBs: bytes / upload / 1e6, mappedUploadGBs: bytes / mapped / 1e6, mappedNativeUploadGBs: bytes / mappedNative / 1e6, workgroups: groups, timing: gpu.timestamps ? "timestamps" : "wall" };
}

// ---- weights: valid blocks of each type (a few MiB of them, tiled over every copy)

function pattern(fmt: QuantFormat, values: number): Uint8Array {
  const s = new Stream(5, `gpu-${fmt.name}`);
  if (fmt === F16 || fmt === BF16) {
    const v = new Float32Array(values);
    s.fillUniform(v, 0.05);
    const out = new Uint16Array(values);
    const bits = new Uint32Array(v.buffer);
    for (let i = 0; i < values; i++) out[i] = fmt === F16 ? f32ToF16(v[i]) : bits[i] >>> 16;
    return new Uint8Array(out.buffer);
  }
  if (fmt === Q4_0) {
    // No direct sampler: random values quantised (ggml's reference rounding).
    const v = new Float32Array(values), out = new Uint8Array((values / 32) * 18);
    s.fillUniform(v, 0.05);
    fmt.quantizeRow(v, out, values);
    return out;
  }
  return directFill(fmt.type, values, 0.05, s);
}

interface Row {
  type: string;
  name: string;
  k: number;
  n: number;
  tokens: number;
  /** Weight bytes read per iteration. */
  bytes: number;
  us: number;
  wallUs: number;
  gbs: number;
  /** The figure's source: the pass's timestamps, or (none, or a split pass) submit to done. */
  timing: "timestamps" | "wall";
  pctCeiling: number;
  gflops: number;
  plan: string;
  copies: number;
  /** µs per iteration with each dispatch timed in a pass of its own. */
  ownPassUs?: number;
}

interface Shape { name: string; k: number; n: number; tokens: number; experts?: number }

function shapes(quick: boolean): Shape[] {
  // Quick (a software GPU): a quarter of each side, the expert width at one k-quant block.
  const [d, ff, q, vocab, t] = quick ? [512, 256, 1024, 8192, 64] : [2048, 768, 4096, 151936, 512];
  return [
    { name: `moe 8 experts (moeFfn: gate, up, down), 1 token`, k: d, n: ff, tokens: 1, experts: 8 },
    { name: `expert gate ${d}x${ff}, 8 experts, 1 token`, k: d, n: ff, tokens: 1, experts: -8 },
    { name: `attn_q ${d}x${q}`, k: d, n: q, tokens: 1 },
    { name: `attn_output ${q}x${d}`, k: q, n: d, tokens: 1 },
    { name: `output ${d}x${vocab}`, k: d, n: vocab, tokens: 1 },
    { name: `prefill attn_q ${d}x${q}, ${t} tokens`, k: d, n: q, tokens: t },
  ];
}

const bytesOf = (fmt: QuantFormat, k: number, n: number) => (k / fmt.blockSize) * fmt.bytesPerBlock * n;

/** Weights of k x n, `copies` of them, each in an arena of its own (added to `arenas`). */
function makeWeights(be: WebGpuBackend, fmt: QuantFormat, k: number, n: number, copies: number, pat: Uint8Array, tag: string, arenas: WeightArena[]): Weight[] {
  const bytes = bytesOf(fmt, k, n);
  const ws: Weight[] = [];
  for (let c = 0; c < copies; c++) {
    const a = be.allocWeights(bytes);
    arenas.push(a);
    for (let at = 0; at < bytes; at += pat.byteLength) a.write(at, pat.subarray(0, Math.min(pat.byteLength, bytes - at)));
    ws.push(a.view({ name: `${tag}.${c}`, type: fmt.type, shape: [k, n] }, 0));
  }
  return ws;
}

/**
 * `copies` experts of gate, up (k x n) and down (n x k), each a record in arenas of up to one binding, as the
 * expert slots hold them: the MoE op then runs each part of all selected experts in one dispatch (webgpu moeSlots).
 */
function makeExperts(be: WebGpuBackend, fmt: QuantFormat, k: number, n: number, copies: number, pat: Uint8Array, arenas: WeightArena[], maxBinding: number): { gate: Weight[]; up: Weight[]; down: Weight[] } {
  const part = Math.ceil(bytesOf(fmt, k, n) / 256) * 256, record = 3 * part;
  const perArena = Math.max(1, Math.floor(maxBinding / record));
  const out = { gate: [] as Weight[], up: [] as Weight[], down: [] as Weight[] };
  for (let c = 0; c < copies; c++) {
    if (c % perArena === 0) arenas.push(be.allocWeights(Math.min(perArena, copies - c) * record));
    const a = arenas[arenas.length - 1], at = (c % perArena) * record;
    for (const [i, name] of (["gate", "up", "down"] as const).entries()) {
      const bytes = bytesOf(fmt, k, n);
      for (let o = 0; o < bytes; o += pat.byteLength) a.write(at + i * part + o, pat.subarray(0, Math.min(pat.byteLength, bytes - o)));
      out[name].push(a.view({ name: `${name}.${c}`, type: fmt.type, shape: name === "down" ? [n, k] : [k, n] }, at + i * part));
    }
  }
  return out;
}

async function kernelRows(be: WebGpuBackend, gpu: GpuDevice, ceil: Ceiling, quick: boolean, only?: string): Promise<Row[]> {
  const rows: Row[] = [];
  const scalar = new ScalarBackend();
  for (const fmt of TYPES) {
    if (only && !fmt.name.includes(only)) continue;
    const pat = pattern(fmt, 1 << 21);
    for (const sh of shapes(quick)) {
      const { k, n, tokens } = sh;
      const experts = Math.abs(sh.experts ?? 1);
      const perIter = experts * (sh.experts && sh.experts > 0 ? 3 : 1) * bytesOf(fmt, k, n);
      const copies = Math.max(1, Math.min(quick ? 2 : 128, Math.ceil(ROTATE_BYTES / perIter))) * experts;
      // The MoE op stages ~2.3 KB of parameters and row lists per expert: 40 iterations stay within the backend's
      // 1 MiB staging buffer, so the pass is not split (a split loses the timestamps: the wall time is used then).
      const iters = Math.max(3, Math.min(quick ? 8 : sh.experts && sh.experts > 0 ? 40 : 200, Math.ceil(PASS_BYTES / perIter)));
      let record: (i: number) => void;
      let check: (() => Promise<number>) | undefined;
      const arenas: WeightArena[] = [];
      const bufs: Buf[] = [];
      const alloc = (len: number) => {
        const b = be.alloc(len);
        bufs.push(b);
        return b;
      };
      if (sh.experts && sh.experts > 0) {
        // The MoE op as a layer runs it for one token: 8 experts of gate, up (k -> n) and down (n -> k).
        const { gate, up, down } = makeExperts(be, fmt, k, n, copies, pat, arenas, gpu.maxBinding);
        const x = alloc(k), out = alloc(k);
        be.write(x, new Float32Array(k).fill(0.01));
        const one = Int32Array.of(0), sc = Float32Array.of(0.125);
        record = (i) => {
          const set: ExpertRows[] = [];
          for (let e = 0; e < experts; e++) {
            const c = (i * experts + e) % copies;
            set.push({ gate: gate[c], up: up[c], down: down[c], rows: one, scales: sc });
          }
          be.moeFfn(out, x, set);
        };
      } else {
        const ws = makeWeights(be, fmt, k, n, copies, pat, sh.name, arenas);
        const xv = new Float32Array(k * tokens);
        new Stream(9, "x").fillUniform(xv, 1);
        const x = alloc(k * tokens), out = alloc(n * tokens);
        be.write(x, xv);
        record = (i) => {
          for (let e = 0; e < experts; e++) be.matmul(out, ws[(i * experts + e) % copies], x, tokens);
        };
        if (sh.name.startsWith("attn_output")) {
          // The GPU's result against the scalar reference on the same bytes (float64 sums).
          check = async () => {
            const w = ws[0];
            const host = { name: "check", type: fmt.type, shape: [k, n], bytes: repeatTo(pat, bytesOf(fmt, k, n)) };
            const sb = scalar.alloc(k), so = scalar.alloc(n);
            scalar.write(sb, xv.subarray(0, k));
            scalar.matmul(so, scalar.upload(host), sb, 1);
            be.matmul(out, w, x, 1);
            return nmse(await be.read(out), await scalar.read(so));
          };
        }
      }
      const t = await timeIt(be, gpu, iters, record);
      const us = usOf(t);
      const gq = GPU_QUANTS.get(fmt.type)!;
      const plan = matmulPlan(k, n, tokens, gq);
      const gbs = perIter / us / 1e3;
      const row: Row = {
        type: fmt.name, name: sh.name, k, n, tokens, bytes: perIter, us, wallUs: t.wallUs, gbs, timing: t.gpuUs === undefined ? "wall" : "timestamps", pctCeiling: (100 * gbs) / ceil.readGBs,
        gflops: (2 * k * n * tokens * experts * (sh.experts && sh.experts > 0 ? 3 : 1)) / us / 1e3,
        plan: sh.experts && sh.experts > 0
          ? `moeFfn: gate+up+SwiGLU then down over all ${experts} experts' pairs, ${matvecShape(gq, k, n).g} / ${matvecShape(gq, n, k).g} thread(s)/row (gate+up / down), then the scatter-add`
          : `${plan.kernel}: ${plan.workgroups}x${plan.z} workgroups of 64, ${plan.threadsPerRow} thread(s)/row, ${plan.rowsPerWorkgroup} rows x ${plan.tokensPerWorkgroup} token(s)/workgroup`,
        copies,
        ownPassUs: t.ownPassUs,
      };
      rows.push(row);
      let checked = "";
      if (check) {
        const e = await check();
        checked = `, nmse vs scalar ${e.toExponential(1)}`;
        if (!(e < 1e-8)) throw new Error(`gpu bench: ${fmt.name} ${sh.name} differs from the scalar reference (nmse ${e}): the kernel is wrong here`);
      }
      console.log(`  ${fmt.name.padEnd(5)} ${sh.name.padEnd(46)} ${f(perIter / 1e6, 2).padStart(8)} MB ${f(us, 1).padStart(9)} µs ${f(gbs, gbs < 10 ? 2 : 0).padStart(6)} GB/s ${f(row.pctCeiling, 0).padStart(4)}% ${f(row.gflops, row.gflops < 10 ? 2 : 0).padStart(7)} GFLOP/s  [${row.plan}; ${row.timing === "wall" ? "timed by wall clock" : `wall ${f(t.wallUs, 1)} µs`}${t.ownPassUs ? `; each dispatch in its own pass ${f(t.ownPassUs, 1)} µs (${f(perIter / t.ownPassUs / 1e3, 0)} GB/s)` : ""}${checked}]`);
      for (const b of bufs) be.free(b);
      for (const a of arenas) a.free();
      be.flush();
      await gpu.device.queue.onSubmittedWorkDone();
    }
  }
  return rows;
}

function repeatTo(pat: Uint8Array, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let at = 0; at < bytes; at += pat.byteLength) out.set(pat.subarray(0, Math.min(pat.byteLength, bytes - at)), at);
  return out;
}

function nmse(a: Float32Array, ref: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return den === 0 ? num : num / den;
}

// ---- end to end

interface Sanity { prompt: string; cpuBackend: string; cpuTokens: number[]; gpuTokens: number[]; identical: boolean; firstStepLogitsNmse: number; vocab: number; note?: string; profile?: DecodeProfile }

/** Greedy tokens and the first step's logits of `prompt` on one backend. */
interface DecodeProfile {
  /** Per decode token: wall ms, process CPU ms (every thread), GPU ms summed over dispatches (profiled tokens). */
  wallMs: number;
  cpuMs: number;
  /** Per token: host ms recording dispatches, and submitting them; the share of time the main thread was busy. */
  hostMs: number;
  submitMs: number;
  /** Of submitMs: writing the staging bytes; and finishing encoders (apart); submits a token. */
  stageWriteMs: number;
  finishMs: number;
  submits: number;
  elu: number;
  gpuMs: number;
  dispatches: number;
  /** Bind groups made a token (a dispatch whose buffers are new to the recorder makes one: ~20-70 µs of host). */
  bindGroups: number;
  /** Pipeline key -> dispatches and GPU µs per token. */
  kernels: Record<string, { count: number; us: number }>;
  /** The same with one choice switched: label -> kernels of interest (a regex over keys), GPU ms and kernels. */
  variants: Record<string, { filter: string; set: Record<string, unknown>; gpuMs: number; kernels: Record<string, { count: number; us: number }> }>;
  /**
   * Wall ms a decode token with one host-side choice switched, against the defaults in the same run: label -> both
   * medians over alternating rounds (base, variant, base, ...) of 8 tokens, and the dispatches and submits a token.
   */
  wallVariants: Record<string, { set: Record<string, unknown>; baseMs: number; variantMs: number; dispatches: number; submits: number }>;
  /** Decode tok/s through a session with each token recorded ahead (on) and after its sample (off), alternating. */
  recordAhead: { on: number[]; off: number[] };
  /** One prompt of `tokens` tokens in a fresh cache, each dispatch timed: where prefill's time goes. */
  prefill?: { tokens: number; wallMs: number; gpuMs: number; kernels: Record<string, { count: number; us: number }>; variants: DecodeProfile["variants"] };
}

/** Where a decode token's time goes on webgpu: wall vs CPU over 16 plain tokens, then GPU time by kernel over 4. */
async function profileDecode(lm: LoadedModel, cache: ReturnType<LoadedModel["model"]["makeCache"]>, last: number): Promise<DecodeProfile> {
  const be = lm.backend as WebGpuBackend;
  const step = async () => {
    const l = await lm.model.forward(Int32Array.of(last), cache, { logits: "last" });
    last = l.indexOf(Math.max(...l.subarray(0, 1024))); // any id: the path is the same
  };
  const N = 16, P = 4;
  const c0 = process.cpuUsage(), t0 = performance.now(), d0 = be.counters.dispatches, s0 = be.counters.submitMs, e0 = performance.eventLoopUtilization();
  const r0 = be.counters.recordMs, b0 = be.counters.bindGroups, w0 = be.counters.stageWriteMs, f0 = be.counters.finishMs, n0 = be.counters.submits;
  be.timeHost = true;
  for (let i = 0; i < N; i++) await step();
  be.timeHost = false;
  const wallMs = (performance.now() - t0) / N, c = process.cpuUsage(c0), dispatches = (be.counters.dispatches - d0) / N;
  const elu = performance.eventLoopUtilization(e0).utilization, submitMs = (be.counters.submitMs - s0) / N, hostMs = (be.counters.recordMs - r0) / N;
  const bindGroups = (be.counters.bindGroups - b0) / N, stageWriteMs = (be.counters.stageWriteMs - w0) / N, finishMs = (be.counters.finishMs - f0) / N, submits = (be.counters.submits - n0) / N;
  const profile = async () => {
    for (let i = 0; i < 8; i++) await step(); // the GPU's clock up (see timeIt), and this variant's pipelines built
    be.profileBegin();
    for (let i = 0; i < P; i++) await step();
    const totals = await be.profileEnd();
    const kernels: DecodeProfile["kernels"] = {};
    let gpuUs = 0;
    for (const [k, v] of [...totals].sort((a, b) => b[1].us - a[1].us)) {
      kernels[k] = { count: v.count / P, us: v.us / P };
      gpuUs += v.us / P;
    }
    return { gpuMs: gpuUs / 1000, kernels };
  };
  const main = await profile();
  // The same token with one knob switched, then back (what each choice buys or costs).
  const variants: DecodeProfile["variants"] = {};
  const knobs = { fuseRouting: be.fuseRouting, fuseDownSum: be.fuseDownSum, matvecRows: be.matvecRows, matvecLanes: be.matvecLanes, q4kReader: be.q4kReader, intDot: be.intDot };
  const VARIANTS: [string, string, Partial<typeof knobs>][] = [
    ["the MoE's fusions (routing in gate+up, down with the sum) switched", "moe|route|combine", { fuseRouting: !knobs.fuseRouting, fuseDownSum: !knobs.fuseDownSum }],
    ["every matvec at one row per thread group", "matvec|moe", { matvecRows: 1 }],
    ["Q4_K's pair reader (two sub-blocks a thread; 'p' in the keys)", "/12", { q4kReader: "pair" }],
    ["Q4_K's vec4 reader (the pair's sums in 16-byte loads, x loaded once a turn; 'v')", "/12", { q4kReader: "vec4" }],
    ["at most 32 threads a row", "matvec|moe", { matvecLanes: 32 }],
    ["integer dot products against x quantised to 8 bits (Q4_K, Q8_0; 'i')", "matvec|moe|quant_x", { intDot: true }],
  ];
  for (const [label, filter, set] of VARIANTS) {
    if (Object.entries(set).every(([k, v]) => knobs[k as keyof typeof knobs] === v)) continue;
    Object.assign(be, set);
    variants[label] = { filter, set, ...(await profile()) };
    Object.assign(be, knobs);
  }
  // What the host's share costs, by wall time: choices that change how many dispatches and submits a token takes,
  // each against the defaults in alternating rounds (this VM and a GPU host both drift: medians of 5 each).
  const wallVariants: DecodeProfile["wallVariants"] = {};
  const host = { ...knobs, flushEvery: be.flushEvery, fuseAttention: be.fuseAttention, fuseQuantX: be.fuseQuantX, mapDelay: be.mapDelay };
  const round = async (set: Partial<typeof host>) => {
    Object.assign(be, set);
    const d0 = be.counters.dispatches, s0 = be.counters.submits, t = performance.now();
    for (let i = 0; i < 8; i++) await step();
    const r = { ms: (performance.now() - t) / 8, dispatches: (be.counters.dispatches - d0) / 8, submits: (be.counters.submits - s0) / 8 };
    Object.assign(be, host);
    return r;
  };
  const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
  const HOST_VARIANTS: [string, Partial<typeof host>][] = [
    ["a submit every 16 dispatches", { flushEvery: 16 }],
    ["a submit every 64 dispatches", { flushEvery: 64 }],
    ["a submit every 128 dispatches", { flushEvery: 128 }],
    // (one submit a token, every 256, and attention unfused lost by 1.07-1.48x in three H100 runs: session 15)
    // Kernel choices whose per-dispatch GPU sums above are close or pay a dispatch of their own (intDot's quant_x).
    ["integer dot products (intDot)", { intDot: !host.intDot }],
    ["Q4_K's vec4 reader", { q4kReader: host.q4kReader === "vec4" ? "word" : "vec4" }],
    ["intDot with a submit every 16 dispatches", { intDot: !host.intDot, flushEvery: 16 }],
    ["intDot, quant_x for every matvec (norms not quantising)", { intDot: !host.intDot, fuseQuantX: false }],
    ["a read back sleeping 0.7 of its usual wait before it maps (mapDelay)", { mapDelay: 0.7 }],
  ];
  for (const [label, set] of HOST_VARIANTS) {
    const base: number[] = [], variant: number[] = [];
    let v = { dispatches: 0, submits: 0 };
    for (let r = 0; r < 5; r++) {
      base.push((await round({})).ms);
      const got = await round(set);
      variant.push(got.ms);
      v = got;
    }
    wallVariants[label] = { set, baseMs: median(base), variantMs: median(variant), dispatches: v.dispatches, submits: v.submits };
  }
  const recordAhead = await recordAheadFigures(lm, 32);
  // A 128-token prompt (ids past the special tokens; the path does not depend on them), once unprofiled, then timed.
  const PP = 128, prompt = Int32Array.from({ length: PP }, (_, i) => 1000 + i);
  const t1 = performance.now();
  await lm.model.forward(prompt, lm.model.makeCache(PP), { logits: "last" });
  const ppWall = performance.now() - t1;
  const profilePrompt = async () => {
    be.profileBegin();
    await lm.model.forward(prompt, lm.model.makeCache(PP), { logits: "last" });
    const totals = await be.profileEnd();
    const kernels: DecodeProfile["kernels"] = {};
    let us = 0;
    for (const [k, v] of [...totals].sort((a, b) => b[1].us - a[1].us)) {
      kernels[k] = v;
      us += v.us;
    }
    return { gpuMs: us / 1000, kernels };
  };
  const prefill: NonNullable<DecodeProfile["prefill"]> = { tokens: PP, wallMs: ppWall, ...(await profilePrompt()), variants: {} };
  const tileRows = be.tileRows;
  be.tileRows = tileRows === 1 ? 2 : 1;
  prefill.variants[`${be.tileRows} rows a thread in the tiled matmul`] = { filter: "tiled", set: { tileRows: be.tileRows }, ...(await profilePrompt()) };
  be.tileRows = tileRows;
  const minGroups = be.tiledMinGroups;
  for (const g of [64, 256, 1024].filter((g) => g !== minGroups)) {
    be.tiledMinGroups = g;
    prefill.variants[`matmuls of fewer than ${g} tiled workgroups as the matvec`] = { filter: "matmul|matvec|quant_x", set: { tiledMinGroups: g }, ...(await profilePrompt()) };
  }
  be.tiledMinGroups = minGroups;
  return { wallMs, cpuMs: (c.user + c.system) / 1000 / N, hostMs, submitMs, stageWriteMs, finishMs, submits, elu, dispatches, bindGroups, ...main, variants, wallVariants, recordAhead, prefill };
}

async function greedy(path: string, backend: BackendName, prompt: string, n: number): Promise<{ tokens: number[]; logits: Float32Array; margins: number[]; prof?: DecodeProfile }> {
  let prof: DecodeProfile | undefined;
  // The CPU side streams its experts (8 tokens touch few of them: no 17 GB load); the GPU holds them all.
  // Room for the profile's tokens too (~500 on webgpu: the wall-time variants decode 400).
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 1024, expertIo: backend === "webgpu" ? "resident" : "stream", backend }));
  try {
    const cache = lm.model.makeCache(1024);
    const ids = lm.tokenizer.encode(prompt);
    let logits = await lm.model.forward(Int32Array.from(ids), cache, { logits: "last" });
    const first = logits.slice();
    const tokens: number[] = [], margins: number[] = [];
    for (let i = 0; i < n; i++) {
      let a = 0, b = -1;
      for (let j = 1; j < logits.length; j++) {
        if (logits[j] > logits[a]) [a, b] = [j, a];
        else if (b < 0 || logits[j] > logits[b]) b = j;
      }
      tokens.push(a);
      margins.push(logits[a] - logits[b]);
      logits = await lm.model.forward(Int32Array.of(a), cache, { logits: "last" });
    }
    if (backend === "webgpu") prof = await profileDecode(lm, cache, tokens[n - 1]);
    return { tokens, logits: first, margins, prof };
  } finally {
    await lm.close();
  }
}

async function sanity(path: string, profileOnly: boolean): Promise<Sanity> {
  const prompt = "The capital of France is";
  const cpuBackend: BackendName = nativeAvailable() ? "cpu" : "wasm";
  const cpu = profileOnly ? undefined : await greedy(path, cpuBackend, prompt, 8);
  const gpu = await greedy(path, "webgpu", prompt, 8);
  if (!cpu) return { prompt, cpuBackend, cpuTokens: [], gpuTokens: gpu.tokens, identical: false, firstStepLogitsNmse: NaN, vocab: gpu.logits.length, profile: gpu.prof };
  const identical = cpu.tokens.every((t, i) => t === gpu.tokens[i]);
  const e = nmse(gpu.logits, cpu.logits);
  const s: Sanity = { prompt, cpuBackend, cpuTokens: cpu.tokens, gpuTokens: gpu.tokens, identical, firstStepLogitsNmse: e, vocab: cpu.logits.length, profile: gpu.prof };
  if (!identical) {
    const i = cpu.tokens.findIndex((t, j) => t !== gpu.tokens[j]);
    s.note = `first difference at step ${i}, where the cpu backend's top-2 logit margin is ${cpu.margins[i].toExponential(2)} (a near tie flips under different summation; a large margin means a wrong result)`;
  }
  return s;
}

export async function benchGpu(only?: string): Promise<void> {
  const quick = process.argv.includes("--quick");
  const model = arg("model"), jsonPath = arg("json"), dawn = arg("dawn"), profileOnly = process.argv.includes("--profile-only");
  // e.g. --dawn='enable-dawn-features=disable_robustness disable-dawn-features=timestamp_quantization'
  if (dawn) setDawnFlags(dawn.split(" "));
  // e.g. --tune='{"intDot":true,"matvecLanes":16}': every webgpu backend of this run starts with these knobs.
  const tune = arg("tune");
  if (tune) WebGpuBackend.tuning = JSON.parse(tune) as typeof WebGpuBackend.tuning;
  const result: Record<string, unknown> = { machine: machineLine(), date: new Date().toISOString(), quick, dawn: dawn ?? "", tune: WebGpuBackend.tuning };
  const save = () => {
    if (jsonPath) writeFileSync(jsonPath, JSON.stringify(result, null, 2) + "\n");
  };
  const gpu = await openGpuDevice();
  if ("reason" in gpu) throw new Error(`gpu bench: ${gpu.reason}`);
  const be = new WebGpuBackend(gpu);
  result.adapter = { name: gpu.adapterName, maxBinding: gpu.maxBinding, maxBuffer: gpu.maxBuffer, timestamps: gpu.timestamps };
  console.log(`adapter: ${gpu.adapterName}; largest binding ${(gpu.maxBinding / 2 ** 20).toFixed(0)} MiB; timing: ${gpu.timestamps ? "timestamp queries around each pass" : "submit to onSubmittedWorkDone (no timestamp-query)"}`);
  try {
    const ceilBytes = Math.min(gpu.maxBinding, quick ? 32 << 20 : 1 << 30);
    const c = await ceiling(be, gpu, ceilBytes);
    result.ceiling = c;
    console.log(`ceiling over ${(ceilBytes / 2 ** 20).toFixed(0)} MiB (${c.workgroups} workgroups of 256, 16-byte loads): read ${f(c.readGBs, 2)} GB/s, copy ${f(c.copyGBs, 2)} GB/s (read + write bytes); host to device (16 MiB pieces) ${f(c.uploadGBs, 2)} GB/s by writeBuffer, ${f(c.mappedUploadGBs, 2)} GB/s through the backend's mapped staging, ${f(c.mappedNativeUploadGBs, 2)} GB/s with the bytes copied in on the native pool's threads`);
    save();
    // What one small dispatch costs in a pass: a chain where each reads the last one's output (a barrier each),
    // and the same count over 8 outputs in turn (no dispatch reads what the one before wrote).
    const n = 2048, xs = Array.from({ length: 9 }, () => be.alloc(n));
    const chain = await timeIt(be, gpu, 512, () => be.add(xs[0], xs[0], xs[8], n));
    const apart = await timeIt(be, gpu, 512, (i) => be.add(xs[i % 8], xs[8], xs[8], n));
    result.dispatch = { chainUs: usOf(chain), independentUs: usOf(apart), timing: chain.gpuUs === undefined ? "wall" : "timestamps" };
    console.log(`one small dispatch (add of ${n} values) in a pass: ${f(usOf(chain), 2)} µs when each reads the one before, ${f(usOf(apart), 2)} µs when none does`);
    const w = await waitGarbage(be);
    result.wait = w;
    console.log(`while awaiting ${f(w.ms, 0)} ms of GPU work: ${f(w.heapMB, 1)} MB of heap allocated, ${w.gcs} GCs taking ${f(w.gcMs, 1)} ms, ${f(w.cpuMs, 0)} ms of this process's CPU (Dawn polls a pending promise from setImmediate)`);
    save();
    console.log(`kernels (weights rotate over copies >= ${ROTATE_BYTES >> 20} MiB; GB/s of weight bytes; % of the read ceiling):`);
    result.kernels = await kernelRows(be, gpu, c, quick, only);
    save();
  } finally {
    be.close();
  }
  if (!model) {
    console.log("\nend to end: skipped (no --model=PATH)");
    return;
  }
  console.log(`\nend to end: ${model}`);
  const split = arg("split");
  if (split && process.argv.includes("--admit-ab")) {
    // Admission off (inf) against --gpu-admit 1, one model each loaded side by side in this process, alternating.
    const ab = await splitAdmitAB(model, Number(split), Number(arg("rounds") ?? 6));
    result.splitAdmitAB = ab;
    save();
    const med = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
    for (const k of ["inf", "1"] as const) {
      const v = ab[k], t = v.perToken;
      console.log(`  split tier at ${split}, --gpu-admit ${k}: decode ${f(med(v.ms), 2)} ms a token (median of ${v.ms.length} rounds of 8, alternating with the other: ${v.ms.map((x) => f(x, 1)).join(", ")}); a token: ${f(t.gpuHits, 1)} on the GPU, ${f(t.uploads, 1)} uploads, ${f(t.admits, 1)} admitted, ${f(t.cpuRuns, 1)} on the CPU`);
    }
    return;
  }
  if (split) {
    const admit = arg("admit"); // --admit=R: the split tier's --gpu-admit (default inf)
    const pads = (arg("pad") ?? "").split(",").filter(Boolean).map(Number); // --pad=ITERS,...: padIters variants
    const o = await splitOverlap(model, Number(split), admit === undefined ? undefined : Number(admit), pads);
    result.splitOverlap = o;
    save();
    const med = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
    const labels: Record<string, string> = {
      laterMs: "with the host's sum taken later (recording on meanwhile)",
      awaitedMs: "awaited first",
      sameSubmitMs: "taken later in the device's experts' submission",
      noWakeMs: "with the host's threads not woken before its experts come",
      libuvMs: "with its experts run from a libuv thread, not joined by this one",
    };
    for (const p of pads) labels[`pad${p}Ms`] = `with the GPU's idle windows padded by ${p} FMA pairs (padIters)`;
    const keys = Object.keys(o.ms);
    console.log(`  split tier at ${split} of the experts: decode ${keys.map((k) => `${f(med(o.ms[k]), 2)} ms a token ${labels[k]}`).join(" vs ")} (medians of 5 alternating rounds of 8: ${keys.map((k) => o.ms[k].map((v) => f(v, 1)).join(", ")).join(" vs ")}); a token: ${f(o.perToken.gpuHits, 1)} on the GPU, ${f(o.perToken.uploads, 1)} uploads, ${f(o.perToken.admits, 1)} admitted, ${f(o.perToken.cpuRuns, 1)} on the CPU`);
    const h = o.perToken;
    console.log(`  its host, 8 tokens timed (wall ${f(h.wallMs, 2)} ms a token): ${f(h.dispatches, 0)} dispatches recorded in ${f(h.recordMs, 2)} ms, ${f(h.submits, 1)} submits in ${f(h.submitMs, 2)} ms (staging writes ${f(h.stageWriteMs, 2)}; encoders finished apart ${f(h.finishMs, 2)}); ${f(h.reads, 1)} reads waited ${f(h.heldWaitMs, 2)} ms for the host's values, then ${f(h.mapWaitMs, 2)} ms for the GPU; ${f(h.hostParts, 1)} host parts of ${f(h.hostExperts, 1)} experts took ${f(h.hostPartMs, 2)} ms from start to sum (${f(h.hostComputeMs, 2)} ms in their compute)`);
    return;
  }
  const s = await sanity(model, profileOnly);
  result.sanity = s;
  save();
  if (s.profile) {
    const p = s.profile;
    console.log(`  decode token on webgpu: wall ${f(p.wallMs, 2)} ms, process CPU ${f(p.cpuMs, 2)} ms, main thread busy ${f(100 * p.elu, 0)}%, recording dispatches ${f(p.hostMs, 2)} ms, submitting ${f(p.submitMs, 2)} ms in ${f(p.submits, 1)} submits (staging writes ${f(p.stageWriteMs, 2)}; encoders finished apart ${f(p.finishMs, 2)}) (16 tokens), ${f(p.dispatches, 0)} dispatches, ${f(p.bindGroups, 1)} bind groups made; GPU time summed over dispatches ${f(p.gpuMs, 2)} ms (4 tokens, each dispatch its own timed pass):`);
    const table = (ks: DecodeProfile["kernels"]) => {
      for (const [k, v] of Object.entries(ks)) console.log(`    ${k.padEnd(44)} ${f(v.count, 0).padStart(4)} x ${f(v.us / v.count, 2).padStart(8)} µs = ${f(v.us, 1).padStart(8)} µs`);
    };
    table(p.kernels);
    for (const [label, v] of Object.entries(p.variants)) {
      console.log(`  the same with ${label}: GPU ${f(v.gpuMs, 2)} ms a token`);
      table(Object.fromEntries(Object.entries(v.kernels).filter(([k]) => new RegExp(v.filter).test(k))));
    }
    for (const [label, v] of Object.entries(p.wallVariants)) {
      console.log(`  decode wall with ${label}: ${f(v.variantMs, 2)} ms a token vs ${f(v.baseMs, 2)} ms with the defaults (${f(v.variantMs / v.baseMs, 3)}x; medians of 5 alternating rounds of 8 tokens); ${f(v.dispatches, 0)} dispatches, ${f(v.submits, 1)} submits a token`);
    }
    const ra = p.recordAhead;
    const med = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
    console.log(`  decode through a session with each token recorded ahead ${ra.on.map((v) => f(v, 2)).join(", ")} tok/s vs recorded after its sample ${ra.off.map((v) => f(v, 2)).join(", ")} (alternating; medians ${f(med(ra.on), 2)} vs ${f(med(ra.off), 2)})`);
    if (p.prefill) {
      console.log(`  a ${p.prefill.tokens}-token prompt: wall ${f(p.prefill.wallMs, 1)} ms unprofiled; GPU time summed over dispatches ${f(p.prefill.gpuMs, 2)} ms:`);
      table(p.prefill.kernels);
      for (const [label, v] of Object.entries(p.prefill.variants)) {
        console.log(`  the same prompt with ${label}: GPU ${f(v.gpuMs, 2)} ms`);
        table(Object.fromEntries(Object.entries(v.kernels).filter(([k]) => new RegExp(v.filter).test(k))));
      }
    }
  }
  if (profileOnly) return;
  console.log(`  sanity: greedy tokens webgpu ${s.identical ? "==" : "!="} ${s.cpuBackend} [${s.gpuTokens.join(" ")}] vs [${s.cpuTokens.join(" ")}]; first-step logits nmse ${s.firstStepLogitsNmse.toExponential(2)}${s.note ? `; ${s.note}` : ""}`);
  if (!(s.firstStepLogitsNmse < 1e-3)) throw new Error("gpu bench: the webgpu backend's logits disagree with the cpu backend's: no speed figures on wrong output");
  const figs: Figures = await engineFigures(model, { backend: "webgpu", threads: 0, decode: quick ? 16 : 64, decodeRuns: 3, prefills: quick ? [64] : [128, 512], lagPrefill: 0, lag: true, vocab: s.vocab });
  result.webgpu = figs;
  save();
  const prefills = Object.entries(figs.prefill).map(([n, v]) => `pp${n} ${f(v, 1)} tok/s`).join(", ");
  console.log(`  webgpu resident: decode ${f(figs.decode, 2)} tok/s (best of 3), ${prefills}, TTFT after 128 ${f(figs.ttftMs, 0)} ms; 10 ms timer lateness during decode p99 ${f(figs.lag!.decode[0], 1)} / worst ${f(figs.lag!.decode[1], 1)} ms${figs.lag!.prefill ? `, during the prompts p99 ${f(figs.lag!.prefill[0], 1)} / worst ${f(figs.lag!.prefill[1], 1)} ms` : ""}`);
  if (!s.identical) console.log("  NOTE: greedy tokens differ from the cpu backend's (see sanity above)");
}

/**
 * The split tier (--gpu-misses cpu) with a GPU tier of `share` of the expert bytes: decode ms a token with the host's
 * expert sum added later by the device (addLater: this thread records the next layer while the CPU computes it;
 * the device's experts submitted before it), awaited then written, and added later in the same submission as the
 * device's experts, on one loaded model, alternating 5 rounds of 8 tokens after 32.
 */
async function splitOverlap(path: string, share: number, gpuAdmit?: number, pads: number[] = []): Promise<{ ms: Record<string, number[]>; at: Record<string, number[]>; perToken: Record<string, number> }> {
  const probe = await loadModel(path, defaultEngineConfig({ ctxSize: 256, expertIo: "stream", backend: "cpu" }));
  const { slotBytes } = probe.experts, total = probe.experts.reader.layers.reduce((a, l) => a + probe.experts.reader.expertCount(l), 0);
  await probe.close();
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256, expertIo: "resident", backend: "webgpu", gpuExpertCache: Math.round(share * total) * slotBytes, gpuMisses: "cpu", ...(gpuAdmit === undefined ? {} : { gpuAdmit }) }));
  const be = lm.backend as WebGpuBackend, { addLater } = WebGpuBackend.prototype;
  // Added later as the backend does (addLater; the device's experts submitted first: submitBeforeLater), awaited
  // then written, and added later in the device's experts' submission.
  // Also the defaults with the host backend's threads left asleep until its experts come (wake() off), and with its
  // experts run from a libuv thread (joinRowsMax 0) instead of begun on its pool and joined by this thread.
  // With pads (--pad=ITERS,...): the defaults with the GPU kept busy by padIters (its idle windows padded).
  type Variant = { addLater?: typeof addLater; first: boolean; wake?: false; libuv?: true; pad?: number };
  const variants: Record<string, Variant> = {
    laterMs: { addLater, first: true },
    awaitedMs: { first: true },
    sameSubmitMs: { addLater, first: false },
    noWakeMs: { addLater, first: true, wake: false },
    libuvMs: { addLater, first: true, libuv: true },
  };
  if (pads.length) {
    for (const k of ["awaitedMs", "sameSubmitMs", "noWakeMs", "libuvMs"]) delete variants[k];
    for (const p of pads) variants[`pad${p}Ms`] = { addLater, first: true, pad: p };
  }
  const hostBe = lm.gpuExperts!.host!.backend as Partial<NativeBackend>, wakeUs = hostBe.wakeSpinUs, joinRows = hostBe.joinRowsMax;
  const use = (v: Variant) => {
    WebGpuBackend.prototype.addLater = v.addLater as typeof addLater;
    be.submitBeforeLater = v.first;
    if (wakeUs !== undefined) hostBe.wakeSpinUs = v.wake === false ? 0 : wakeUs;
    if (joinRows !== undefined) hostBe.joinRowsMax = v.libuv ? 0 : joinRows;
    be.padIters = v.pad ?? 0;
  };
  try {
    const cache = lm.model.makeCache(256);
    let last = 1;
    const step = async () => {
      const l = await lm.model.forward(Int32Array.of(last), cache, { logits: "last" });
      last = l.indexOf(Math.max(...l.subarray(0, 1024)));
    };
    await lm.model.forward(Int32Array.from(promptIds(16, lm.model.info.nVocab)), cache, { logits: "last" });
    for (let i = 0; i < 32; i++) await step();
    const tier = lm.gpuExperts!, s0 = { ...tier.stats };
    const out: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
    const at: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
    for (let r = 0; r < 5; r++) {
      for (const [k, v] of Object.entries(variants)) {
        use(v);
        const t = performance.now();
        at[k].push(Date.now()); // when it ran (epoch ms): against nvidia-smi's samples
        for (let i = 0; i < 8; i++) await step();
        out[k].push((performance.now() - t) / 8);
      }
    }
    const n = 5 * 8 * Object.keys(variants).length, d = (k: keyof typeof s0) => (tier.stats[k] - s0[k]) / n;
    const perToken = { gpuHits: d("hits"), uploads: d("misses"), admits: d("admits"), cpuRuns: d("hostRuns") };
    // The host's share, as the backend runs it: 8 more tokens with its recording and submits timed.
    use(variants.laterMs);
    const c0 = { ...be.counters }, t0 = performance.now();
    const tm = { parts: 0, experts: 0, ms: 0, computeMs: 0 };
    be.timeHost = true;
    tier.host!.timing = tm;
    for (let i = 0; i < 8; i++) await step();
    be.timeHost = false;
    tier.host!.timing = undefined;
    const host = Object.fromEntries(["submits", "dispatches", "recordMs", "submitMs", "stageWriteMs", "finishMs", "heldWaitMs", "mapWaitMs", "reads"].map((k) => [k, (be.counters[k as keyof typeof c0] - c0[k as keyof typeof c0]) / 8]));
    const hostParts = { hostParts: tm.parts / 8, hostExperts: tm.experts / 8, hostPartMs: tm.ms / 8, hostComputeMs: tm.computeMs / 8 };
    return { ms: out, at, perToken: { ...perToken, ...host, ...hostParts, wallMs: (performance.now() - t0) / 8 } };
  } finally {
    use(variants.laterMs);
    await lm.close();
  }
}

/**
 * Greedy decode tok/s of n tokens after a 16-token prompt through a session (as `run` and `serve` decode), with
 * --record-ahead on and off on the model already loaded, alternating 3 times.
 */
/**
 * The split tier at `share` of the expert bytes with admission off (--gpu-admit inf, the default) and at 1: the model
 * loaded twice in this process (a tier each; the tier's filling is its admission's doing, so one model switched
 * between the two would carry one's fills into the other), each warmed with 32 tokens, then `rounds` rounds of 8
 * tokens alternating: the GPU's clock and the host drift alike for both.
 */
async function splitAdmitAB(path: string, share: number, rounds: number): Promise<Record<"inf" | "1", { ms: number[]; perToken: Record<string, number> }>> {
  const probe = await loadModel(path, defaultEngineConfig({ ctxSize: 256, expertIo: "stream", backend: "cpu" }));
  const { slotBytes } = probe.experts, total = probe.experts.reader.layers.reduce((a, l) => a + probe.experts.reader.expertCount(l), 0);
  await probe.close();
  const sides: { key: "inf" | "1"; lm: LoadedModel; step: () => Promise<void>; ms: number[]; s0?: DeviceTierStats }[] = [];
  try {
    for (const [key, gpuAdmit] of [["inf", Infinity], ["1", 1]] as const) {
      const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256, expertIo: "resident", backend: "webgpu", gpuExpertCache: Math.round(share * total) * slotBytes, gpuMisses: "cpu", gpuAdmit }));
      const cache = lm.model.makeCache(256);
      let last = 1;
      const step = async () => {
        const l = await lm.model.forward(Int32Array.of(last), cache, { logits: "last" });
        last = l.indexOf(Math.max(...l.subarray(0, 1024)));
      };
      sides.push({ key, lm, step, ms: [] });
      await lm.model.forward(Int32Array.from(promptIds(16, lm.model.info.nVocab)), cache, { logits: "last" });
    }
    for (const s of sides) {
      for (let i = 0; i < 32; i++) await s.step();
      s.s0 = { ...s.lm.gpuExperts!.stats };
    }
    for (let r = 0; r < rounds; r++) {
      for (const s of r % 2 ? [...sides].reverse() : sides) {
        const t = performance.now();
        for (let i = 0; i < 8; i++) await s.step();
        s.ms.push((performance.now() - t) / 8);
      }
    }
    const out = {} as Record<"inf" | "1", { ms: number[]; perToken: Record<string, number> }>;
    for (const s of sides) {
      const st = s.lm.gpuExperts!.stats, d = (k: keyof DeviceTierStats) => (st[k] - s.s0![k]) / (8 * rounds);
      out[s.key] = { ms: s.ms, perToken: { gpuHits: d("hits"), uploads: d("misses"), admits: d("admits"), cpuRuns: d("hostRuns") } };
    }
    return out;
  } finally {
    for (const s of sides) await s.lm.close();
  }
}

async function recordAheadFigures(lm: LoadedModel, n: number): Promise<{ on: number[]; off: number[] }> {
  const cfg = lm.config as { recordAhead: boolean };
  const was = cfg.recordAhead;
  const out: { on: number[]; off: number[] } = { on: [], off: [] };
  const session = new Session(lm);
  try {
    // 5 alternating rounds: three left the two overlapping on one H100 run (session 15: on 122/73/161, off 151-155).
    for (let r = 0; r < 5; r++) {
      for (const on of [false, true]) {
        cfg.recordAhead = on;
        session.reset();
        const gen = session.generate(promptIds(16, lm.model.info.nVocab), { maxTokens: n + 1, sampling: { temperature: 0 }, stopAtEog: false });
        let st = await gen.next();
        while (!st.done) st = await gen.next();
        out[on ? "on" : "off"].push((n * 1000) / st.value.decodeMs);
      }
    }
  } finally {
    cfg.recordAhead = was;
    session.free();
  }
  return out;
}
