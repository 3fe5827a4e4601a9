// Inspect a GGUF as an engine operation: metadata, tensors by type name, and the expert vs dense split.
import { ggmlTypeName } from "../format/gguf/ggml-types.js";
import { openGGUF } from "../format/gguf/read.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { expertBytesByType, ggufExpertParts, type ExpertTypeBytes } from "./expert-bytes.js";

export type { GGUFMetaValue } from "../format/gguf/types.js";

export interface TensorSummary {
  name: string;
  /** ggml type name, e.g. Q8_0. */
  type: string;
  shape: number[];
  offset: number;
  byteLength: number;
}

export interface GGUFSummary {
  version: number;
  alignment: number;
  metadata: GGUFMetadata;
  tensors: TensorSummary[];
  expertBytes: number;
  denseBytes: number;
  /** One routed expert's bytes by quant type, averaged over the layers with experts. */
  perExpert: ExpertTypeBytes[];
  /** Layers with routed experts. */
  expertLayers: number;
}

/** Reads a GGUF's header (no tensor data) and closes it. */
export async function inspectGGUF(path: string): Promise<GGUFSummary> {
  const f = await openGGUF(path);
  try {
    const isExpert = (name: string) => /_exps\.weight$/.test(name);
    const expertBytes = f.tensors.filter((t) => isExpert(t.name)).reduce((a, t) => a + t.byteLength, 0);
    const denseBytes = f.tensors.filter((t) => !isExpert(t.name)).reduce((a, t) => a + t.byteLength, 0);
    const tensors = f.tensors.map((t) => ({ name: t.name, type: ggmlTypeName(t.type), shape: t.shape, offset: t.offset, byteLength: t.byteLength }));
    const parts = ggufExpertParts(tensors);
    const expertLayers = new Set(parts.map((p) => p.layer)).size;
    return { version: f.version, alignment: f.alignment, metadata: f.metadata, tensors, expertBytes, denseBytes, perExpert: expertBytesByType(parts), expertLayers };
  } finally {
    await f.source.close();
  }
}
