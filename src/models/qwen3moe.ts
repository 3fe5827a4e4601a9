// Qwen3-MoE (GGUF general.architecture = "qwen3moe"): pre-norm decoder, GQA attention with per-head
// q/k RMSNorm and NeoX RoPE, every layer a sparse MoE FFN (softmax -> top-k -> renormalise, SwiGLU experts).
// Reference: llama.cpp src/models/qwen3moe.cpp, mlx-lm models/qwen3_moe.py.
import type { Backend, Buf, HostWeight, Weight } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import type { KVCache } from "../kv/kv-cache.js";
import type { GGUFMetadata } from "../format/gguf/types.js";
import { metaNumber } from "../format/gguf/read.js";
import { ModelError } from "../util/errors.js";
import { bucketByExpert, softmaxTopK, type Routing } from "./routing.js";

export const ARCH = "qwen3moe";

export interface Qwen3MoeHParams {
  nVocab: number;
  nCtxTrain: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  /** attention.key_length: read, never derived from nEmbd / nHead. */
  headDim: number;
  nExpert: number;
  nExpertUsed: number;
  /** expert_feed_forward_length: rows of each expert's gate/up. */
  nFfExp: number;
  ropeFreqBase: number;
  rmsEps: number;
}

export function readHParams(md: GGUFMetadata, nVocab: number): Qwen3MoeHParams {
  const k = (name: string) => `${ARCH}.${name}`;
  const hp: Qwen3MoeHParams = {
    nVocab,
    nCtxTrain: metaNumber(md, k("context_length")),
    nEmbd: metaNumber(md, k("embedding_length")),
    nLayer: metaNumber(md, k("block_count")),
    nHead: metaNumber(md, k("attention.head_count")),
    nHeadKv: metaNumber(md, k("attention.head_count_kv")),
    headDim: metaNumber(md, k("attention.key_length")),
    nExpert: metaNumber(md, k("expert_count")),
    nExpertUsed: metaNumber(md, k("expert_used_count")),
    nFfExp: metaNumber(md, k("expert_feed_forward_length")),
    ropeFreqBase: metaNumber(md, k("rope.freq_base"), { default: 10000 }),
    rmsEps: metaNumber(md, k("attention.layer_norm_rms_epsilon")),
  };
  const vLen = metaNumber(md, k("attention.value_length"), { default: hp.headDim });
  if (vLen !== hp.headDim) throw new ModelError("bad_hparams", `${ARCH}: attention.value_length ${vLen} != key_length ${hp.headDim}`);
  if (hp.nHead % hp.nHeadKv !== 0) throw new ModelError("bad_hparams", `${ARCH}: head_count ${hp.nHead} not a multiple of head_count_kv ${hp.nHeadKv}`);
  if (hp.nExpertUsed < 1 || hp.nExpertUsed > hp.nExpert) throw new ModelError("bad_hparams", `${ARCH}: expert_used_count ${hp.nExpertUsed} not in [1, ${hp.nExpert}]`);
  return hp;
}

export interface TensorSpec {
  name: string;
  /** ggml order. */
  shape: number[];
  optional?: boolean;
}

/** Dense (always resident) tensors with their expected shapes. */
export function denseTensors(hp: Qwen3MoeHParams): TensorSpec[] {
  const { nEmbd: D, nVocab: V, headDim: hd, nHead, nHeadKv, nExpert } = hp;
  const specs: TensorSpec[] = [
    { name: "token_embd.weight", shape: [D, V] },
    { name: "output_norm.weight", shape: [D] },
    { name: "output.weight", shape: [D, V], optional: true }, // absent: tied to token_embd
  ];
  for (let i = 0; i < hp.nLayer; i++) {
    const b = `blk.${i}.`;
    specs.push(
      { name: b + "attn_norm.weight", shape: [D] },
      { name: b + "attn_q.weight", shape: [D, nHead * hd] },
      { name: b + "attn_k.weight", shape: [D, nHeadKv * hd] },
      { name: b + "attn_v.weight", shape: [D, nHeadKv * hd] },
      { name: b + "attn_output.weight", shape: [nHead * hd, D] },
      { name: b + "attn_q_norm.weight", shape: [hd] },
      { name: b + "attn_k_norm.weight", shape: [hd] },
      { name: b + "ffn_norm.weight", shape: [D] },
      { name: b + "ffn_gate_inp.weight", shape: [D, nExpert] },
    );
  }
  return specs;
}

/** Stacked expert tensors of layer i: [nEmbd, nFf, nExpert] gate/up, [nFf, nEmbd, nExpert] down. */
export function expertTensors(hp: Qwen3MoeHParams, i: number): { gate: TensorSpec; up: TensorSpec; down: TensorSpec } {
  const { nEmbd: D, nFfExp: F, nExpert: E } = hp;
  return {
    gate: { name: `blk.${i}.ffn_gate_exps.weight`, shape: [D, F, E] },
    up: { name: `blk.${i}.ffn_up_exps.weight`, shape: [D, F, E] },
    down: { name: `blk.${i}.ffn_down_exps.weight`, shape: [F, D, E] },
  };
}

interface Layer {
  attn_norm: Weight; attn_q: Weight; attn_k: Weight; attn_v: Weight; attn_output: Weight;
  attn_q_norm: Weight; attn_k_norm: Weight; ffn_norm: Weight; ffn_gate_inp: Weight;
}

export interface ForwardHooks {
  /** Called with each layer's routing (the expert ids are what streaming reads) and the router logits [T, nExpert]. */
  onRoute?(layer: number, routing: Routing, routerLogits: Float32Array): void;
}

export interface ForwardOptions {
  /** "last": logits of the final row only [nVocab]; "all": [nTokens, nVocab]. */
  logits: "last" | "all";
  hooks?: ForwardHooks;
}

export class Qwen3Moe {
  private readonly layers: Layer[];
  private readonly tokenEmbd: Weight;
  private readonly outputNorm: Weight;
  private readonly output: Weight;

  /** `weights` holds every dense tensor of denseTensors(hp), already shape-checked by checkShape. */
  constructor(
    readonly hp: Qwen3MoeHParams,
    private readonly backend: Backend,
    weights: Map<string, Weight>,
    private readonly experts: ExpertSource,
  ) {
    const get = (name: string): Weight => {
      const w = weights.get(name);
      if (!w) throw new ModelError("missing_tensor", `${ARCH}: required tensor '${name}' not found`);
      return w;
    };
    this.tokenEmbd = get("token_embd.weight");
    this.outputNorm = get("output_norm.weight");
    this.output = weights.get("output.weight") ?? this.tokenEmbd;
    this.layers = Array.from({ length: hp.nLayer }, (_, i) => {
      const g = (n: string) => get(`blk.${i}.${n}.weight`);
      return {
        attn_norm: g("attn_norm"), attn_q: g("attn_q"), attn_k: g("attn_k"), attn_v: g("attn_v"),
        attn_output: g("attn_output"), attn_q_norm: g("attn_q_norm"), attn_k_norm: g("attn_k_norm"),
        ffn_norm: g("ffn_norm"), ffn_gate_inp: g("ffn_gate_inp"),
      };
    });
  }

  /**
   * Router lookahead (decode): for each layer j = il+1 .. il+depth, normalise the residual stream x with
   * j's ffn_norm and apply j's router, and hint the predicted experts to the source, whose reads then
   * overlap the compute of the layers in between. Nearest first: the source queues them in that order.
   */
  private async lookahead(il: number, x: Buf, hn: Buf, scratch: Buf): Promise<void> {
    if (!this.experts.prefetch) return;
    const depth = Math.min(this.experts.prefetchDepth ?? 1, this.hp.nLayer - 1 - il);
    for (let d = 1; d <= depth; d++) {
      const L = this.layers[il + d];
      this.backend.rmsNorm(hn, x, L.ffn_norm, this.hp.rmsEps, this.hp.nEmbd, 1);
      this.backend.matmul(scratch, L.ffn_gate_inp, hn, 1);
      const predicted = softmaxTopK(await this.backend.read(scratch), 1, this.hp.nExpert, this.hp.nExpertUsed, false);
      this.experts.prefetch(il + d, [...predicted.ids], d);
    }
  }

  /** Run tokens at cache positions [kv.length, kv.length + T); appends their keys/values; returns logits. */
  async forward(tokens: Int32Array, kv: KVCache, opts: ForwardOptions): Promise<Float32Array> {
    const be = this.backend;
    const { nEmbd: D, nHead, nHeadKv, headDim: hd, nExpert, nExpertUsed, nFfExp: F, rmsEps, nVocab } = this.hp;
    const T = tokens.length;
    const start = kv.length;
    if (T === 0) throw new RangeError("forward() needs at least one token");
    if (start + T > kv.nCtx) throw new ModelError("context_full", `context full: ${start} + ${T} tokens exceed the context size ${kv.nCtx}`);
    const pos = Int32Array.from({ length: T }, (_, t) => start + t);
    const qDim = nHead * hd, kvDim = nHeadKv * hd;

    const bufs: Buf[] = [];
    const alloc = (n: number) => {
      const b = be.alloc(n);
      bufs.push(b);
      return b;
    };
    const x = alloc(T * D); // residual stream [T, D]
    const h = alloc(T * D); // normed input of a sub-block [T, D]
    const q = alloc(T * qDim), k = alloc(T * kvDim), v = alloc(T * kvDim);
    const att = alloc(T * qDim), o = alloc(T * D);
    const routerLogits = alloc(T * nExpert); // [T, nExpert]
    const moe = alloc(T * D);
    const xe = alloc(T * D), ge = alloc(T * F), ue = alloc(T * F), ye = alloc(T * D); // one expert's bucket

    try {
      be.embed(x, this.tokenEmbd, tokens);
      for (let il = 0; il < this.hp.nLayer; il++) {
        const L = this.layers[il];
        // attention
        be.rmsNorm(h, x, L.attn_norm, rmsEps, D, T);
        if (be.matmulSet) be.matmulSet([q, k, v], [L.attn_q, L.attn_k, L.attn_v], h, T); // one pool run, h quantised once
        else {
          be.matmul(q, L.attn_q, h, T);
          be.matmul(k, L.attn_k, h, T);
          be.matmul(v, L.attn_v, h, T);
        }
        be.rmsNorm(q, q, L.attn_q_norm, rmsEps, hd, T * nHead);
        be.rmsNorm(k, k, L.attn_k_norm, rmsEps, hd, T * nHeadKv);
        be.rope(q, pos, nHead, hd, this.hp.ropeFreqBase);
        be.rope(k, pos, nHeadKv, hd, this.hp.ropeFreqBase);
        be.kvStore(kv.layers[il].k, kv.layers[il].v, k, v, start, T, kvDim);
        be.attention(att, q, kv.layers[il].k, kv.layers[il].v, { nTokens: T, startPos: start, nHead, nHeadKv, headDim: hd, scale: 1 / Math.sqrt(hd) });
        be.matmul(o, L.attn_output, att, T);
        be.add(x, x, o, T * D);

        // MoE: route on the host (the ids are the read request), then each expert once over its bucket.
        be.rmsNorm(h, x, L.ffn_norm, rmsEps, D, T);
        be.matmul(routerLogits, L.ffn_gate_inp, h, T);
        const rl = await be.read(routerLogits);
        const routing = softmaxTopK(rl, T, nExpert, nExpertUsed, true);
        opts.hooks?.onRoute?.(il, routing, rl);
        const buckets = bucketByExpert(routing);
        be.zero(moe);
        // Each routed expert is acquired (read) once for the whole batch; a batch routing to more experts
        // than the cache holds at once goes in groups.
        const group = Math.max(1, this.experts.capacity ?? buckets.length);
        for (let g = 0; g < buckets.length; g += group) {
          const part = buckets.slice(g, g + group);
          const ids = part.map((b) => b.expert);
          const acquired = this.experts.acquire(il, ids);
          acquired.catch(() => undefined); // awaited below; this only keeps it from counting as unhandled meanwhile
          if (T === 1 && g === 0) await this.lookahead(il, x, xe, routerLogits);
          const ws = await acquired;
          try {
            if (be.moeFfn && ws.every((w) => be.supports("moe_ffn", w.gate.type))) {
              // The whole set in one call: a threaded backend splits all experts' rows in one run.
              be.moeFfn(moe, h, part.map((b, j) => ({ gate: ws[j].gate, up: ws[j].up, down: ws[j].down, rows: b.rows, scales: b.scales })));
              continue;
            }
            part.forEach((b, j) => {
              const n = b.rows.length;
              const w = ws[j];
              be.gatherRows(xe, h, b.rows, D);
              if (be.expertFfn && be.supports("expert_ffn", w.gate.type)) be.expertFfn(ye, xe, w.gate, w.up, w.down, n);
              else {
                be.matmul(ge, w.gate, xe, n);
                be.matmul(ue, w.up, xe, n);
                be.swiglu(ge, ge, ue, n * F);
                be.matmul(ye, w.down, ge, n);
              }
              be.scatterAddRows(moe, ye, b.rows, b.scales, D);
            });
          } finally {
            this.experts.release(il, ids);
          }
        }
        be.add(x, x, moe, T * D);
      }

      const rows = opts.logits === "last" ? 1 : T;
      let fin = x;
      if (rows === 1 && T > 1) {
        fin = alloc(D);
        be.gatherRows(fin, x, Int32Array.of(T - 1), D);
      }
      const normed = alloc(rows * D);
      be.rmsNorm(normed, fin, this.outputNorm, rmsEps, D, rows);
      const logits = alloc(rows * nVocab);
      be.matmul(logits, this.output, normed, rows);
      const out = await be.read(logits);
      kv.length = start + T;
      return out;
    } finally {
      for (const b of bufs) be.free(b);
    }
  }
}

/** Refuse a tensor whose shape differs from the spec, naming both. */
export function checkShape(spec: TensorSpec, w: Pick<HostWeight, "name" | "shape">): void {
  const same = spec.shape.length === w.shape.length && spec.shape.every((s, i) => s === w.shape[i]);
  if (!same) throw new ModelError("bad_shape", `tensor '${w.name}' has shape [${w.shape.join(", ")}], expected [${spec.shape.join(", ")}]`);
}
