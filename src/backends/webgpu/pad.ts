/// <reference types="@webgpu/types" />
// Opt-in pads (--gpu-keep-busy): the GPU kept busy where a split layer leaves it idle (its experts done, the host's
// sum not yet in; a read's map under way), by one workgroup spinning dependent FMAs. The driver sets a Vulkan
// workload's clock by how busy the GPU is: the split tier's decode ran at 345-540 MHz of 1980 on an H100
// (session 19), and one workgroup spinning all the time held 1980 (session 20). Costs power.
import type { Recorder } from "./recorder.js";

const STORAGE = 0x80;

/**
 * One workgroup spinning p.iters dependent FMAs, writing nothing (unless the sum hits an exact value it never does):
 * the GPU kept busy through a window it would idle in.
 */
export const PAD_WGSL = /* wgsl */ `
struct P { iters: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_id) l: vec3u) {
  var x = f32(l.x) * 1e-6;
  var y = 1.0;
  for (var i = 0u; i < p.iters; i++) { y = fma(y, 0.999999, x); x = fma(x, 1.000001, y * 1e-7); }
  if (y == 12345.0) { o[0] = x; }
}`;

export class GpuPad {
  /** The spin's iterations a pad; 0: off. */
  iters = 0;
  private buf: GPUBuffer | undefined;

  constructor(private readonly device: GPUDevice, private readonly rec: Recorder) {}

  /** A spin of `iters` recorded, and submitted on its own if `alone`. */
  record(alone: boolean, iters = this.iters): void {
    this.buf ??= this.device.createBuffer({ size: 256, usage: STORAGE });
    this.rec.dispatch("pad", () => PAD_WGSL, [iters], [this.buf], 1);
    if (alone) this.rec.flush();
  }

  /**
   * Pads of about `us` µs (iters from the spin's time measured now; at a clock the driver has lowered they come out
   * shorter, never longer, once it rises). 0: none.
   */
  async calibrate(us: number): Promise<void> {
    if (!(us > 0)) return void (this.iters = 0);
    this.rec.flush();
    const time = async (iters: number) => {
      const t = performance.now();
      this.record(true, iters);
      await this.device.queue.onSubmittedWorkDone();
      return performance.now() - t;
    };
    let long = Infinity, short = Infinity;
    for (let i = 0; i < 3; i++) (long = Math.min(long, await time(20000))), (short = Math.min(short, await time(1)));
    // The spin's own time: less the round trip, but never under half what the round trip took with it (a noisy
    // round trip must not make the pads long).
    const ms = Math.max(long - short, long / 2);
    this.iters = Math.max(1, Math.round((us / 1000 / ms) * 20000));
  }
}
