// Named quant mixes for the generator: the type of each weight matrix by its name and layer, as llama.cpp's
// llama_model_quantize assigns them for an ftype (src/llama-quant.cpp, llama_tensor_get_type_impl), plus a UD-like
// dynamic mix of our own. The rules are applied over the file's tensors in file order, as llama.cpp's counters
// (i_attention_wv, i_ffn_down) run over them. Norms, routers and ssm_conv1d stay F32 (generate.ts decides that).
//   q4_k_m  llama.cpp Q4_K_M: Q4_K; attn_v and ffn_down* Q6_K on use_more_bits layers (the first and last
//           eighth, every third between); output Q6_K (tied token_embd too); 8-expert models attn_v/attn_k Q8_0,
//           attn_output Q5_K.
//   q2_k    llama.cpp Q2_K, with the routed ffn_down_exps at IQ3_XXS where llama.cpp writes Q3_K (the "Q2_K /
//           IQ3_XXS" mix): Q2_K; attn_v Q4_K (n_gqa >= 4) else Q3_K; attn_output Q3_K; other ffn_down* Q3_K;
//           output Q6_K.
//   iq2_xxs llama.cpp IQ2_XXS: IQ2_XXS; attn_v Q4_K (n_gqa >= 4 or >= 4 experts) else Q2_K; the first eighth of
//           ffn_down* tensors Q2_K; token_embd Q2_K; output Q5_K. llama.cpp would write the other dense matrices
//           (attn_q/k/output) IQ2_XXS with an importance matrix; moestream cannot quantise to i-quants, so dense
//           tensors a rule gives an i-quant get the K-quant of the same bits (IQ1/IQ2 -> Q2_K, IQ3 -> Q3_K,
//           IQ4 -> Q4_K); routed experts are sampled in the i-quant itself (gen/direct-iq.ts).
//   ud      UD-like dynamic mix (ours, after Unsloth's dynamic quants): routed ffn_gate/up_exps IQ2_XXS, IQ3_XXS on
//           use_more_bits layers; ffn_down_exps one step higher (IQ3_XXS, IQ4_XS on those layers); attn_v (and
//           attn_qkv, attn_kv_b) and shared / dense FFN tensors Q6_K, every other matrix (attention, MLA,
//           DeltaNet projections) Q4_K; token_embd Q6_K, output Q8_0 (a tied token_embd Q8_0).
// A rule's type that does not fit a tensor's rows falls back as llama.cpp's tensor_type_fallback does (256-block
// K-quants to Q4_0/Q5_0/Q5_1/Q8_0, i-quants to IQ4_NL (Q4_0 when dense), then F16).
import { quantByName } from "../quant/index.js";

export const MIX_NAMES = ["q4_k_m", "q2_k", "iq2_xxs", "ud"] as const;
export type MixName = (typeof MIX_NAMES)[number];

export function isMixName(s: string): s is MixName {
  return (MIX_NAMES as readonly string[]).includes(s);
}

/** llama.cpp's llama_ftype for general.file_type (ud: IQ2_XXS, its experts' main type). */
export const MIX_FILE_TYPE: Record<MixName, number> = { q4_k_m: 15, q2_k: 10, iq2_xxs: 19, ud: 19 };

export interface MixModel {
  nLayer: number;
  nExpert: number;
  /** Query heads per KV head (1 where the architecture has no such ratio). */
  nGqa: number;
  /** token_embd doubles as the output projection (no output.weight). */
  tied: boolean;
}

/** A quantisable matrix of the file, in file order; expert: a routed ffn_*_exps tensor. */
export interface MixTensor {
  name: string;
  shape: number[];
  expert: boolean;
}

type Category = "output" | "token_embd" | "attn_v" | "attn_k" | "attn_q" | "attn_output" | "ffn_up" | "ffn_gate" | "ffn_down" | "other";

// llama.cpp's tensor_get_category (by substring, in its order).
function category(name: string, tied: boolean): Category {
  if (name === "output.weight") return "output";
  if (name.startsWith("token_embd")) return tied ? "output" : "token_embd";
  if (/attn_(qkv|kv_b|v)\.weight/.test(name)) return "attn_v";
  if (name.includes("attn_k.weight")) return "attn_k";
  if (name.includes("attn_q.weight")) return "attn_q";
  if (name.includes("attn_output.weight")) return "attn_output";
  if (name.includes("ffn_up")) return "ffn_up";
  if (name.includes("ffn_gate")) return "ffn_gate";
  if (name.includes("ffn_down")) return "ffn_down";
  return "other";
}

const layerOf = (name: string) => Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);

/** llama.cpp's use_more_bits: the first and last eighth of the layers and every third one between. */
export function useMoreBits(i: number, n: number): boolean {
  const e = Math.trunc(n / 8);
  return i < e || i >= Math.trunc((7 * n) / 8) || (i - e) % 3 === 2;
}

// llama.cpp's tensor_type_fallback for rows that are not whole blocks of the chosen type.
const FALLBACK: Record<string, string> = {
  Q2_K: "Q4_0", Q3_K: "Q4_0", Q4_K: "Q5_0", Q5_K: "Q5_1", Q6_K: "Q8_0",
  IQ1_S: "IQ4_NL", IQ1_M: "IQ4_NL", IQ2_XXS: "IQ4_NL", IQ2_XS: "IQ4_NL", IQ2_S: "IQ4_NL", IQ3_XXS: "IQ4_NL", IQ3_S: "IQ4_NL", IQ4_XS: "IQ4_NL",
};

// The K-quant of an i-quant's bits, for dense tensors (moestream cannot quantise to i-quants).
const DENSE_SUBSTITUTE: Record<string, string> = {
  IQ1_S: "Q2_K", IQ1_M: "Q2_K", IQ2_XXS: "Q2_K", IQ2_XS: "Q2_K", IQ2_S: "Q2_K", IQ3_XXS: "Q3_K", IQ3_S: "Q3_K", IQ4_XS: "Q4_K", IQ4_NL: "Q4_0",
};

function fitted(type: string, t: MixTensor): string {
  if (!t.expert && DENSE_SUBSTITUTE[type]) type = DENSE_SUBSTITUTE[type];
  const fits = (ty: string) => t.shape[0] % quantByName(ty).blockSize === 0;
  if (fits(type)) return type;
  const fb = FALLBACK[type];
  if (fb && fits(fb) && !(fb === "IQ4_NL" && !t.expert)) return fb;
  return "F16";
}

/** Each tensor's type name under `mix`. */
export function mixTypes(mix: MixName, tensors: readonly MixTensor[], m: MixModel): Map<string, string> {
  const cats = tensors.map((t) => category(t.name, m.tied));
  const nAttnV = cats.filter((c) => c === "attn_v").length;
  const nFfnDown = m.nLayer; // llama.cpp: n_ffn_down = n_layer_all, whatever the count of ffn_down tensors
  let iAttnV = 0, iFfnDown = 0;
  const out = new Map<string, string>();
  tensors.forEach((t, k) => {
    const cat = cats[k];
    const layer = layerOf(t.name);
    const e8 = m.nExpert === 8;
    let type: string;
    switch (mix) {
      case "q4_k_m":
        type = "Q4_K";
        if (cat === "output") type = "Q6_K";
        else if (cat === "attn_v") type = e8 ? "Q8_0" : useMoreBits(iAttnV, nAttnV) ? "Q6_K" : "Q4_K";
        else if (cat === "attn_k" && e8) type = "Q8_0";
        else if (cat === "ffn_down") type = useMoreBits(layer, m.nLayer) ? "Q6_K" : "Q4_K";
        else if (cat === "attn_output" && e8) type = "Q5_K";
        break;
      case "q2_k":
        type = "Q2_K";
        if (cat === "output") type = "Q6_K";
        else if (cat === "attn_v") type = e8 ? "Q8_0" : m.nGqa >= 4 ? "Q4_K" : "Q3_K";
        else if (cat === "attn_k" && e8) type = "Q8_0";
        else if (cat === "ffn_down") type = t.expert ? "IQ3_XXS" : "Q3_K";
        else if (cat === "attn_output") type = e8 ? "Q5_K" : "Q3_K";
        break;
      case "iq2_xxs":
        type = "IQ2_XXS";
        if (cat === "output") type = "Q5_K";
        else if (cat === "token_embd") type = "Q2_K";
        else if (cat === "attn_v") type = m.nGqa >= 4 || m.nExpert >= 4 ? "Q4_K" : "Q2_K";
        else if (cat === "attn_k" && e8) type = "Q4_K";
        else if (cat === "ffn_down") type = iFfnDown < Math.trunc(nFfnDown / 8) ? "Q2_K" : "IQ2_XXS";
        else if (cat === "attn_output" && e8) type = "Q5_K";
        break;
      case "ud": {
        const more = useMoreBits(layer, m.nLayer);
        if (t.expert) type = cat === "ffn_down" ? (more ? "IQ4_XS" : "IQ3_XXS") : more ? "IQ3_XXS" : "IQ2_XXS";
        else if (cat === "output") type = "Q8_0";
        else if (cat === "token_embd") type = "Q6_K";
        else if (cat === "attn_v" || cat === "ffn_up" || cat === "ffn_gate" || cat === "ffn_down") type = "Q6_K";
        else type = "Q4_K";
        break;
      }
    }
    if (cat === "attn_v") iAttnV++;
    if (cat === "ffn_down") iFfnDown++;
    out.set(t.name, fitted(type, t));
  });
  return out;
}
