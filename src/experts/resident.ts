// Every expert in memory: slices of each layer's stacked [nEmbd, nFf, nExpert] tensors, prepared once.
import type { Backend, HostWeight } from "../backends/backend.js";
import type { ExpertSource, ExpertWeights } from "./source.js";

/** A layer's three stacked expert tensors as read from the model file. */
export interface StackedExperts {
  gate: HostWeight; // [nEmbd, nFf, nExpert]
  up: HostWeight; // [nEmbd, nFf, nExpert]
  down: HostWeight; // [nFf, nEmbd, nExpert]
}

/** Expert e of a stacked [K, N, nExpert] tensor as a 2-D [K, N] weight sharing the same bytes. */
export function expertSlice(w: HostWeight, e: number): HostWeight {
  const [k, n, nExpert] = w.shape;
  if (e < 0 || e >= nExpert) throw new RangeError(`expert ${e} out of range for '${w.name}' with ${nExpert} experts`);
  const bytesPer = w.bytes.byteLength / nExpert;
  return { name: `${w.name}[${e}]`, type: w.type, shape: [k, n], bytes: w.bytes.subarray(e * bytesPer, (e + 1) * bytesPer) };
}

export class ResidentExperts implements ExpertSource {
  private readonly layers: ExpertWeights[][];

  constructor(backend: Backend, stacked: StackedExperts[]) {
    this.layers = stacked.map((l) => {
      const nExpert = l.gate.shape[2];
      return Array.from({ length: nExpert }, (_, e) => ({
        gate: backend.upload(expertSlice(l.gate, e)),
        up: backend.upload(expertSlice(l.up, e)),
        down: backend.upload(expertSlice(l.down, e)),
      }));
    });
  }

  async acquire(layer: number, ids: readonly number[]): Promise<ExpertWeights[]> {
    const l = this.layers[layer];
    return ids.map((e) => l[e]);
  }

  release(): void {}
}
