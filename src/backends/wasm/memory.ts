// One wasm instance of the SIMD kernels over one linear memory (at most 4 GiB: wasm32 addresses), with a bump
// allocator for weights and a scratch region for activations. Weights larger than one memory go to further
// instances (see WasmBackend); nothing is freed until the backend is dropped.
import { KERNELS_SHARED_WASM_BASE64, KERNELS_WASM_BASE64 } from "./kernels.wasm.js";
import { writeIqTables } from "./iq-tables.js";

/** The kernels' exports (wasm/assembly/kernels.ts); pointers are byte offsets into the instance's memory. */
export interface WasmKernels {
  heapBase(): number;
  /** Where the host writes i-quant table `id` (see iq-tables.ts). */
  iqTable(id: number): number;
  quant_q8_0(x: number, y: number, n: number): void;
  quant_q8_K(x: number, y: number, n: number): void;
  rowBytes(type: number, k: number): number;
  actRowBytes(type: number, k: number): number;
  matmul(type: number, w: number, x: number, out: number, k: number, n: number, t: number, xq: number): void;
  /** Quantises x for `type` into xq; returns where the prepared rows are (xq, or x for float weights). */
  prep(type: number, x: number, xq: number, k: number, t: number): number;
  matmul_rows(type: number, w: number, xb: number, out: number, k: number, n: number, t: number, r0: number, r1: number): void;
  rms_norm(out: number, x: number, w: number, eps: number, len: number, nRows: number): void;
  add(out: number, a: number, b: number, n: number): void;
  swiglu(out: number, gate: number, up: number, n: number): void;
  rope(x: number, pos: number, nTok: number, nHead: number, hd: number, freqBase: number, cs: number): void;
  attention(out: number, q: number, k: number, v: number, nTok: number, startPos: number, nHead: number, nHeadKv: number, hd: number, scale: number, sc: number): void;
  // wasm/assembly/mla-linear.ts
  attention_ext(out: number, q: number, k: number, v: number, nTok: number, startPos: number, nHead: number, nHeadKv: number, hd: number, vd: number,
    scale: number, f16: number, sc: number, sinks: number, window: number): void;
  swiglu_oai(out: number, gate: number, up: number, n: number, alpha: number, limit: number): void;
  add_rows(out: number, bias: number, len: number, nRows: number): void;
  round_f16(x: number, n: number): void;
  scale_add_rows(out: number, x: number, scales: number, n: number, len: number): void;
  gated_delta_net(out: number, q: number, k: number, v: number, g: number, beta: number, state: number, nTok: number, nK: number, nV: number, s: number, tile: number): void;
  conv_silu(out: number, x: number, state: number, w: number, nTok: number, channels: number, taps: number): void;
  l2_norm(out: number, x: number, eps: number, len: number, nRows: number): void;
  rms_norm_gated(out: number, x: number, w: number, gate: number, eps: number, len: number, nRows: number): void;
  sigmoid_mul(out: number, x: number, gate: number, n: number): void;
  rope_table(x: number, cs: number, nTok: number, nHead: number, hd: number, nRot: number, off: number, norm: number): void;
}

// The few WebAssembly JS API members used here (the project's lib has no DOM / WebAssembly typings).
interface WasmMemoryObject { readonly buffer: ArrayBuffer; grow(pages: number): number }
type WasmModule = object;
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: object };
  Memory: new (desc: { initial: number; maximum: number; shared?: boolean }) => WasmMemoryObject;
}
const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
export type { WasmModule };

const PAGE = 65536;
/** The most one memory can hold: 65536 pages is 4 GiB, one page left off so a whole view stays < 2^32 bytes. */
export const MAX_MEMORY_BYTES = 65535 * PAGE;

let compiled: WasmModule | undefined;
let compileError: string | undefined;
let compiledShared: WasmModule | null | undefined;

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The compiled kernels module, or undefined if this runtime lacks WebAssembly or SIMD128 (see wasmKernelsError). */
export function kernelsModule(): WasmModule | undefined {
  if (compiled || compileError) return compiled;
  try {
    if (!api) throw new Error("no WebAssembly in this runtime");
    const bytes = decodeBase64(KERNELS_WASM_BASE64);
    if (!api.validate(bytes)) throw new Error("the kernels do not validate here (WebAssembly SIMD128 unsupported?)");
    compiled = new api.Module(bytes); // ~10 KB: synchronous compilation is allowed everywhere
  } catch (e) {
    compileError = (e as Error).message;
  }
  return compiled;
}

/** The kernels over a shared memory (for worker threads), or null where shared memory / atomics are unavailable. */
export function sharedKernelsModule(): WasmModule | null {
  if (compiledShared !== undefined) return compiledShared;
  compiledShared = null;
  try {
    if (api && kernelsModule() && typeof SharedArrayBuffer !== "undefined") {
      const bytes = decodeBase64(KERNELS_SHARED_WASM_BASE64);
      if (api.validate(bytes)) compiledShared = new api.Module(bytes);
    }
  } catch {
    compiledShared = null;
  }
  return compiledShared;
}

export function wasmKernelsError(): string | undefined {
  kernelsModule();
  return compileError;
}

/** Rounded up to 16 (arithmetic, not bit operations: offsets pass 2^31). */
const align16 = (n: number) => Math.ceil(n / 16) * 16;

export class WasmMemory {
  readonly memory: WasmMemoryObject;
  readonly k: WasmKernels;
  /** Next free byte for weights. */
  private top: number;
  private scratchPtr = 0;
  private scratchBytes = 0;

  /** `shared`: the memory is a shared one (module must be the shared-memory build), so worker threads can run on it. */
  constructor(module: WasmModule, readonly limit: number, readonly shared = false) {
    this.memory = new api!.Memory({ initial: 1, maximum: 65536, shared });
    this.k = new api!.Instance(module, { env: { memory: this.memory } }).exports as WasmKernels;
    // The i-quant tables sit just past the compiler's data, where every instance over this memory reads them.
    const reach = (end: number) => {
      const have = this.memory.buffer.byteLength;
      if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    };
    this.top = align16(Math.max(writeIqTables((id) => this.k.iqTable(id), reach, (p, n) => this.bytes(p, n)), 1024));
  }

  /** Bytes in use (weights and scratch). */
  get used(): number {
    return this.top;
  }

  /** Released ranges below `top` (weight arenas freed), reused first fit before the memory grows. */
  private readonly holes: { ptr: number; bytes: number }[] = [];

  /** Allocates `bytes` (16-byte aligned) from a released range or the top, growing the memory; undefined if it would pass the limit. */
  reserve(bytes: number): number | undefined {
    const want = align16(bytes);
    const h = this.holes.findIndex((x) => x.bytes >= want);
    if (h >= 0) {
      const hole = this.holes[h];
      const ptr = hole.ptr;
      if (hole.bytes === want) this.holes.splice(h, 1);
      else this.holes[h] = { ptr: ptr + want, bytes: hole.bytes - want };
      return ptr;
    }
    const ptr = this.top, end = align16(ptr + bytes);
    if (end > this.limit) return undefined;
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return ptr;
  }

  /** Gives back a range from reserve(): the top shrinks when it was last, else it is kept for reuse. */
  release(ptr: number, bytes: number): void {
    this.holes.push({ ptr, bytes: align16(bytes) });
    this.holes.sort((a, b) => a.ptr - b.ptr);
    for (let i = this.holes.length - 1; i > 0; i--) {
      const a = this.holes[i - 1], b = this.holes[i];
      if (a.ptr + a.bytes === b.ptr) this.holes.splice(i - 1, 2, { ptr: a.ptr, bytes: a.bytes + b.bytes });
    }
    const last = this.holes[this.holes.length - 1];
    if (last && last.ptr + last.bytes === this.top) {
      this.top = last.ptr;
      this.holes.pop();
    }
  }

  /** A scratch region of at least `bytes`, reused between calls (a larger request takes a fresh one). */
  scratch(bytes: number): number {
    if (bytes > this.scratchBytes) {
      const want = Math.max(bytes, 2 * this.scratchBytes);
      const ptr = this.reserve(want) ?? this.reserve(bytes);
      if (ptr === undefined) throw new RangeError(`wasm backend: no room for ${bytes} bytes of scratch in a memory of ${this.limit} bytes (${this.top} used)`);
      this.scratchPtr = ptr;
      this.scratchBytes = this.top - ptr;
    }
    return this.scratchPtr;
  }

  /** A view of the memory (made afresh: growing detaches the old ones). */
  bytes(ptr: number, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, length);
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }

  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, length);
  }

  /** ptr must be a multiple of 8. */
  f64(ptr: number, length: number): Float64Array {
    return new Float64Array(this.memory.buffer, ptr, length);
  }
}
