// The DeepSeek-style MoE block deepseek2 and glm4moe share: leading dense SwiGLU layers, then routed experts
// (softmax or sigmoid scores, an optional selection-only bias exp_probs_b, an optional group limit, weights
// renormalised and scaled) plus always-on shared experts; and the trailing nextn_predict_layers MTP blocks,
// declared so files carrying them load, never run. Its keys, tensor declarations and routing setup, once.
import type { Backend, Buf, Weight } from "../backends/backend.js";
import type { ExpertSource } from "../experts/source.js";
import { metaBool, metaNumber } from "../format/gguf/accessors.js";
import type { GGUFMetaValue, GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { ModelError } from "../util/errors.js";
import { count, metaInRange, metaPerLayer, type Range } from "./hparams.js";
import { type Pass } from "./layers.js";
import { denseFfn, moe, type LookaheadRouter } from "./moe-block.js";
import { groupTopKRoute, type RouteFn } from "./routing.js";
import { nextnUnused, swigluExperts, type Declare } from "./tensors.js";

export interface MoeHParams {
  /** leading_dense_block_count: the first layers have a dense FFN instead of experts. */
  nDenseLead: number;
  /** feed_forward_length: the dense layers' FFN width. */
  nFf: number;
  nExpert: number;
  nExpertUsed: number;
  nFfExp: number;
  /** expert_shared_count: the shared experts' width is nFfExp * this (0: none). */
  nExpertShared: number;
  /** expert_group_count / expert_group_used_count (0 or 1: no group limit). */
  nGroup: number;
  nGroupUsed: number;
  gating: "softmax" | "sigmoid";
  expertWeightsNorm: boolean;
  /** 0: none. */
  expertWeightsScale: number;
}

/**
 * The MoE keys of `arch`, checked against each other and the layer count. `gatingDefault` is what
 * expert_gating_func 0 (absent) means: sigmoid for glm4moe, softmax for DeepSeek-V2 files (llama.cpp's rule).
 */
export function readMoeHParams(md: GGUFMetadata, arch: string, layers: { nLayer: number; blocks: number }, gatingDefault: MoeHParams["gating"]): MoeHParams {
  const { nLayer, blocks } = layers;
  const k = (name: string) => `${arch}.${name}`;
  const n = (name: string, r: Range, opts?: { default: number }) => metaInRange(md, k(name), r, opts);
  const bad = (msg: string) => new ModelError("bad_hparams", `${arch}: ${msg}`);
  const gatingId = n("expert_gating_func", count(0, 255), { default: 0 });
  const gating = ({ 0: gatingDefault, 1: "softmax", 2: "sigmoid" } as const)[gatingId as 0 | 1 | 2];
  if (!gating) throw bad(`expert_gating_func ${gatingId} is not supported (0: ${gatingDefault}, 1: softmax, 2: sigmoid)`);
  const nDenseLead = n("leading_dense_block_count", count(0, 1024), { default: 0 });
  // Keys a file may give per layer: feed_forward_length matters on the dense layers, the expert keys on the others.
  const dense = Array.from({ length: Math.min(nDenseLead, nLayer) }, (_, i) => i);
  const moeLayers = Array.from({ length: Math.max(0, nLayer - nDenseLead) }, (_, i) => nDenseLead + i);
  const perLayer = (name: string, r: Range, used: number[], opts?: { default: number }) => metaPerLayer(md, k(name), r, { blocks, used, ...opts });
  const hp: MoeHParams = {
    nDenseLead,
    nFf: perLayer("feed_forward_length", count(0, 1 << 20), dense, { default: 0 }),
    nExpert: n("expert_count", count(1, 1 << 16)),
    nExpertUsed: perLayer("expert_used_count", count(1, 1 << 16), moeLayers),
    nFfExp: perLayer("expert_feed_forward_length", count(1, 1 << 20), moeLayers),
    nExpertShared: n("expert_shared_count", count(0, 64)),
    nGroup: n("expert_group_count", count(0, 1 << 16), { default: 0 }),
    nGroupUsed: n("expert_group_used_count", count(0, 1 << 16), { default: 0 }),
    gating,
    expertWeightsNorm: metaBool(md, k("expert_weights_norm"), { default: false }),
    expertWeightsScale: metaNumber(md, k("expert_weights_scale"), { default: 0 }),
  };
  if (hp.nExpertUsed > hp.nExpert) throw bad(`expert_used_count ${hp.nExpertUsed} not in [1, ${hp.nExpert}]`);
  if (hp.nDenseLead > nLayer) throw bad(`leading_dense_block_count ${hp.nDenseLead} exceeds the ${nLayer} layers`);
  if (hp.nDenseLead > 0 && hp.nFf < 1) throw bad(`feed_forward_length is needed for ${hp.nDenseLead} leading dense layers`);
  if (!(Number.isFinite(hp.expertWeightsScale) && hp.expertWeightsScale >= 0 && hp.expertWeightsScale <= 1e6)) throw bad(`expert_weights_scale ${hp.expertWeightsScale} is not in [0, 1e6]`);
  try {
    moeRoute(hp); // refuses a group split the router cannot make, naming the keys
  } catch (e) {
    throw bad(`expert_group_count ${hp.nGroup} / expert_group_used_count ${hp.nGroupUsed} with ${hp.nExpert} experts, ${hp.nExpertUsed} used: ${(e as Error).message}`);
  }
  return hp;
}

/** readMoeHParams' keys, from hp (feed_forward_length and the expert counts are written with the generic decoder keys). */
export function moeMetadata(arch: string, hp: MoeHParams): [string, GGUFMetaValue][] {
  const k = (name: string) => `${arch}.${name}`;
  return [
    [k("expert_group_count"), meta.u32(hp.nGroup)],
    [k("expert_group_used_count"), meta.u32(hp.nGroupUsed)],
    [k("expert_feed_forward_length"), meta.u32(hp.nFfExp)],
    [k("expert_shared_count"), meta.u32(hp.nExpertShared)],
    [k("leading_dense_block_count"), meta.u32(hp.nDenseLead)],
    [k("expert_weights_scale"), meta.f32(hp.expertWeightsScale)],
    [k("expert_weights_norm"), meta.bool(hp.expertWeightsNorm)],
    [k("expert_gating_func"), meta.u32(hp.gating === "softmax" ? 1 : 2)],
  ];
}

/** A MoE layer's gating; `bias` is its exp_probs_b (read from the backend once), if the file has one. */
export function moeRoute(hp: MoeHParams, bias?: Float32Array): RouteFn {
  return groupTopKRoute({
    nExpert: hp.nExpert, k: hp.nExpertUsed, gating: hp.gating, selectionBias: bias, nGroup: hp.nGroup, nGroupUsed: hp.nGroupUsed,
    normalize: hp.expertWeightsNorm, scale: hp.expertWeightsScale,
  });
}

/** A layer's FFN half: a dense SwiGLU for the leading layers, else the router, selection bias and shared experts. */
export type FfnWeights =
  | { kind: "dense"; gate: Weight; up: Weight; down: Weight }
  | { kind: "moe"; ffn_gate_inp: Weight; exp_probs_b: Weight | undefined; shared: { gate: Weight; up: Weight; down: Weight } | undefined };

/**
 * Layer i's FFN tensors (shapes in ggml order) from its name maker `n`; its routed experts are declared as
 * streamed parts. exp_probs_b is required where `biasRequired` (glm4moe), optional otherwise (DeepSeek-V2 has none).
 */
export function declareFfn(t: Declare, i: number, n: (s: string, kind?: string) => string, hp: MoeHParams, D: number, opts: { biasRequired: boolean; fusedExperts: boolean }): FfnWeights {
  const { nExpert: E, nFfExp: F, nFf } = hp;
  const Fs = F * hp.nExpertShared;
  if (i < hp.nDenseLead) return { kind: "dense", gate: t(n("ffn_gate"), [D, nFf]), up: t(n("ffn_up"), [D, nFf]), down: t(n("ffn_down"), [nFf, D]) };
  swigluExperts(t, i, D, F, E, opts.fusedExperts); // deepseek2 also takes a fused ffn_gate_up_exps (llama.cpp), glm4moe not
  const biasRequired = opts.biasRequired;
  const shared = Fs > 0 ? { gate: t(n("ffn_gate_shexp"), [D, Fs]), up: t(n("ffn_up_shexp"), [D, Fs]), down: t(n("ffn_down_shexp"), [Fs, D]) } : undefined;
  const bias = biasRequired ? t(n("exp_probs_b", "bias"), [E]) : t.optional(n("exp_probs_b", "bias"), [E]);
  return { kind: "moe", ffn_gate_inp: t(n("ffn_gate_inp"), [D, E]), exp_probs_b: bias, shared };
}

/** An MTP block's MoE and nextn tensors (llama.cpp's loader knows them all): allowed in the file, never read. */
export function declareMtpUnused(t: Declare, layer: number, hp: MoeHParams, D: number, V: number, fusedExperts: boolean): void {
  const n = (name: string, kind = "weight") => `blk.${layer}.${name}.${kind}`;
  const { nExpert: E, nFfExp: F } = hp;
  const Fs = F * hp.nExpertShared;
  const mtp: [string, number[]][] = [
    [n("ffn_gate_inp"), [D, E]], [n("exp_probs_b", "bias"), [E]],
    [n("ffn_gate_exps"), [D, F, E]], [n("ffn_up_exps"), [D, F, E]], [n("ffn_down_exps"), [F, D, E]],
    ...(fusedExperts ? ([[n("ffn_gate_up_exps"), [D, 2 * F, E]]] as [string, number[]][]) : []),
    ...(Fs > 0 ? ([[n("ffn_gate_shexp"), [D, Fs]], [n("ffn_up_shexp"), [D, Fs]], [n("ffn_down_shexp"), [Fs, D]]] as [string, number[]][]) : []),
  ];
  for (const [name, shape] of mtp) t.unused(name, shape, { seldom: name.includes("gate_up") }); // the generator writes gate and up
  nextnUnused(t, layer, D, V);
}

export interface Routing {
  /** Per layer its RouteFn (undefined for a dense layer). */
  routes: (RouteFn | undefined)[];
  /** Per layer the MoE routers after it, nearest first, for lookahead. */
  ahead: LookaheadRouter[][];
}

/**
 * Each MoE layer's RouteFn with its selection bias: the biases come to the host once (routing runs there), in
 * one read. `layers` are the model's, each with its ffn norm (for lookahead) and FFN weights.
 */
export async function readRouting(be: Backend, hp: MoeHParams, layers: readonly { norm: Weight; ffn: FfnWeights }[]): Promise<Routing> {
  const moeLayers = layers.flatMap((L, i) => (L.ffn.kind === "moe" ? [{ i, norm: L.norm, ffn: L.ffn }] : []));
  const bufs = moeLayers.map(({ ffn }) => {
    if (!ffn.exp_probs_b) return undefined;
    const b = be.alloc(hp.nExpert);
    be.zero(b);
    be.addRows(b, ffn.exp_probs_b, hp.nExpert, 1);
    return b;
  });
  const present = bufs.filter((b) => b !== undefined);
  try {
    const read = await be.readMany(present);
    const routes: (RouteFn | undefined)[] = new Array(layers.length).fill(undefined);
    let j = 0;
    moeLayers.forEach(({ i }, m) => (routes[i] = moeRoute(hp, bufs[m] ? read[j++] : undefined)));
    const routers = moeLayers.map(({ i, norm, ffn }): LookaheadRouter => ({ layer: i, norm, router: ffn.ffn_gate_inp, route: routes[i]! }));
    return { routes, ahead: layers.map((_, i) => routers.filter((r) => r.layer > i)) };
  } finally {
    for (const b of present) be.free(b);
  }
}

/**
 * A model's routing, read on its first forward; a failed read is retried by the next call. `get` is what a
 * model's forward awaits.
 */
export class LazyRouting {
  private p?: Promise<Routing>;
  constructor(private readonly read: () => Promise<Routing>) {}
  get(): Promise<Routing> {
    this.p ??= this.read();
    this.p.catch(() => (this.p = undefined));
    return this.p;
  }
}

/** Layer il's FFN half on the normed rows h into y: the dense SwiGLU, or routed + shared experts (x: the residual, for lookahead). */
export async function ffnBlock(f: Pass, y: Buf, h: Buf, x: Buf, il: number, w: FfnWeights, p: { hp: MoeHParams; experts: ExpertSource; routing: Routing; eps: number }): Promise<void> {
  if (w.kind === "dense") return denseFfn(f, y, h, w);
  await moe(f, y, h, {
    layer: il, router: w.ffn_gate_inp, route: p.routing.routes[il]!, nExpert: p.hp.nExpert, nFf: p.hp.nFfExp, experts: p.experts,
    shared: w.shared, lookahead: { residual: x, next: p.routing.ahead[il], eps: p.eps },
  });
}
