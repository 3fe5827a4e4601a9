/// <reference types="@webgpu/types" />
// The rope ops' cos/sin tables on the device, computed in f64 on the host as the reference computes them. A
// prompt's positions get a table of their own, uploaded once per positions array (every layer ropes q and k at the
// same positions). A decode token's one position reads a row of a table shared by ROPE_CHUNK positions, so the
// buffer, and every bind group holding it, stays the same from token to token (a table a token cost a buffer and,
// in each layer, a new bind group: ~70 µs of host a layer on the H100, session 16).
import type { YarnParams } from "../backend.js";
import { ropeAngles } from "../backend.js";

const COPY_DST = 0x08, STORAGE = 0x80;
/** Decode positions a shared table holds: 4096 x 64 pairs of a3b's heads = 2 MiB a buffer. */
export const ROPE_CHUNK = 4096;

export class RopeTables {
  /** Prompt tables by position array, then by rope parameters. */
  private readonly byPositions = new WeakMap<Int32Array, Map<string, GPUBuffer>>();
  /** Decode's tables, ROPE_CHUNK positions a buffer, by rope parameters and chunk. */
  private readonly chunks = new Map<string, GPUBuffer>();

  constructor(private readonly device: GPUDevice) {}

  /** The table for `pos` (pairs of cos, sin; `half` pairs a row) and the word where pos[0]'s row starts in it. */
  table(pos: Int32Array, half: number, nRot: number, base: number, yarn?: YarnParams): { tab: GPUBuffer; tb: number } {
    const key = `${nRot}/${base}${yarn ? `/${JSON.stringify(yarn)}` : ""}`;
    // A fresh buffer of n rows, row t position posOf(t) (no recorded op reads it yet, so a queue write is in order).
    const upload = (n: number, posOf: (t: number) => number) => {
      const angle = ropeAngles(nRot, base, yarn), tab = new Float32Array(n * half * 2);
      for (let t = 0; t < n; t++) {
        for (let i = 0; i < half; i++) {
          const { cos, sin } = angle(posOf(t), i);
          tab[2 * (t * half + i)] = cos;
          tab[2 * (t * half + i) + 1] = sin;
        }
      }
      const b = this.device.createBuffer({ size: Math.max(16, tab.byteLength), usage: STORAGE | COPY_DST });
      this.device.queue.writeBuffer(b, 0, tab);
      return b;
    };
    if (pos.length === 1 && pos[0] >= 0) {
      const chunk = Math.floor(pos[0] / ROPE_CHUNK), ck = `${key}#${chunk}`;
      let b = this.chunks.get(ck);
      if (!b) this.chunks.set(ck, (b = upload(ROPE_CHUNK, (t) => chunk * ROPE_CHUNK + t)));
      return { tab: b, tb: (pos[0] % ROPE_CHUNK) * half * 2 };
    }
    let byKey = this.byPositions.get(pos);
    if (!byKey) this.byPositions.set(pos, (byKey = new Map()));
    let b = byKey.get(key);
    if (!b) byKey.set(key, (b = upload(pos.length, (t) => pos[t])));
    return { tab: b, tb: 0 };
  }
}
