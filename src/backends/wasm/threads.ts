// Worker threads for the wasm matmul (Node only: node:worker_threads, loaded synchronously). Every worker holds
// an instance of the shared-memory kernels per wasm memory; a matmul is split into row chunks taken from an
// atomic counter by the calling thread and the workers, which spin briefly between calls and then sleep.
import type { WasmKernels, WasmMemory, WasmModule } from "./memory.js";

interface WorkerLike { postMessage(m: unknown): void; unref(): void; terminate(): Promise<number>; on(event: "error", fn: (e: Error) => void): void }
interface WorkerThreads { Worker: new (code: string, opts: { eval: true; workerData: unknown }) => WorkerLike }

// Control words (Int32Array over a SharedArrayBuffer). CLAIM packs (job tag << 24) | (chunks << 16) | next chunk:
// a worker claims a chunk by compare-and-swap only while the word is the job's it saw, so a late worker never runs
// a chunk with the next job's parameters nor uses one up, and the caller waits only for workers inside a chunk.
const GEN = 0, CLAIM = 1, ACTIVE = 2, STOP = 3, MEM = 4, TYPE = 5, W = 6, XB = 7, OUT = 8, K = 9, N = 10, T = 11, RPC = 12, FAILED = 13;
const CTL_WORDS = 16;
const MAX_CHUNKS = 255;

// The worker: CommonJS, evaluated from this string so it needs no file of its own (works from src/ and dist/).
const WORKER = `
const { workerData, parentPort, receiveMessageOnPort } = require("node:worker_threads");
const { module, ctl: sab, spin } = workerData;
const ctl = new Int32Array(sab);
const inst = [];
const take = () => { for (let m; (m = receiveMessageOnPort(parentPort)); ) inst[m.message.idx] = new WebAssembly.Instance(module, { env: { memory: m.message.memory } }).exports; };
let gen = 0; // the value at creation: a job posted while this worker was starting is still seen
for (;;) {
  for (let i = 0; Atomics.load(ctl, ${GEN}) === gen; i++) if (i > spin) Atomics.wait(ctl, ${GEN}, gen);
  gen = Atomics.load(ctl, ${GEN});
  if (Atomics.load(ctl, ${STOP})) break;
  Atomics.add(ctl, ${ACTIVE}, 1);
  try {
    for (;;) {
      // Claim by compare-and-swap: a worker that saw this job late must not use up a chunk of the next one (an add
      // on the next job's word would skip that chunk: rows left unwritten).
      const v = Atomics.load(ctl, ${CLAIM});
      if ((v >>> 24) !== (gen & 0xff) || (v & 0xffff) >= ((v >>> 16) & 0xff)) break; // another job's, or none left
      if (Atomics.compareExchange(ctl, ${CLAIM}, v, v + 1) !== v) continue;
      const mi = ctl[${MEM}];
      while (!inst[mi]) take();
      const n = ctl[${N}], rpc = ctl[${RPC}], r0 = (v & 0xffff) * rpc;
      inst[mi].matmul_rows(ctl[${TYPE}], ctl[${W}], ctl[${XB}], ctl[${OUT}], ctl[${K}], n, ctl[${T}], r0, Math.min(n, r0 + rpc));
    }
  } catch (e) {
    Atomics.store(ctl, ${FAILED}, 1); // the caller stops waiting and throws; this worker is done
    Atomics.sub(ctl, ${ACTIVE}, 1);
    throw e;
  }
  Atomics.sub(ctl, ${ACTIVE}, 1);
}
`;

function workerThreads(): WorkerThreads | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return proc?.getBuiltinModule?.("node:worker_threads") as WorkerThreads | undefined;
  } catch {
    return undefined;
  }
}

/** Cores to use by default: os.availableParallelism() under Node, navigator.hardwareConcurrency elsewhere, else 1. */
export function defaultThreads(): number {
  const g = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown }; navigator?: { hardwareConcurrency?: number } };
  try {
    const os = g.process?.getBuiltinModule?.("node:os") as { availableParallelism?: () => number } | undefined;
    if (os?.availableParallelism) return os.availableParallelism();
  } catch {
    // not Node
  }
  return g.navigator?.hardwareConcurrency ?? 1;
}

/** Whether worker threads can run the shared-memory kernels here. */
export function threadsAvailable(): boolean {
  return workerThreads() !== undefined && typeof SharedArrayBuffer !== "undefined" && typeof Atomics !== "undefined";
}

export class WasmThreads {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  private readonly workers: WorkerLike[] = [];
  private readonly mems: WasmMemory[] = [];

  /** `threads` counts the calling thread; `spin`: polls of the control word before a worker sleeps. */
  constructor(module: WasmModule, readonly threads: number, spin = 50_000) {
    const wt = workerThreads();
    if (!wt) throw new Error("wasm threads: node:worker_threads is unavailable");
    for (let i = 1; i < threads; i++) {
      const w = new wt.Worker(WORKER, { eval: true, workerData: { module, ctl: this.ctl.buffer, spin } });
      w.unref(); // idle workers never keep the process alive
      w.on("error", () => {}); // reported through the FAILED word to the thread waiting on the matmul
      this.workers.push(w);
    }
  }

  /** Makes a memory known to the workers (before any matmul on it); returns its index. */
  add(mem: WasmMemory): number {
    let idx = this.mems.indexOf(mem);
    if (idx >= 0) return idx;
    idx = this.mems.push(mem) - 1;
    for (const w of this.workers) w.postMessage({ idx, memory: mem.memory });
    return idx;
  }

  /** Rows of out[T, N] from prepared activations, split over the calling thread and the workers. */
  matmulRows(mem: WasmMemory, type: number, w: number, xb: number, out: number, k: number, n: number, t: number): void {
    const c = this.ctl, idx = this.add(mem);
    if (Atomics.load(c, FAILED)) throw new Error("wasm threads: a worker failed; create the backend with threads: 1");
    const rpc = Math.ceil(n / Math.min(n, this.threads * 4, MAX_CHUNKS)), chunks = Math.ceil(n / rpc);
    c[MEM] = idx, c[TYPE] = type, c[W] = w, c[XB] = xb, c[OUT] = out, c[K] = k, c[N] = n, c[T] = t, c[RPC] = rpc;
    const gen = (Atomics.load(c, GEN) + 1) | 0;
    Atomics.store(c, CLAIM, ((gen & 0xff) << 24) | (chunks << 16)); // parameters first, then the claim word, then the wake
    Atomics.store(c, GEN, gen);
    Atomics.notify(c, GEN);
    const kern: WasmKernels = mem.k;
    for (;;) {
      const ch = Atomics.add(c, CLAIM, 1) & 0xffff;
      if (ch >= chunks) break;
      kern.matmul_rows(type, w, xb, out, k, n, t, ch * rpc, Math.min(n, ch * rpc + rpc));
    }
    while (Atomics.load(c, ACTIVE) > 0 && !Atomics.load(c, FAILED)); // workers inside a chunk of this job finish it
    if (Atomics.load(c, FAILED)) throw new Error("wasm threads: a worker failed during a matmul");
  }

  /** Stops the workers. */
  close(): void {
    Atomics.store(this.ctl, STOP, 1);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) void w.terminate();
  }
}
