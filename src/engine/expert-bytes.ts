// Bytes per expert per quant type: what one routed expert costs to read, split by the types its parts are stored
// in (mixed files give ffn_down a wider type on some layers), averaged over the layers with experts.
import { formatBytes } from "../util/bytes.js";

/** One part (gate, up, down, ...) of one expert of one layer. */
export interface ExpertPartBytes {
  layer: number;
  part: string;
  /** ggml type name. */
  type: string;
  /** Bytes of this part for one expert. */
  bytes: number;
}

export interface ExpertTypeBytes {
  type: string;
  /** Mean over the layers with experts of one expert's bytes in this type (the types' figures add up to the mean record). */
  bytesPerExpert: number;
  /** Which parts, and on how many of the layers, are stored in this type. */
  parts: { part: string; layers: number }[];
}

/** Per type, widest share first. */
export function expertBytesByType(parts: readonly ExpertPartBytes[]): ExpertTypeBytes[] {
  const nLayers = new Set(parts.map((p) => p.layer)).size;
  const byType = new Map<string, { bytes: number; parts: Map<string, number> }>();
  for (const p of parts) {
    const t = byType.get(p.type) ?? { bytes: 0, parts: new Map<string, number>() };
    t.bytes += p.bytes;
    t.parts.set(p.part, (t.parts.get(p.part) ?? 0) + 1);
    byType.set(p.type, t);
  }
  return [...byType]
    .map(([type, t]) => ({ type, bytesPerExpert: t.bytes / Math.max(1, nLayers), parts: [...t.parts].map(([part, layers]) => ({ part, layers })) }))
    .sort((a, b) => b.bytesPerExpert - a.bytesPerExpert);
}

/** "1.05 MiB per expert: IQ2_XXS 0.66 MiB (gate, up 40/48 layers), ..." */
export function formatExpertBytes(types: readonly ExpertTypeBytes[], nLayers: number): string {
  const total = types.reduce((a, t) => a + t.bytesPerExpert, 0);
  const each = types.map((t) => {
    const parts = t.parts.map((p) => (p.layers === nLayers ? p.part : `${p.part} ${p.layers}/${nLayers} layers`)).join(", ");
    return `${t.type} ${formatBytes(t.bytesPerExpert)} (${parts})`;
  });
  return `${formatBytes(total)} per expert: ${each.join(", ")}`;
}

/** The parts of a GGUF's stacked expert tensors (blk.N.ffn_<part>_exps.weight, [K, N, nExpert]). */
export function ggufExpertParts(tensors: readonly { name: string; type: string; shape: number[]; byteLength: number }[]): ExpertPartBytes[] {
  const out: ExpertPartBytes[] = [];
  for (const t of tensors) {
    const m = /^blk\.(\d+)\.ffn_(\w+?)_exps\.weight$/.exec(t.name);
    if (!m || t.shape.length < 3) continue;
    out.push({ layer: Number(m[1]), part: m[2], type: t.type, bytes: t.byteLength / t.shape[t.shape.length - 1] });
  }
  return out;
}
