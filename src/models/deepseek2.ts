// DeepSeek-V2 / V2-Lite / V3, Kimi-K2 (GGUF general.architecture = "deepseek2"): pre-norm decoder with multi-head
// latent attention (MLA) run as llama.cpp runs it: q through a low-rank q-lora (or a plain attn_q on the lite
// models), k/v compressed to one latent row per token [c ‖ k_pe] that is the whole per-token cache, queries
// absorbed into that latent space by attn_k_b and the latent output expanded by attn_v_b (MQA over one 576-wide
// kv head for V3); NORM-style rope with YaRN on each head's last rope dims; leading dense SwiGLU layers, then MoE
// layers (softmax routing for V2, sigmoid + selection bias + group limit for V3) plus always-on shared experts.
// Trailing nextn_predict_layers blocks (MTP) are declared unused and never run.
// Files are read as current converters write them: attention.key_length_mla / value_length_mla and the split
// attn_k_b / attn_v_b tensors. Legacy files (one attn_kv_b, llama.cpp's MHA path) are refused by name.
// Reference: llama.cpp src/models/deepseek2.cpp (MLA branch), llama-context.cpp (YaRN attn factor).
import type { Backend, Buf, YarnParams } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import { metaNumber } from "../format/gguf/accessors.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { LatentState, latent } from "../kv/latent.js";
import { ModelCache } from "../kv/state.js";
import { ModelError } from "../util/errors.js";
import { declareFfn, declareMtpUnused, ffnBlock, LazyRouting, moeMetadata, readMoeHParams, readRouting, type MoeHParams, type Routing } from "./deepseek-moe.js";
import { count, decoderMetadata, metaInRange, metaPerLayer, modelInfo, positive, readRopeScaling, ropeScalingMetadata, ropeScalingParams, type Range, type RopeScaling } from "./hparams.js";
import { decoderStack, forwardPass, Pass, ScratchPool } from "./layers.js";
import type { ForwardOptions, Model, ModelContext, ModelInfo } from "./model.js";
import type { Declare } from "./tensors.js";

export const ARCH = "deepseek2";

export interface HParams extends MoeHParams, RopeScaling {
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  /** Layers run: block_count − nextn_predict_layers. */
  nLayer: number;
  /** nextn_predict_layers: trailing MTP blocks in the file, never run. */
  nNextn: number;
  nHead: number;
  /** attention.q_lora_rank (1536); 0: a plain attn_q (V2-Lite). */
  qLoraRank: number;
  /** attention.kv_lora_rank (512): the latent width. */
  kvLoraRank: number;
  /** rope.dimension_count: the roped tail of each q/k head (qk_rope_head_dim, 64). */
  nRot: number;
  /** attention.key_length_mla: qk_nope + qk_rope (192). */
  headDimK: number;
  /** attention.value_length_mla (128). */
  headDimV: number;
  ropeFreqBase: number;
  /** rope.scaling.yarn_log_multiplier as llama.cpp uses it: the file's value / 0.1 (mscale_all_dim; V3 1, V2-Lite 0.707). */
  yarnLogMul: number;
  rmsEps: number;
}

export function readHParams(md: GGUFMetadata, nVocab: number): HParams {
  const k = (name: string) => `${ARCH}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  const bad = (msg: string) => new ModelError("bad_hparams", `${ARCH}: ${msg}`);
  const blocks = n("block_count", count(1, 1024));
  const nNextn = n("nextn_predict_layers", count(0, 16), { default: 0 });
  if (blocks - nNextn < 1) throw bad(`block_count ${blocks} leaves no layer besides ${nNextn} nextn_predict_layers`);
  if (!md.has(k("attention.key_length_mla"))) {
    throw bad(`metadata '${k("attention.key_length_mla")}' is missing: a legacy file (one attn_kv_b per layer, llama.cpp's MHA path) is not supported; convert the model with a current llama.cpp`);
  }
  const nCtxTrain = n("context_length", count(1, 1 << 24));
  const nEmbd = n("embedding_length", count(1, 1 << 17));
  const all = Array.from({ length: blocks - nNextn }, (_, i) => i);
  const perLayer = (name: string, r: Range, opts?: { default: number }) => metaPerLayer(md, k(name), r, { blocks, used: all, ...opts }); // one value for every layer
  const nHead = perLayer("attention.head_count", count(1, 1024));
  const hp: HParams = {
    nVocab,
    nCtxTrain,
    nEmbd,
    nLayer: blocks - nNextn,
    nNextn,
    nHead,
    qLoraRank: n("attention.q_lora_rank", count(0, 1 << 16), { default: 0 }),
    kvLoraRank: n("attention.kv_lora_rank", count(1, 1 << 16)),
    nRot: n("rope.dimension_count", count(2, 4096)),
    headDimK: n("attention.key_length_mla", count(2, 4096)),
    headDimV: n("attention.value_length_mla", count(1, 4096)),
    ropeFreqBase: n("rope.freq_base", positive(1e12), { default: 10000 }),
    ...readRopeScaling(md, ARCH, nCtxTrain),
    yarnLogMul: metaNumber(md, k("rope.scaling.yarn_log_multiplier"), { default: 0 }) / 0.1, // the converter wrote 0.1·mscale_all_dim
    rmsEps: n("attention.layer_norm_rms_epsilon", positive(0.1)),
    // llama.cpp: gating 0 (absent) is softmax (V2 files), sigmoid for GLM-4.7-Flash's 47/48 layers with 154880 tokens
    ...readMoeHParams(md, ARCH, { nLayer: blocks - nNextn, blocks }, (blocks - nNextn === 47 || blocks - nNextn === 48) && nVocab === 154880 ? "sigmoid" : "softmax"),
  };
  // The converter writes the MQA view of MLA: one kv head, key_length = kv_lora + rope, value_length = kv_lora.
  const nHeadKv = perLayer("attention.head_count_kv", count(1, 1024), { default: nHead });
  if (nHeadKv !== 1) throw bad(`attention.head_count_kv ${nHeadKv} is not 1: MLA runs as multi-query attention over one latent kv head`);
  const keyLen = n("attention.key_length", count(1, 1 << 17), { default: Math.floor(nEmbd / nHead) });
  const valLen = n("attention.value_length", count(1, 1 << 17), { default: Math.floor(nEmbd / nHead) });
  if (keyLen !== hp.kvLoraRank + hp.nRot) throw bad(`attention.key_length ${keyLen} != kv_lora_rank ${hp.kvLoraRank} + rope.dimension_count ${hp.nRot}`);
  if (valLen !== hp.kvLoraRank) throw bad(`attention.value_length ${valLen} != kv_lora_rank ${hp.kvLoraRank}`);
  if (hp.nRot % 2 !== 0 || hp.nRot >= hp.headDimK) throw bad(`rope.dimension_count ${hp.nRot} must be even and below key_length_mla ${hp.headDimK}`);
  if (!Number.isFinite(hp.yarnLogMul) || hp.yarnLogMul < 0 || hp.yarnLogMul > 100) throw bad(`rope.scaling.yarn_log_multiplier ${hp.yarnLogMul * 0.1} is not in [0, 10]`);
  if (metaNumber(md, k("attention.temperature_scale"), { default: 0 }) !== 0) throw bad("attention.temperature_scale (Mistral-Large-3's temperature tuning) is not supported");
  return hp;
}

/** The inverse of readHParams: every key it reads, from hp (the generator writes these). */
export function metadata(hp: HParams): GGUFMetadata {
  const k = (name: string) => `${ARCH}.${name}`;
  return new Map([
    [k("block_count"), meta.u32(hp.nLayer + hp.nNextn)],
    ...decoderMetadata(ARCH, { ...hp, nHeadKv: 1 }),
    [k("attention.q_lora_rank"), meta.u32(hp.qLoraRank)],
    [k("attention.kv_lora_rank"), meta.u32(hp.kvLoraRank)],
    [k("attention.key_length"), meta.u32(hp.kvLoraRank + hp.nRot)],
    [k("attention.value_length"), meta.u32(hp.kvLoraRank)],
    [k("attention.key_length_mla"), meta.u32(hp.headDimK)],
    [k("attention.value_length_mla"), meta.u32(hp.headDimV)],
    [k("rope.dimension_count"), meta.u32(hp.nRot)],
    ...ropeScalingMetadata(ARCH, hp),
    [k("rope.scaling.yarn_log_multiplier"), meta.f32(0.1 * hp.yarnLogMul)],
    ...moeMetadata(ARCH, hp),
    [k("nextn_predict_layers"), meta.u32(hp.nNextn)],
  ]);
}

export function info(hp: HParams): ModelInfo {
  return modelInfo(ARCH, hp);
}

export function cacheBytes(hp: HParams, nCtx: number): number {
  return hp.nLayer * LatentState.bytesFor(nCtx, hp.kvLoraRank + hp.nRot);
}

/**
 * Rope and attention scale as llama.cpp derives them (llama-context.cpp's yarn_attn_factor, then deepseek2.cpp's
 * kq_scale = mscale² / √key_length_mla): for V3 (YaRN ×40, mscale_all_dim 1) cos/sin keep gain 1 and the YaRN
 * magnitude moves into kq_scale (1.3689² / √192).
 */
export function ropeConstants(hp: HParams): { yarn?: YarnParams; kqScale: number } {
  const { yarn, freqScale: fs, attnFactor: attn } = ropeScalingParams(hp, hp.yarnLogMul);
  const mscale = attn * (1 + 0.1 * Math.log(1 / fs)) * (1 + 0.1 * hp.yarnLogMul * Math.log(1 / fs));
  return { yarn, kqScale: (mscale * mscale) / Math.sqrt(hp.headDimK) };
}

/** Every tensor, shapes in ggml order ([K, N] = N rows of K; [K, N, H] = H matrices). */
export function weights(hp: HParams, t: Declare) {
  const { nEmbd: D, nVocab: V, nHead: H, qLoraRank: Q, kvLoraRank: R, nRot, headDimK: Dk, headDimV: Dv } = hp;
  const nope = Dk - nRot;
  const token_embd = t("token_embd.weight", [D, V]);
  // The attention block's tensors, by field: shared by the layers and the MTP blocks.
  const attnShapes = (n: (s: string) => string): Record<string, [string, number[]]> => ({
    attn_norm: [n("attn_norm"), [D]],
    ...(Q > 0
      ? { attn_q_a: [n("attn_q_a"), [D, Q]], attn_q_a_norm: [n("attn_q_a_norm"), [Q]], attn_q_b: [n("attn_q_b"), [Q, H * Dk]] } // per head [nope ‖ rope]
      : { attn_q: [n("attn_q"), [D, H * Dk]] }),
    attn_kv_a_mqa: [n("attn_kv_a_mqa"), [D, R + nRot]], // rows [c (R) ‖ k_pe (rope)]
    attn_kv_a_norm: [n("attn_kv_a_norm"), [R]],
    attn_k_b: [n("attn_k_b"), [nope, R, H]], // per head R rows of nope: q_nope -> latent
    attn_v_b: [n("attn_v_b"), [R, Dv, H]], // per head Dv rows of R: latent -> value
    attn_output: [n("attn_output"), [H * Dv, D]],
    ffn_norm: [n("ffn_norm"), [D]],
  });
  const layers = Array.from({ length: hp.nLayer }, (_, i) => {
    const n = (name: string, kind = "weight") => `blk.${i}.${name}.${kind}`;
    const a = attnShapes(n);
    const opt = (f: string) => (a[f] ? t(...a[f]) : undefined);
    return {
      attn_norm: t(...a.attn_norm),
      attn_q_a: opt("attn_q_a"),
      attn_q_a_norm: opt("attn_q_a_norm"),
      attn_q_b: opt("attn_q_b"),
      attn_q: opt("attn_q"),
      attn_kv_a_mqa: t(...a.attn_kv_a_mqa),
      attn_kv_a_norm: t(...a.attn_kv_a_norm),
      attn_k_b: t(...a.attn_k_b),
      attn_v_b: t(...a.attn_v_b),
      attn_output: t(...a.attn_output),
      ffn_norm: t(...a.ffn_norm),
      ffn: declareFfn(t, i, n, hp, D, { biasRequired: false, fusedExperts: true }), // exp_probs_b: V3 has it, V2 not
    };
  });
  // The MTP blocks: every tensor llama.cpp's loader knows for them, allowed in the file and never read.
  for (let i = hp.nLayer; i < hp.nLayer + hp.nNextn; i++) {
    const n = (name: string, kind = "weight") => `blk.${i}.${name}.${kind}`;
    for (const [name, shape] of Object.values(attnShapes(n))) t.unused(name, shape);
    declareMtpUnused(t, i, hp, D, V, true);
  }
  return {
    token_embd,
    layers,
    output_norm: t("output_norm.weight", [D]),
    output: t.optional("output.weight", [D, V]) ?? token_embd, // absent: tied to token_embd
  };
}
export type Weights = ReturnType<typeof weights>;
type Layer = Weights["layers"][number];

export class DeepSeek2 implements Model {
  readonly info: ModelInfo;
  /** A decoderStack model: its forward takes ForwardOptions.later. */
  readonly recordsAhead = true;
  private readonly be: Backend;
  private readonly experts: ExpertSource;
  private readonly scratch: ScratchPool;
  private readonly routing: LazyRouting;
  private readonly rope: ReturnType<typeof ropeConstants>;

  constructor(readonly hp: HParams, private readonly w: Weights, ctx: ModelContext) {
    this.info = info(hp);
    this.be = ctx.backend;
    this.experts = ctx.experts;
    this.scratch = new ScratchPool(ctx.backend);
    this.routing = new LazyRouting(() => readRouting(this.be, hp, w.layers.map((L) => ({ norm: L.ffn_norm, ffn: L.ffn }))));
    this.rope = ropeConstants(hp);
  }

  makeCache(nCtx: number): ModelCache {
    const width = this.hp.kvLoraRank + this.hp.nRot;
    return new ModelCache(Array.from({ length: this.hp.nLayer }, () => new LatentState(this.be, nCtx, width)), nCtx);
  }

  cacheBytes(nCtx: number): number {
    return cacheBytes(this.hp, nCtx);
  }

  forward(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions): Promise<Float32Array> {
    return forwardPass(this.be, this.scratch, tokens, cache, opts, async (f) => this.run(tokens, cache, opts, f, await this.routing.get()));
  }

  private run(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, f: Pass, routing: Routing): Promise<Float32Array> {
    const { hp, w } = this;
    const ffn = { hp, experts: this.experts, routing, eps: hp.rmsEps };
    return decoderStack(f, tokens, cache, opts, {
      embd: w.token_embd, output: { norm: w.output_norm, output: w.output }, eps: hp.rmsEps, nLayer: hp.nLayer, ffnNormName: "ffn_norm",
      layer: (il) => {
        const L = w.layers[il];
        return {
          attnNorm: L.attn_norm, ffnNorm: L.ffn_norm,
          attention: (y, h) => this.mla(f, y, h, il, L, latent(cache.layers[il])),
          ffn: (y, h, x) => ffnBlock(f, y, h, x, il, L.ffn, ffn),
        };
      },
    });
  }

  /**
   * out[T, D] = MLA of the normed rows x[T, D]; this call's latent rows go into the state at its length, rounded
   * to f16 as llama.cpp's cache stores them; the queries and the attention probabilities are rounded to f16 as its
   * KQ and V products (f16 cache times f32 operand) read them.
   */
  private async mla(f: Pass, out: Buf, x: Buf, il: number, L: Layer, state: LatentState): Promise<void> {
    f.checkAbort();
    const { be, nTokens: T, pos } = f;
    const { nHead: H, qLoraRank: Q, kvLoraRank: R, nRot, headDimK: Dk, headDimV: Dv, rmsEps: eps } = this.hp;
    const nope = Dk - nRot, W = R + nRot; // W: the latent row, 576 for V3
    const rope = { mode: "norm", yarn: this.rope.yarn } as const;

    const q = f.buf("mla.q", T * H * Dk); // [T, H, nope ‖ rope]
    const kv = f.buf("mla.kv", T * W); // [T, c ‖ k_pe]
    if (Q > 0) {
      const qa = f.buf("mla.q_a", T * Q);
      if (be.matmulSet) be.matmulSet([qa, kv], [L.attn_q_a!, L.attn_kv_a_mqa], x, T);
      else (be.matmul(qa, L.attn_q_a!, x, T), be.matmul(kv, L.attn_kv_a_mqa, x, T));
      be.rmsNorm(qa, qa, L.attn_q_a_norm!, eps, Q, T);
      be.matmul(q, L.attn_q_b!, qa, T);
    } else if (be.matmulSet) be.matmulSet([q, kv], [L.attn_q!, L.attn_kv_a_mqa], x, T);
    else (be.matmul(q, L.attn_q!, x, T), be.matmul(kv, L.attn_kv_a_mqa, x, T));

    const c = f.buf("mla.c", T * R); // the normalised latent [T, R]
    be.copy(c, kv, { rows: T, n: R, src: { offset: 0, stride: W }, dst: { offset: 0, stride: R } });
    be.rmsNorm(c, c, L.attn_kv_a_norm, eps, R, T);
    be.rope(kv, pos, 1, W, this.hp.ropeFreqBase, nRot, { ...rope, offset: R }); // k_pe: one rope key for all heads
    be.rope(q, pos, H, Dk, this.hp.ropeFreqBase, nRot, { ...rope, offset: nope }); // each head's q_pe
    const start = state.length;
    be.copy(state.kv, c, { rows: T, n: R, src: { offset: 0, stride: R }, dst: { offset: start * W, stride: W }, roundF16: true });
    be.copy(state.kv, kv, { rows: T, n: nRot, src: { offset: R, stride: W }, dst: { offset: start * W + R, stride: W }, roundF16: true });
    await f.cb("Kcur", il, c);

    // Q[t, h] = [W_kb[h] · q_nope[t, h] ‖ q_pe[t, h]]: the query in the latent space, scored against whole cache rows.
    const qNope = f.buf("mla.q_nope", T * H * nope), qAbs = f.buf("mla.q_abs", T * H * R), Qc = f.buf("mla.Q", T * H * W);
    be.copy(qNope, q, { rows: T * H, n: nope, src: { offset: 0, stride: Dk }, dst: { offset: 0, stride: nope } });
    be.matmulHeads(qAbs, L.attn_k_b, qNope, T);
    be.copy(Qc, qAbs, { rows: T * H, n: R, src: { offset: 0, stride: R }, dst: { offset: 0, stride: W }, roundF16: true });
    be.copy(Qc, q, { rows: T * H, n: nRot, src: { offset: nope, stride: Dk }, dst: { offset: R, stride: W }, roundF16: true });
    await f.cb("Qcur", il, Qc);

    const oLat = f.buf("mla.kqv", T * H * R); // per head a mix of latent rows (V = the first R values of each)
    be.attention(oLat, Qc, state.kv, state.kv, { nTokens: T, startPos: start, nHead: H, nHeadKv: 1, headDim: W, vDim: R, scale: this.rope.kqScale, f16Probs: true });
    const o = f.buf("mla.o", T * H * Dv);
    be.matmulHeads(o, L.attn_v_b, oLat, T);
    await f.cb("kqv_out", il, o);
    be.matmul(out, L.attn_output, o, T);
  }
}
