// An expert's weights as views of its record's parts: shared by the host cache (streaming-source.ts) and the
// device tier (device-tier.ts), which each place the record's bytes their own way.
import type { Weight, WeightDesc } from "../backends/backend.js";
import type { ExpertPart } from "./pack-format.js";
import type { ExpertWeights } from "./source.js";

/** What acquireMade() keeps with a cached record: weights over its bytes and how to give the bytes back as read. */
export interface MadeWeights {
  readonly weights: ExpertWeights;
  /** Put the record's bytes back as read (a repack undone); the weights are not used again. */
  undo(): void;
}

/** The weights a record part gives the model: itself, or each part of its split as a view of its rows (offsets inside the part). */
export function partViews(p: ExpertPart): { name: string; suffix: string; shape: number[]; offset: number; byteLength: number }[] {
  if (!p.split) return [{ name: p.name, suffix: "", shape: p.shape, offset: 0, byteLength: p.byteLength }];
  const rowBytes = p.byteLength / p.shape[1]; // rows are whole blocks
  let row = 0;
  return p.split.map((s) => {
    const v = { name: s.name, suffix: `.${s.name}`, shape: [p.shape[0], s.rows], offset: row * rowBytes, byteLength: s.rows * rowBytes };
    row += s.rows;
    return v;
  });
}

/**
 * Expert `e`'s weights from its record's parts (partViews of each), each made by `make` from its description and
 * its bytes' place in the record [at, at + byteLength).
 */
export function recordWeights(parts: readonly ExpertPart[], e: number, make: (desc: WeightDesc, at: number, byteLength: number) => Weight): ExpertWeights {
  const w: Record<string, Weight> = {};
  for (const p of parts) {
    for (const v of partViews(p)) w[v.name] = make({ name: `${p.tensor}[${e}]${v.suffix}`, type: p.type, shape: v.shape }, p.offset + v.offset, v.byteLength);
  }
  return w;
}
