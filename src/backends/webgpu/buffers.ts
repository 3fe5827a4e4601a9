/// <reference types="@webgpu/types" />
// The WebGPU backend's handles: activation buffers, and the checks that a buffer or weight came from it.
import type { Buf, Weight } from "../backend.js";
import { GpuWeight } from "./arena.js";

export class GpuBuf implements Buf {
  constructor(readonly buffer: GPUBuffer, readonly length: number) {}
}

export function gbuf(b: Buf): GpuBuf {
  if (!(b instanceof GpuBuf)) throw new TypeError("webgpu backend: buffer was not allocated by this backend");
  return b;
}

export function gw(w: Weight, op: string): GpuWeight {
  if (!(w instanceof GpuWeight)) throw new TypeError(`webgpu ${op}: weight '${w.name}' was not bound by the webgpu backend`);
  return w;
}
