// Fused layouts as llama.cpp's converter writes them (--fuse-qkv, --fuse-gate-up-exps): a layer's attn_q, attn_k
// and attn_v become one attn_qkv (rows q ‖ k ‖ v; their biases one attn_qkv.bias), its ffn_gate_exps and
// ffn_up_exps one ffn_gate_up_exps (per expert its gate rows, then its up rows). Bytes move whole rows, so a fused
// file holds exactly the values of the split one made from the same seed.
import { getTensor, metaString } from "../format/gguf/accessors.js";
import { tensorByteLength } from "../format/gguf/ggml-types.js";
import { openGGUF, readTensorBytes } from "../format/gguf/read.js";
import { writeGGUF } from "../format/gguf/write.js";
import { architecture, type Architecture } from "../models/registry.js";
import { UsageError } from "../util/errors.js";

/** A tensor as the generator writes it: bytes made on demand. */
export interface GenTensor {
  name: string;
  shape: number[];
  type: number;
  data: () => Uint8Array | Promise<Uint8Array>;
}

export type Fusion = "qkv" | "gate_up";
export const FUSIONS: readonly Fusion[] = ["qkv", "gate_up"];

/**
 * `tensors` with the fusions in `which` applied wherever all the parts are there and `accepts` (the architecture
 * declares the fused name for this file); the fused tensor takes the first part's place.
 */
export function fuseTensors(tensors: readonly GenTensor[], which: readonly Fusion[], accepts: (name: string) => boolean): GenTensor[] {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const fused = new Map<string, GenTensor>(); // first part's name -> the fused tensor
  const dropped = new Set<string>();
  const fuse = (to: string, parts: string[], perExpert: boolean) => {
    const ts = parts.map((p) => byName.get(p));
    if (ts.some((t) => !t) || !accepts(to)) return;
    const [a, ...rest] = ts as GenTensor[];
    const odd = rest.find((t) => t.type !== a.type || t.shape.length !== a.shape.length || (t.shape.length > 1 && (t.shape[0] !== a.shape[0] || t.shape[2] !== a.shape[2])));
    if (odd) throw new UsageError("bad_option", `cannot fuse '${odd.name}' into '${to}': its type or shape [${odd.shape.join(", ")}] differs from '${a.name}''s [${a.shape.join(", ")}]`);
    const rows = (ts as GenTensor[]).map((t) => (t.shape.length === 1 ? t.shape[0] : t.shape[1])); // a bias: values
    const N = rows.reduce((x, y) => x + y, 0);
    const shape = a.shape.length === 1 ? [N] : perExpert ? [a.shape[0], N, a.shape[2]] : [a.shape[0], N];
    const rowBytes = a.shape.length === 1 ? tensorByteLength(a.type, [1]) : tensorByteLength(a.type, [a.shape[0], 1]);
    const nExpert = perExpert ? a.shape[2] : 1;
    fused.set(a.name, {
      name: to, shape, type: a.type,
      data: async () => {
        const src = await Promise.all((ts as GenTensor[]).map((t) => t.data()));
        const out = new Uint8Array(nExpert * N * rowBytes);
        let at = 0;
        for (let e = 0; e < nExpert; e++) {
          src.forEach((b, i) => {
            const n = rows[i] * rowBytes;
            out.set(b.subarray(e * n, (e + 1) * n), at);
            at += n;
          });
        }
        return out;
      },
    });
    for (const p of parts) dropped.add(p);
  };
  for (const t of tensors) {
    const m = /^blk\.(\d+)\.(attn_q|ffn_gate_exps)\.(weight|bias)$/.exec(t.name);
    if (!m) continue;
    const n = (name: string) => `blk.${m[1]}.${name}.${m[3]}`;
    if (m[2] === "attn_q" && which.includes("qkv")) fuse(n("attn_qkv"), [n("attn_q"), n("attn_k"), n("attn_v")], false);
    if (m[2] === "ffn_gate_exps" && which.includes("gate_up")) fuse(n("ffn_gate_up_exps"), [n("ffn_gate_exps"), n("ffn_up_exps")], true);
  }
  return tensors.flatMap((t) => fused.get(t.name) ?? (dropped.has(t.name) ? [] : [t]));
}

/** The fused tensor names `arch` declares for hp (its layout probes all answered "present"). */
export function fusedNamesAccepted(arch: Architecture, hp: unknown): (name: string) => boolean {
  const t = arch.tensors(hp, () => true);
  const declared = new Set([...t.dense, ...t.unused, ...t.experts.flatMap((parts) => Object.values(parts ?? {}))].map((s) => s.name));
  return (name) => declared.has(name);
}

/** The GGUF at `src` rewritten to `dst` with `which` fused where its architecture takes them (a converter's --fuse-* on an existing file). */
export async function fuseModel(src: string, dst: string, which: readonly Fusion[]): Promise<void> {
  const f = await openGGUF(src);
  try {
    const arch = architecture(metaString(f, "general.architecture"));
    const hp = arch.readHParams(f.metadata, getTensor(f, "token_embd.weight").shape[1]);
    const tensors = f.tensors.map((t): GenTensor => ({ name: t.name, shape: [...t.shape], type: t.type, data: () => readTensorBytes(f, t) }));
    const md = new Map(f.metadata);
    md.delete("general.alignment"); // the writer records its own
    await writeGGUF(dst, { metadata: md, tensors: fuseTensors(tensors, which, fusedNamesAccepted(arch, hp)) });
  } finally {
    await f.source.close();
  }
}
