/// <reference types="@webgpu/types" />
// The WebGPU backend's handles: activation buffers, and the checks that a buffer or weight came from it.
import type { Buf, Weight } from "../backend.js";
import { GpuSplitWeight, GpuWeight } from "./arena.js";

export class GpuBuf implements Buf {
  constructor(readonly buffer: GPUBuffer, readonly length: number) {}
}

export function gbuf(b: Buf): GpuBuf {
  if (!(b instanceof GpuBuf)) throw new TypeError("webgpu backend: buffer was not allocated by this backend");
  return b;
}

export function gw(w: Weight, op: string): GpuWeight {
  if (w instanceof GpuSplitWeight) throw new RangeError(`webgpu ${op}: weight '${w.name}' is larger than the adapter binds at once, bound as ${w.parts.length} runs of rows; only matmul and embed take it`);
  if (!(w instanceof GpuWeight)) throw new TypeError(`webgpu ${op}: weight '${w.name}' was not bound by the webgpu backend`);
  return w;
}

/** A weight as runs of its rows, each with its first row: itself whole, or a GpuSplitWeight's runs (matmul and embed take both). */
export function rowRuns(w: Weight, op: string): readonly { readonly w: GpuWeight; readonly row0: number }[] {
  return w instanceof GpuSplitWeight ? w.parts : [{ w: gw(w, op), row0: 0 }];
}

const f32Bits = new Float32Array(1), u32Bits = new Uint32Array(f32Bits.buffer);
/** A float parameter as the u32 word WGSL reads back with its struct's f32 field. */
export function f32Word(x: number): number {
  f32Bits[0] = x;
  return u32Bits[0];
}

/** ggml's type id of F32 (norm weights, biases, sinks: the ops that take only F32 check it). */
export const F32 = 0;
