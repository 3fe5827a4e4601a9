// gpt-oss-20b / 120b (GGUF general.architecture = "gpt-oss", llama.cpp's LLM_ARCH_OPENAI_MOE): pre-norm decoder,
// GQA attention with biases on q/k/v/o and a learned sink logit per head in the softmax denominator; YaRN NeoX rope;
// sliding-window attention on the layers the pattern marks (even layers by default) with a state holding only the
// window; every layer MoE: top-k of the raw router logits (+ bias), softmax over those k, experts with biases on
// gate/up/down and the clamped SwiGLU min(g,7)·σ(1.702·min(g,7))·(clamp(u,±7)+1).
// Reference: llama.cpp src/models/openai-moe.cpp.
import type { Backend, OpName } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { FullAttentionState, fullAttention } from "../kv/full-attention.js";
import { SlidingWindowState, slidingWindow } from "../kv/sliding-window.js";
import { ModelCache } from "../kv/state.js";
import { ModelError } from "../util/errors.js";
import type { MoeDecoderHParams } from "./moe-decoder.js";
import { count, decoderMetadata, metaInRange, modelInfo, positive, readRopeScaling, ropeScalingMetadata, ropeScalingParams, type Range, type RopeScaling } from "./hparams.js";
import { attention, decoderStack, forwardPass, Pass, ScratchPool } from "./layers.js";
import { moe, routersAfter, type ExpertAct, type LookaheadRouter } from "./moe-block.js";
import type { ForwardOptions, Model, ModelContext, ModelInfo } from "./model.js";
import { topKSoftmaxRoute, type RouteFn } from "./routing.js";
import type { Declare } from "./tensors.js";

export const ARCH = "gpt-oss";

/** swiglu_oai's constants: hard-coded in llama.cpp (llama-graph.cpp), not GGUF keys. */
const ACT: ExpertAct = { kind: "swiglu_oai", alpha: 1.702, limit: 7 };
/** Asked of the backend at load beyond the shared layers' ops. */
export const OPS: readonly OpName[] = ["swiglu_oai"];

/** headDim is attention.key_length (= value_length = rope.dimension_count; 64, not nEmbd / nHead). */
export interface HParams extends MoeDecoderHParams, RopeScaling {
  /** expert_feed_forward_length: rows of each expert's gate/up. */
  nFfExp: number;
  /** feed_forward_length: unused (every layer is MoE), carried so a written file has it; 0 when absent. */
  nFf: number;
  /** rope.freq_base_swa: the SWA layers' base (default rope.freq_base). */
  ropeFreqBaseSwa: number;
  /** attention.sliding_window: keys an SWA layer sees, the current one included. */
  window: number;
  /** Per layer: sliding-window attention (true) or full. */
  swa: boolean[];
}

/** llama.cpp's set_swa_pattern(n, dense_first = false): layer il is SWA unless il % n == n − 1 (n = 0: all SWA). */
function swaPattern(period: number, nLayer: number): boolean[] {
  return Array.from({ length: nLayer }, (_, il) => period === 0 || il % period < period - 1);
}

export function readHParams(md: GGUFMetadata, nVocab: number): HParams {
  const k = (name: string) => `${ARCH}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  const bad = (msg: string) => new ModelError("bad_hparams", `${ARCH}: ${msg}`);
  const nCtxTrain = n("context_length", count(1, 1 << 24));
  const nEmbd = n("embedding_length", count(1, 1 << 17));
  const nLayer = n("block_count", count(1, 1024));
  const nHead = n("attention.head_count", count(1, 1024));
  const headDim = n("attention.key_length", count(2, 4096), { default: Math.floor(nEmbd / nHead) });
  const ropeFreqBase = n("rope.freq_base", positive(1e12), { default: 10000 });
  // sliding_window_pattern: a bool per layer, or a period (default 2: even layers SWA, odd layers full).
  const pat = md.get(k("attention.sliding_window_pattern"));
  let swa: boolean[];
  if (pat?.type === "array") {
    swa = (pat.value as unknown[]).map((v) => Boolean(v));
    if (swa.length !== nLayer) throw bad(`attention.sliding_window_pattern has ${swa.length} entries for ${nLayer} layers`);
  } else swa = swaPattern(n("attention.sliding_window_pattern", count(0, 1024), { default: 2 }), nLayer);
  const hp: HParams = {
    nVocab,
    nCtxTrain,
    nEmbd,
    nLayer,
    nHead,
    nHeadKv: n("attention.head_count_kv", count(1, 1024), { default: nHead }),
    headDim,
    nExpert: n("expert_count", count(1, 1 << 16)),
    nExpertUsed: n("expert_used_count", count(1, 1 << 16)),
    nFfExp: n("expert_feed_forward_length", count(1, 1 << 20)),
    nFf: n("feed_forward_length", count(0, 1 << 20), { default: 0 }),
    ropeFreqBase,
    ropeFreqBaseSwa: n("rope.freq_base_swa", positive(1e12), { default: ropeFreqBase }),
    ...readRopeScaling(md, ARCH, nCtxTrain),
    rmsEps: n("attention.layer_norm_rms_epsilon", positive(0.1)),
    window: n("attention.sliding_window", count(1, 1 << 24)),
    swa,
  };
  const vLen = n("attention.value_length", count(1, 4096), { default: headDim });
  const nRot = n("rope.dimension_count", count(2, 4096), { default: headDim });
  if (vLen !== headDim) throw bad(`attention.value_length ${vLen} != key_length ${headDim}`);
  if (nRot !== headDim) throw bad(`rope.dimension_count ${nRot} != key_length ${headDim} (llama.cpp sizes the q/k heads by it)`);
  if (headDim % 2 !== 0) throw bad(`attention.key_length ${headDim} is odd: NeoX rope pairs its values`);
  if (hp.nHead % hp.nHeadKv !== 0) throw bad(`head_count ${hp.nHead} not a multiple of head_count_kv ${hp.nHeadKv}`);
  if (hp.nExpertUsed > hp.nExpert) throw bad(`expert_used_count ${hp.nExpertUsed} not in [1, ${hp.nExpert}]`);
  return hp;
}

/** The inverse of readHParams: every key it reads, from hp (the generator writes these). */
export function metadata(hp: HParams): GGUFMetadata {
  const k = (name: string) => `${ARCH}.${name}`;
  const defaultPattern = swaPattern(2, hp.nLayer).every((s, i) => s === hp.swa[i]);
  return new Map([
    [k("block_count"), meta.u32(hp.nLayer)],
    ...decoderMetadata(ARCH, hp),
    [k("attention.key_length"), meta.u32(hp.headDim)],
    [k("attention.value_length"), meta.u32(hp.headDim)],
    [k("rope.dimension_count"), meta.u32(hp.headDim)],
    [k("rope.freq_base_swa"), meta.f32(hp.ropeFreqBaseSwa)],
    ...ropeScalingMetadata(ARCH, hp),
    [k("expert_feed_forward_length"), meta.u32(hp.nFfExp)],
    [k("attention.sliding_window"), meta.u32(hp.window)],
    ...(defaultPattern ? [] : [[k("attention.sliding_window_pattern"), meta.boolArray(hp.swa)] as const]),
  ]);
}

export function info(hp: HParams): ModelInfo {
  return modelInfo(ARCH, hp);
}

export function cacheBytes(hp: HParams, nCtx: number): number {
  const kvDim = hp.nHeadKv * hp.headDim;
  return hp.swa.reduce((a, s) => a + (s ? SlidingWindowState.bytesFor(nCtx, kvDim, hp.window) : FullAttentionState.bytesFor(nCtx, kvDim)), 0);
}

/** Every tensor, shapes in ggml order ([K, N] = N rows of K; experts [K, N, nExpert], biases [N, nExpert]). */
export function weights(hp: HParams, t: Declare) {
  const { nEmbd: D, nVocab: V, headDim: hd, nHead: H, nHeadKv, nExpert: E, nFfExp: F } = hp;
  return {
    token_embd: t("token_embd.weight", [D, V]),
    output_norm: t("output_norm.weight", [D]),
    output: t("output.weight", [D, V]), // required: gpt-oss never ties it
    layers: Array.from({ length: hp.nLayer }, (_, i) => {
      const n = (name: string, kind = "weight") => `blk.${i}.${name}.${kind}`;
      // One expert record: each projection with its bias (one read per expert).
      t.experts(i, {
        gate: { name: n("ffn_gate_exps"), shape: [D, F, E] },
        gate_b: { name: n("ffn_gate_exps", "bias"), shape: [F, E] },
        up: { name: n("ffn_up_exps"), shape: [D, F, E] },
        up_b: { name: n("ffn_up_exps", "bias"), shape: [F, E] },
        down: { name: n("ffn_down_exps"), shape: [F, D, E] },
        down_b: { name: n("ffn_down_exps", "bias"), shape: [D, E] },
      });
      return {
        attn_norm: t(n("attn_norm"), [D]),
        attn_q: t(n("attn_q"), [D, H * hd]),
        attn_q_bias: t.optional(n("attn_q", "bias"), [H * hd]),
        attn_k: t(n("attn_k"), [D, nHeadKv * hd]),
        attn_k_bias: t.optional(n("attn_k", "bias"), [nHeadKv * hd]),
        attn_v: t(n("attn_v"), [D, nHeadKv * hd]),
        attn_v_bias: t.optional(n("attn_v", "bias"), [nHeadKv * hd]),
        attn_output: t(n("attn_output"), [H * hd, D]),
        attn_output_bias: t(n("attn_output", "bias"), [D]),
        attn_sinks: t(n("attn_sinks"), [H]), // f32 logits, one per query head
        post_attention_norm: t(n("post_attention_norm"), [D]),
        ffn_gate_inp: t(n("ffn_gate_inp"), [D, E]),
        ffn_gate_inp_bias: t(n("ffn_gate_inp", "bias"), [E]),
      };
    }),
  };
}
export type Weights = ReturnType<typeof weights>;

export class GptOss implements Model {
  readonly info: ModelInfo;
  /** A decoderStack model: its forward takes ForwardOptions.later. */
  readonly recordsAhead = true;
  private readonly be: Backend;
  private readonly experts: ExpertSource;
  private readonly scratch: ScratchPool;
  private readonly route: RouteFn;
  private readonly ahead: LookaheadRouter[][];
  private readonly rope: ReturnType<typeof ropeScalingParams>;

  constructor(readonly hp: HParams, private readonly w: Weights, ctx: ModelContext) {
    this.info = info(hp);
    this.be = ctx.backend;
    this.experts = ctx.experts;
    this.scratch = new ScratchPool(ctx.backend);
    this.route = topKSoftmaxRoute(hp.nExpert, hp.nExpertUsed);
    this.rope = ropeScalingParams(hp);
    this.ahead = routersAfter(w.layers.map((L, i) => ({ layer: i, norm: L.post_attention_norm, router: L.ffn_gate_inp, bias: L.ffn_gate_inp_bias, route: this.route })), hp.nLayer);
  }

  makeCache(nCtx: number): ModelCache {
    const { hp, be } = this;
    const kvDim = hp.nHeadKv * hp.headDim;
    return new ModelCache(hp.swa.map((s) => (s ? new SlidingWindowState(be, nCtx, kvDim, hp.window) : new FullAttentionState(be, nCtx, kvDim))), nCtx);
  }

  cacheBytes(nCtx: number): number {
    return cacheBytes(this.hp, nCtx);
  }

  forward(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions): Promise<Float32Array> {
    return forwardPass(this.be, this.scratch, tokens, cache, opts, (f) => this.run(tokens, cache, opts, f));
  }

  private run(tokens: Int32Array, cache: ModelCache, opts: ForwardOptions, f: Pass): Promise<Float32Array> {
    const { hp, w } = this;
    const eps = hp.rmsEps;
    return decoderStack(f, tokens, cache, opts, {
      embd: w.token_embd, output: { norm: w.output_norm, output: w.output }, eps, nLayer: hp.nLayer, ffnNormName: "attn_post_norm",
      layer: (il) => {
        const L = w.layers[il];
        const swa = hp.swa[il];
        return {
          attnNorm: L.attn_norm, ffnNorm: L.post_attention_norm,
          attention: (y, h) => attention(f, y, h, {
            layer: il, wq: L.attn_q, wk: L.attn_k, wv: L.attn_v, wo: L.attn_output,
            bq: L.attn_q_bias, bk: L.attn_k_bias, bv: L.attn_v_bias, bo: L.attn_output_bias, sinks: L.attn_sinks,
            nHead: hp.nHead, nHeadKv: hp.nHeadKv, headDim: hp.headDim, eps, f16Kv: true,
            rope: { freqBase: swa ? hp.ropeFreqBaseSwa : hp.ropeFreqBase, opts: { yarn: this.rope.yarn } },
            state: swa ? slidingWindow(cache.layers[il]) : fullAttention(cache.layers[il]),
          }),
          ffn: (y, h, x) => moe(f, y, h, {
            layer: il, router: L.ffn_gate_inp, routerBias: L.ffn_gate_inp_bias, route: this.route, nExpert: hp.nExpert, nFf: hp.nFfExp,
            experts: this.experts, lookahead: { residual: x, next: this.ahead[il], eps }, act: ACT,
          }),
        };
      },
    });
  }
}
