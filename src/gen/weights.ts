// How each synthetic tensor is filled. Random matrices get std 1/sqrt(fan_in) so activations stay O(1);
// residual branches are scaled by 1/sqrt(2 * nLayer) (GPT-2 style) so the token embedding stays visible
// at the output, which is what the `peaked` option builds on.
//
// Routing realism (option `routing: "realistic"`): random routers route uniformly, real ones do not.
// - skew: every token embedding carries a shared direction u; router rows are made blind to u except for
//   a bias b_e * u, with b_e falling linearly over a random popularity order, so some experts win more often.
// - locality: q/k norm gains shrink (attention becomes a near-uniform running mean of the context) and
//   the attention output grows, so the router input is dominated by slowly changing context and
//   consecutive tokens pick overlapping experts.
//
// `real-like` (calibrated to real routing traces, issue 17): the realistic mechanism, plus
// - recency: q and k rows all respond equally to u, so every head's q and k share one constant part and
//   the score q.R(delta)k falls with distance (RoPE's spread of frequencies): attention is a running mean
//   of the last few tokens, not of the whole context. Uniform attention's memory grows with the context,
//   so late tokens all route alike (few experts, high top-16 share); a short memory keeps the overlap of
//   neighbours without that drift to a fixed set.
// - per-layer skew: each router's skew is scaled by a random factor, as real layers differ.
import { Stream } from "./random.js";

// Router bias per unit of skew (times the +-2 ramp): chosen so skew 1 gives roughly the popularity imbalance
// reported for real MoE routers (top quarter of experts taking about half of the routings).
const SKEW_GAIN = 0.5;

export type RoutingProfile =
  | { kind: "uniform" }
  | { kind: "realistic"; /** popularity skew, 0 = none; default 1 */ skew: number; /** context locality, 0 = none; default 1 */ locality: number }
  | RealLikeProfile;

// A type, not an interface: traces record the profile as a plain Record.
export type RealLikeProfile = {
  kind: "real-like";
  /** Mean popularity skew; each layer's is this times a random factor in [1 - skewSpread, 1 + skewSpread]. */
  skew: number;
  skewSpread: number;
  /** Scale of the attention output (as realistic's locality): how much context the router sees. */
  locality: number;
  /** q/k norm gain: how sharply attention favours recent tokens (0 = uniform, as realistic). */
  recency: number;
};

/** The calibrated real-like profile (its statistics against the real traces: test/gen/routing-real-like.test.ts). */
export const REAL_LIKE: RealLikeProfile = { kind: "real-like", skew: 3.5, skewSpread: 0.5, locality: 3, recency: 1.8 };

// Size of q's and k's shared constant part, relative to their noise (std ~1): large, so recency dominates.
const RECENCY_SHARED = 3;

export interface WeightRecipeOptions {
  seed: number;
  /** From the architecture's ModelInfo: the residual width (token_embd rows) and the layer count. */
  nEmbd: number;
  nLayer: number;
  nVocab: number;
  /** No output.weight: token_embd doubles as the output projection (output_norm is scaled for it). */
  tiedEmbeddings: boolean;
  routing: RoutingProfile;
  /** > 0: output.weight row v also carries peaked * token_embd row of pred(v), so each token strongly predicts a fixed successor. */
  peaked: number;
  /**
   * Whether attention has q/k norms (default true). Without them (Llama, Mixtral) attn_q / attn_k carry the gain the
   * norms would, so locality and recency shape attention the same way.
   */
  qkNorms?: boolean;
}

/** Fills rows of one tensor in order; rows are shape[0] values, numbered over all outer dimensions. */
export type RowFiller = (row: number, out: Float32Array) => void;

export class WeightRecipes {
  private readonly u: Float32Array; // shared routing direction, entries +-1
  private readonly succ: Int32Array | undefined; // token -> the token it predicts (peaked)
  private readonly pred: Int32Array | undefined;
  private readonly branch: number;

  constructor(private readonly o: WeightRecipeOptions) {
    const D = o.nEmbd;
    const s = new Stream(o.seed, "routing.u");
    this.u = Float32Array.from({ length: D }, () => (s.nextU32() & 1 ? 1 : -1));
    if (o.peaked > 0) {
      this.succ = new Stream(o.seed, "peaked.successor").permutation(o.nVocab);
      this.pred = new Int32Array(o.nVocab);
      for (let v = 0; v < o.nVocab; v++) this.pred[this.succ[v]] = v;
    }
    this.branch = 1 / Math.sqrt(2 * o.nLayer);
  }

  private get realistic(): { skew: number; locality: number } | undefined {
    return this.o.routing.kind === "uniform" ? undefined : this.o.routing;
  }

  private get realLike(): RealLikeProfile | undefined {
    return this.o.routing.kind === "real-like" ? this.o.routing : undefined;
  }

  /**
   * Layer skew factors spread evenly over [1 - spread, 1 + spread], dealt to the layers in a seeded random
   * order: layers differ as real ones do, while the model's mean skew is the profile's whatever the seed
   * (independent draws moved it by ~10% between seeds of an 8-layer model).
   */
  private layerSkewFactor(name: string, spread: number): number {
    const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? 0);
    const n = this.o.nLayer;
    const slot = new Stream(this.o.seed, "routing.skew-order").permutation(n)[layer];
    return 1 + spread * (n > 1 ? (2 * slot) / (n - 1) - 1 : 0);
  }

  /** The q/k norm gain: recency's (real-like), else smaller with locality so attention flattens into a running mean. */
  private qkGain(): number {
    if (this.realLike && this.realLike.recency > 0) return this.realLike.recency;
    const r = this.realistic;
    return r ? 1 / (1 + 2 * r.locality) : 1;
  }

  /** Row v of token_embd, reproducible on its own (the peaked output projection needs random access). */
  embeddingRow(v: number, out: Float32Array): void {
    new Stream(this.o.seed, `token_embd#${v}`).fillUniform(out, 1);
    if (this.realistic) for (let i = 0; i < out.length; i++) out[i] += this.u[i];
  }

  /** Standard deviation of an expert tensor's values (rows of K); the direct sampler uses it too. */
  expertStd(name: string, K: number): number {
    // silu(gate) * up has std ~0.5, so down gets twice the branch scale to keep the residual update O(branch).
    return name.includes("ffn_down_exps") ? (2 * this.branch) / Math.sqrt(K) : 1 / Math.sqrt(K);
  }

  /** A filler for tensor `name` of ggml shape `shape`. */
  filler(name: string, shape: readonly number[]): RowFiller {
    const { tiedEmbeddings, seed } = this.o;
    const K = shape[0];
    const stream = new Stream(seed, name);
    const r = this.realistic;
    const noise = (std: number): RowFiller => (_row, out) => stream.fillUniform(out, std);
    const gain = (center: number, spread = 0.1): RowFiller => (_row, out) => stream.fillUniform(out, spread * center, center);
    const base = name.replace(/^blk\.\d+\./, "").replace(/\.weight$/, "");

    switch (base) {
      case "token_embd":
        return (row, out) => this.embeddingRow(row, out);
      case "output": {
        const emb = new Float32Array(K);
        const scale = this.o.peaked / Math.sqrt(K);
        return (row, out) => {
          stream.fillUniform(out, 1 / Math.sqrt(K));
          if (!this.pred) return;
          this.embeddingRow(this.pred[row], emb);
          for (let i = 0; i < K; i++) out[i] += scale * emb[i];
        };
      }
      case "output_norm":
        if (!tiedEmbeddings) return gain(1);
        // Tied embeddings have std-1 rows: scale the final norm so logits come out with std ~1, with
        // random signs so a token's own embedding (still in the residual) does not always win the next step.
        return (_row, out) => {
          stream.fillUniform(out, 0.1 / Math.sqrt(K), 1 / Math.sqrt(K));
          for (let i = 0; i < K; i++) if (stream.nextU32() & 1) out[i] = -out[i];
        };
      case "attn_norm":
      case "ffn_norm":
      case "post_attention_norm": // GLM's and Qwen3-Next's pre-FFN norm
      case "attn_q_a_norm": // DeepSeek's low-rank q and kv latent norms
      case "attn_kv_a_norm":
      case "ssm_norm":
        return gain(1);
      case "ssm_a": {
        // −exp(A_log) < 0: a decay per value head, exp(g) ~ 0.6-0.9 per token so the state remembers a few tokens.
        const g = gain(0.3, 0.5);
        return (row, out) => {
          g(row, out);
          for (let i = 0; i < K; i++) out[i] = -out[i];
        };
      }
      case "ssm_dt.bias":
        return noise(0.5);
      case "ssm_out": // the DeltaNet's output projection feeds the residual as attn_output does
        return noise(this.branch / Math.sqrt(K));
      case "attn_q.bias":
      case "attn_k.bias":
      case "attn_v.bias":
        return noise(0.5); // large enough that a dropped bias shows in the logits
      // gpt-oss: sinks of the scores' scale; expert gate/up biases wide enough that the ±7 clamp sometimes bites.
      case "attn_sinks":
        return noise(1);
      case "ffn_gate_inp.bias":
        return noise(0.5);
      case "ffn_gate_exps.bias":
      case "ffn_up_exps.bias":
        return noise(3);
      case "attn_output.bias":
      case "ffn_down_exps.bias":
        return noise(this.branch);
      case "ffn_down": // dense layers and shared experts feed the residual as the routed experts do
      case "ffn_down_shexp":
        return noise((2 * this.branch) / Math.sqrt(K));
      case "attn_q_norm":
      case "attn_k_norm":
        return gain(this.qkGain());
      case "attn_q":
      case "attn_k": {
        const recency = this.realLike && this.realLike.recency > 0;
        // Without q/k norms the projection scales q and k itself: the norm's gain over the rms a norm would divide by.
        const g = this.o.qkNorms === false ? this.qkGain() / Math.sqrt(1 + (recency ? RECENCY_SHARED ** 2 : 0)) : 1;
        if (!recency) return noise(g / Math.sqrt(K));
        // Every output row gets the same u-response (x.u ~ K/sqrt2 after the norm), so q and k share a constant part.
        const c = (g * RECENCY_SHARED * Math.SQRT2) / K;
        return (_row, out) => {
          stream.fillUniform(out, g / Math.sqrt(K));
          for (let i = 0; i < K; i++) out[i] += c * this.u[i];
        };
      }
      case "attn_v":
        if (!this.realLike) return noise(1 / Math.sqrt(K));
        // Blind to u: otherwise every token's value carries one constant part, the context mean routes the
        // same experts at every token, and popularity comes from attention rather than from the skew knob.
        return (_row, out) => {
          stream.fillUniform(out, 1 / Math.sqrt(K));
          let proj = 0;
          for (let i = 0; i < K; i++) proj += out[i] * this.u[i];
          for (let i = 0; i < K; i++) out[i] -= (proj * this.u[i]) / K;
        };
      case "ffn_gate_exps":
      case "ffn_up_exps":
      case "ffn_down_exps":
        return noise(this.expertStd(name, K));
      case "attn_output":
        return noise((this.branch * (r ? 1 + 3 * r.locality : 1)) / Math.sqrt(K));
      case "ffn_gate_inp": {
        if (!r) return noise(1 / Math.sqrt(K));
        // Router row e = noise + b_e * u / D, b_e from +2*skew down to -2*skew over a random popularity order.
        const nExpert = shape[1];
        const rank = new Stream(seed, name + "#rank").permutation(nExpert);
        const rl = this.realLike;
        const skew = rl ? rl.skew * this.layerSkewFactor(name, rl.skewSpread) : r.skew;
        return (row, out) => {
          stream.fillUniform(out, 1 / Math.sqrt(K));
          // Remove the noise's own response to u, so popularity comes from the bias alone (skew 0 = none).
          let proj = 0;
          for (let i = 0; i < K; i++) proj += out[i] * this.u[i];
          const b = skew * 2 * (1 - (2 * rank[row]) / Math.max(1, nExpert - 1));
          for (let i = 0; i < K; i++) out[i] += ((b * SKEW_GAIN - proj) * this.u[i]) / K;
        };
      }
      default:
        return noise(1 / Math.sqrt(K));
    }
  }
}
