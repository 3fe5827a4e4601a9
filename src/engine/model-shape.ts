// What a model costs, from its GGUF header alone (and a pack's manifest): dense bytes, each layer's expert record,
// and the bytes one decoded token touches, by quant type. doctor forecasts from it; nothing here reads weights.
import { ggmlTypeName } from "../format/gguf/ggml-types.js";
import { getMeta, getTensor, metaNumber, metaString } from "../format/gguf/read.js";
import type { GGUFFile } from "../format/gguf/types.js";
import { planExpertLayers, type ExpertPart } from "../experts/pack-format.js";
import { architecture } from "../models/registry.js";
import type { ModelInfo } from "../models/model.js";
import { namingFile } from "../util/errors.js";
import { expertBytesByType, type ExpertTypeBytes } from "./expert-bytes.js";
import { tensorsHeld } from "./model-check.js";

/** One layer's routed experts as the engine stores them: records of recordBytes (4 KiB multiples) holding these parts. */
export interface ExpertLayerShape {
  layer: number;
  experts: number;
  recordBytes: number;
  parts: readonly ExpertPart[];
}

export interface ModelShape {
  arch: string;
  info: ModelInfo;
  /** Per-sequence state (KV cache) of n tokens. */
  stateBytes(nCtx: number): number;
  /** Dense tensors the architecture loads (everything but the routed experts). */
  denseBytes: number;
  /** All routed experts' records (padding included: what a resident load holds). */
  expertBytes: number;
  /** The widest record: one cache slot. */
  slotBytes: number;
  layers: ExpertLayerShape[];
  perExpert: ExpertTypeBytes[];
  /**
   * Weight bytes one decoded token reads, by ggml type name: every dense tensor but the embedding table (one row
   * of it; all of it where the output head is tied to it), and nExpertUsed experts' parts in every MoE layer.
   */
  tokenBytes: Record<string, number>;
  /** Of tokenBytes, the routed experts' share (what streaming may have to read). */
  tokenExpertBytes: number;
  /**
   * For the prefill forecast: bytes of the dense matrices every prompt token is multiplied by (the embedding table
   * and the output head left out: a prompt's logits are its last token's), by type; the output head; and the
   * attention layers with their query width (heads x key length), whose cost grows with the context.
   */
  matmulBytes: Record<string, number>;
  head: { type: string; bytes: number };
  attention: { layers: number; width: number; nHead: number; nHeadKv: number; headDim: number };
}

/** `packLayers`: a pack's records (its manifest); absent for a GGUF, whose records the engine plans from the tensors. */
export function modelShape(file: GGUFFile, packLayers?: readonly ExpertLayerShape[]): ModelShape {
  const where = file.source.name;
  const archName = metaString(file, "general.architecture");
  const arch = architecture(archName);
  const embd = getTensor(file, "token_embd.weight");
  const hp = namingFile(where, () => arch.readHParams(file.metadata, embd.shape[1]));
  const info = arch.info(hp);
  const { dense, experts } = arch.tensors(hp, tensorsHeld(file, packLayers?.map((l) => l.parts)));
  const layers: ExpertLayerShape[] = packLayers ? [...packLayers] : planExpertLayers(file, experts).map(({ layer, experts: n, recordBytes, parts }) => ({ layer, experts: n, recordBytes, parts }));
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const tokenBytes: Record<string, number> = {};
  const add = (type: number, bytes: number) => {
    const name = ggmlTypeName(type);
    tokenBytes[name] = (tokenBytes[name] ?? 0) + bytes;
  };
  let denseBytes = 0;
  const tied = !byName.has("output.weight");
  for (const spec of dense) {
    const t = byName.get(spec.name);
    if (!t) continue;
    denseBytes += t.byteLength;
    // The embedding is a row lookup, unless it doubles as the output head.
    add(t.type, t.name === "token_embd.weight" && !tied ? t.byteLength / t.shape[1] : t.byteLength);
  }
  const head = byName.get("output.weight") ?? embd;
  const matmulBytes: Record<string, number> = {};
  const attnLayers = new Set<number>();
  for (const spec of dense) {
    const t = byName.get(spec.name);
    if (!t || t === embd || t === head || t.shape.length < 2 || t.shape[1] < 2) continue;
    matmulBytes[ggmlTypeName(t.type)] = (matmulBytes[ggmlTypeName(t.type)] ?? 0) + t.byteLength;
    const a = /^blk\.(\d+)\.attn_(?:q|qkv|q_a)\.weight$/.exec(t.name);
    if (a) attnLayers.add(Number(a[1]));
  }
  const heads = headCount(file, `${archName}.attention.head_count`);
  const keyLength = metaNumber(file, `${archName}.attention.key_length`, { default: heads ? info.nEmbd / heads : 0 });
  const kvHeads = headCount(file, `${archName}.attention.head_count_kv`) || heads;
  let tokenExpertBytes = 0;
  for (const l of layers) {
    for (const p of l.parts) {
      add(p.type, info.nExpertUsed * p.byteLength);
      tokenExpertBytes += info.nExpertUsed * p.byteLength;
    }
  }
  const perExpert = expertBytesByType(layers.flatMap((l) => l.parts.map((p) => ({ layer: l.layer, part: p.name, type: ggmlTypeName(p.type), bytes: p.byteLength }))));
  return {
    arch: archName, info, stateBytes: (n) => arch.cacheBytes(hp, n), denseBytes,
    expertBytes: layers.reduce((a, l) => a + l.recordBytes * l.experts, 0),
    slotBytes: Math.max(0, ...layers.map((l) => l.recordBytes)),
    layers, perExpert, tokenBytes, tokenExpertBytes,
    matmulBytes, head: { type: ggmlTypeName(head.type), bytes: head.byteLength }, attention: { layers: attnLayers.size, width: heads * keyLength, nHead: heads, nHeadKv: kvHeads, headDim: keyLength },
  };
}

/** Heads: one number, or per layer (the widest). */
function headCount(file: GGUFFile, key: string): number {
  const v = getMeta(file, key);
  if (!v) return 0;
  if (v.type === "array") return Math.max(0, ...(v.value as unknown[]).map(Number).filter(Number.isFinite));
  return Number(v.value);
}
