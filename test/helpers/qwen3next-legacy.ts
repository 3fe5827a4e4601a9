// A qwen3next file rewritten to the legacy layout older converters wrote: each DeltaNet layer's attn_qkv and
// attn_gate rows regrouped into one ssm_in, per key head [q (S rows) ‖ k (S) ‖ v of its r value heads (r·S) ‖ z of
// them (r·S)] (llama.cpp qwen3next.cpp build_qkvz, legacy path). Rows move whole, so every value is unchanged.
import { metaNumber } from "../../src/format/gguf/accessors.js";
import { tensorByteLength } from "../../src/format/gguf/ggml-types.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import type { RewriteTensor } from "./rewrite.js";

export function toLegacySsmIn(tensors: RewriteTensor[], md: GGUFMetadata): RewriteTensor[] {
  const S = metaNumber(md, "qwen3next.ssm.state_size"), nK = metaNumber(md, "qwen3next.ssm.group_count"), nV = metaNumber(md, "qwen3next.ssm.time_step_rank");
  const r = nV / nK, keyDim = nK * S;
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const out: RewriteTensor[] = [];
  for (const t of tensors) {
    const m = /^blk\.(\d+)\.attn_qkv\.weight$/.exec(t.name);
    if (m) {
      const gate = byName.get(`blk.${m[1]}.attn_gate.weight`)!;
      const rb = tensorByteLength(t.type, [t.shape[0], 1]); // one row's bytes
      const rows = (w: RewriteTensor, from: number, n: number) => w.data.subarray(from * rb, (from + n) * rb);
      const parts: Uint8Array[] = [];
      for (let g = 0; g < nK; g++) {
        parts.push(rows(t, g * S, S), rows(t, keyDim + g * S, S), rows(t, 2 * keyDim + g * r * S, r * S), rows(gate, g * r * S, r * S));
      }
      const data = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
      parts.reduce((at, p) => (data.set(p, at), at + p.byteLength), 0);
      out.push({ name: `blk.${m[1]}.ssm_in.weight`, type: t.type, shape: [t.shape[0], 2 * keyDim + 2 * nV * S], data });
    } else if (!/^blk\.\d+\.attn_gate\.weight$/.test(t.name)) out.push(t);
  }
  return out;
}
