// The routed MoE block architectures share, as llama.cpp's build_moe_ffn and mlx-lm's switch_layers.py hold it:
// route, acquire the experts (the ids are the read request), router lookahead, bucketed expert FFNs (on a split
// tier, the experts the GPU lacks on the host backend), release; and the dense SwiGLU FFN. One parameter object each.
import type { Backend, Buf, DeviceRoute, ExpertParts, ExpertRows, Weight } from "../backends/backend.js";
import { decodeRoute } from "../backends/backend.js";
import { acquireGroups, type ExpertSource, type ExpertWeights, type HostExperts } from "../experts/source.js";
import { Pass, ScratchPool } from "./layers.js";
import { bucketByExpert, type RouteFn } from "./routing.js";

/** Per layer of nLayer, the MoE routers after it (nearest first): what its router lookahead may run. */
export function routersAfter(routers: readonly LookaheadRouter[], nLayer: number): LookaheadRouter[][] {
  return Array.from({ length: nLayer }, (_, i) => routers.filter((r) => r.layer > i));
}

/** A later MoE layer's router, for lookahead: its ffn norm applied to the residual stream, then its router. */
export interface LookaheadRouter {
  layer: number;
  norm: Weight;
  router: Weight;
  /** The router's bias [nExpert] (gpt-oss). */
  bias?: Weight;
  route: RouteFn;
}

export interface MoeParams {
  layer: number;
  /** ffn_gate_inp [D, nExpert]. */
  router: Weight;
  route: RouteFn;
  nExpert: number;
  /** Rows of each expert's gate/up (its FFN width). */
  nFf: number;
  experts: ExpertSource;
  /**
   * A shared expert every row goes through (DeepSeek, Qwen3-Next): a dense SwiGLU FFN added to the routed
   * output, scaled per row by sigmoid(gateInp · x) where gateInp ([D] or [D, 1]; Qwen3-Next) is given.
   */
  shared?: { gate: Weight; up: Weight; down: Weight; gateInp?: Weight };
  /** Decode only: the residual stream and the MoE layers after this one, nearest first, for router lookahead. */
  lookahead?: { residual: Buf; next: readonly LookaheadRouter[]; eps: number };
  /** ffn_gate_inp.bias [nExpert], added to the router logits (gpt-oss). */
  routerBias?: Weight;
  /** The experts' activation: SwiGLU (default), or gpt-oss's clamped one (swiglu_oai). */
  act?: ExpertAct;
}

/** gpt-oss's clamped SwiGLU: min(g, limit) · σ(alpha · min(g, limit)) · (clamp(u, ±limit) + 1). */
export interface ExpertAct {
  kind: "swiglu_oai";
  alpha: number;
  limit: number;
}

/**
 * out[T, D] = Σ_k weight_k · expert_k(x) over the routed experts (+ the shared expert, if any), SwiGLU experts
 * with parts gate [D, F], up [D, F], down [F, D]. The router, the shared expert's gate and the lookahead routers
 * come back in one host read; the ids are the read request; each expert is acquired once per batch and runs
 * once over its bucket of rows.
 */
export async function moe(f: Pass, out: Buf, x: Buf, p: MoeParams): Promise<void> {
  f.checkAbort();
  const { be, nTokens: T } = f;
  const D = x.length / T;
  const src = p.experts;
  const logits = f.buf("moe.router", T * p.nExpert); // [T, nExpert]
  be.matmul(logits, p.router, x, T);
  if (p.routerBias) be.addRows(logits, p.routerBias, p.nExpert, T);
  // Router lookahead (decode): layers il+1 .. il+depth route the residual stream as it stands, so their
  // experts can be read while the layers in between compute.
  const ahead = T === 1 && src.prefetch && p.lookahead ? p.lookahead.next.slice(0, src.prefetchDepth ?? 1) : [];
  const reads = [logits];
  // The shared expert's gate logits [T] come back in the same host read as the router's.
  const gateInp = p.shared?.gateInp;
  if (gateInp) {
    const gl = f.buf("moe.shexp.gate", T);
    be.matmul(gl, gateInp, x, T);
    reads.push(gl);
  }
  ahead.forEach((a, d) => {
    const hn = f.buf("moe.lookahead.norm", D);
    be.rmsNorm(hn, p.lookahead!.residual, a.norm, p.lookahead!.eps, D, 1);
    const rl = f.buf(`moe.lookahead.${d}`, a.router.shape[1]);
    be.matmul(rl, a.router, hn, 1);
    if (a.bias) be.addRows(rl, a.bias, a.router.shape[1], 1);
    reads.push(rl);
  });
  // Plain softmax top-k on a backend that routes on its device: the ids and weights come from there, so a layer
  // whose experts are all on the device reads nothing back, and one that streams them reads only the routing.
  const spec = p.route.spec;
  let route: DeviceRoute | undefined;
  if (spec && be.routeOnDevice && !f.hooks?.onRoute && !p.routerBias && !p.act) {
    // Decode only: a batch's pairs are better grouped by expert (host tables: one expert's rows run side by side,
    // its weights read once into the GPU's cache), worth the one read back.
    const all = T === 1 && !p.shared && be.moeRouted ? src.deviceLayer?.(p.layer) : undefined;
    const parts = all?.every((w): w is ExpertWeights & ExpertParts => Object.keys(w).length === 3 && !!(w.gate && w.up && w.down)) ? all : undefined;
    route = be.routeOnDevice(logits, T, spec, parts);
    if (route.tables && be.moeRouted) {
      be.moeRouted(out, x, route);
      src.countDeviceRouted?.(T * spec.k);
      await f.cb("ffn_moe_out", p.layer, out);
      return;
    }
    reads[0] = route.buf;
  }
  // A split tier runs some experts on the host: they need the layer's input there, read with the routing.
  const split = src.host && src.host.backend !== be ? src.host : undefined;
  if (split) reads.push(x);
  split?.backend.wake?.(); // its threads spin through the read, for the host experts after it
  // While the GPU computes up to the read, the split tier's admitted experts go up (their host copies and the
  // recorded copies ride the GPU's wait, not the layer's path). Awaited after it: done by then where their records
  // are cached (a microtask), else after their reads, so the tier holds the same experts whatever the host cache.
  let admitting: Promise<void> | undefined;
  const admit = split?.admitQueued && (() => void (admitting = split.admitQueued!()));
  const [rl, ...rest] = await be.readMany(reads, admit);
  await admitting;
  const xHost = split ? rest.pop() : undefined;
  const sharedGate = gateInp ? rest.shift()! : undefined;
  const predicted = rest;
  const routing = route ? { nTokens: T, k: route.k, ...decodeRoute(route, rl) } : p.route(rl, T);
  f.hooks?.onRoute?.(p.layer, routing, rl);

  const buckets = bucketByExpert(routing);
  be.zero(out);
  const byExpert = new Map(buckets.map((b) => [b.expert, b]));
  const where = split?.split(p.layer, Array.from(routing.ids)); // every pair: a batch's uses count
  // The host's experts start first where nothing goes up and the host cache holds all the layer's at once (a
  // resident one; a decode token's): the host backend's threads compute while this one acquires and records the
  // device's. Else once the device's are acquired (their uploads done: they copy on the same threads, and the host
  // cache's records they took released), before they are recorded. Its rejection is taken below, or dropped if the
  // device's part throws.
  let part: Promise<Float32Array> | undefined;
  const startHost = () => {
    if (!split || !where!.host.length || part) return;
    part = hostExpertFfns(f, split, xHost!, where!.host, byExpert, p);
    part.catch(() => undefined);
  };
  if (where && !where.uploads && where.host.length + where.device.length <= (split!.capacity ?? Infinity)) startHost();
  // A batch routing to more experts than the cache holds at once goes in groups, each expert read once.
  const groups = acquireGroups(where ? where.device : routing.ids, src.capacity ?? buckets.length);
  let shared: Buf | undefined;
  // After the first demand reads: the lookahead's prefetches, and the resident shared expert (computing while
  // the first group's reads are in flight). Should it fail, `onFail` releases that group once its acquire settles.
  const afterDemand = async (onFail: () => void): Promise<void> => {
    ahead.forEach((a, d) => src.prefetch!(a.layer, [...a.route(predicted[d], 1).ids], d + 1));
    if (p.shared) {
      shared = await sharedFfn(f, x, p.shared, p.layer).catch((e: unknown) => {
        onFail();
        throw e;
      });
    }
  };
  for (const [g, ids] of groups.entries()) {
    const acquired = src.acquire(p.layer, ids);
    acquired.catch(() => undefined); // awaited below; this only keeps it from counting as unhandled meanwhile
    if (g === 0) await afterDemand(() => void acquired.then(() => src.release(p.layer, ids), () => undefined));
    const ws = await acquired;
    if (g === groups.length - 1) startHost();
    try {
      expertFfns(f, out, x, ws, ids.map((e) => byExpert.get(e)!), p.nFf, p.act);
    } finally {
      src.release(p.layer, ids);
    }
  }
  if (!groups.length) {
    await afterDemand(() => undefined);
    startHost();
  }
  if (part) {
    // The host's sum goes up recorded; where the device adds it later (addLater), this thread records on (the next
    // layer's attention) while the host backend computes it on threads of its own.
    if (be.addLater) f.late.push(be.addLater(out, T * D, part));
    else {
      const hp = f.buf("moe.host", T * D);
      be.write(hp, await part);
      be.add(out, out, hp, T * D);
    }
  }
  await f.cb("ffn_moe_out", p.layer, out);
  if (shared) {
    if (!sharedGate) be.add(out, out, shared, T * D);
    else {
      const rows = Int32Array.from({ length: T }, (_, t) => t);
      be.scatterAddRows(out, shared, rows, sharedGate.map((v) => 1 / (1 + Math.exp(-v))), D);
    }
    await f.cb("ffn_out", p.layer, out);
  }
}

/** Host scratch of each split tier's backend: a pass takes one and gives it back (overlapping passes never share). */
const hostScratch = new WeakMap<HostExperts, ScratchPool>();

/** Σ weight · expert(x) over experts `ids` (their buckets in byExpert) on the split tier's host backend: [T, D] on the host. */
async function hostExpertFfns(f: Pass, h: HostExperts, x: Float32Array, ids: readonly number[], byExpert: ReadonlyMap<number, { rows: Int32Array; scales: Float32Array }>, p: MoeParams): Promise<Float32Array> {
  const pool = hostScratch.get(h) ?? hostScratch.set(h, new ScratchPool(h.backend)).get(h)!;
  const scratch = pool.take();
  const tm = h.timing, t0 = tm ? performance.now() : 0;
  try {
    const hf = new Pass(h.backend, scratch, f.startPos, f.nTokens, undefined, f.signal);
    const xh = hf.buf("moe.host.x", x.length), out = hf.buf("moe.host.out", x.length);
    h.backend.write(xh, x);
    h.backend.zero(out);
    for (const group of acquireGroups(ids, h.capacity ?? ids.length)) {
      const ws = await h.acquire(p.layer, group);
      try {
        const buckets = group.map((e) => byExpert.get(e)!);
        const be = h.backend;
        const tc = tm ? performance.now() : 0;
        if (be.moeFfnAsync && fusedMoe(be, ws, p.act)) await be.moeFfnAsync(out, xh, moeRows(ws, buckets));
        else expertFfns(hf, out, xh, ws, buckets, p.nFf, p.act);
        if (tm) tm.computeMs += performance.now() - tc;
      } finally {
        h.release(p.layer, group);
      }
    }
    const sum = await h.backend.read(out);
    if (tm) (tm.parts++, (tm.experts += ids.length), (tm.ms += performance.now() - t0));
    return sum;
  } finally {
    pool.give(scratch);
  }
}

/** The shared expert over all T rows, into its own buffer (added to the routed output at the end). */
async function sharedFfn(f: Pass, x: Buf, w: NonNullable<MoeParams["shared"]>, layer: number): Promise<Buf> {
  const out = f.buf("moe.shexp", x.length);
  swigluFfn(f, out, x, w, f.nTokens, w.gate.shape[1], "shexp");
  await f.cb("ffn_shexp", layer, out);
  return out;
}

/** Each expert over its rows, scatter-added into out: the fused op where the backend has one for these types. */
function expertFfns(f: Pass, out: Buf, x: Buf, ws: readonly ExpertWeights[], buckets: readonly { rows: Int32Array; scales: Float32Array }[], F: number, act?: ExpertAct): void {
  const { be, nTokens: T } = f;
  const D = x.length / T;
  if (be.moeFfn && fusedMoe(be, ws, act)) {
    // The whole set in one call: a threaded backend splits all experts' rows in one run.
    be.moeFfn(out, x, moeRows(ws, buckets));
    return;
  }
  const xe = f.buf("moe.xe", T * D), ye = f.buf("moe.ye", T * D);
  buckets.forEach((b, j) => {
    const n = b.rows.length;
    be.gatherRows(xe, x, b.rows, D);
    swigluFfn(f, ye, xe, ws[j], n, F, "ffn", act);
    be.scatterAddRows(out, ye, b.rows, b.scales, D);
  });
}

/** Whether the backend's moeFfn runs these experts (plain SwiGLU of a type it takes). */
function fusedMoe(be: Backend, ws: readonly ExpertWeights[], act?: ExpertAct): boolean {
  return ws.every((w) => plainSwiglu(w, act) && be.supports("moe_ffn", w.gate.type));
}
/** moeFfn's experts: each one's parts with its bucket's rows and scales. */
function moeRows(ws: readonly ExpertWeights[], buckets: readonly { rows: Int32Array; scales: Float32Array }[]): ExpertRows[] {
  return buckets.map((b, j) => ({ gate: ws[j].gate, up: ws[j].up, down: ws[j].down, rows: b.rows, scales: b.scales }));
}

/** Per-expert biases (gpt-oss): optional parts of an expert record, [F] for gate and up, [D] for down. */
const biasOf = (w: ExpertWeights, part: "gate_b" | "up_b" | "down_b"): Weight | undefined => w[part];

/** Whether an expert is the plain SwiGLU the fused kernels run: no bias parts, no other activation. */
function plainSwiglu(w: ExpertWeights, act?: ExpertAct): boolean {
  return !act && !biasOf(w, "gate_b") && !biasOf(w, "up_b") && !biasOf(w, "down_b");
}

/**
 * out[n, D] = down(act(gate x + bg, up x + bu)) + bd over n rows (gate, up [D, F]; down [F, D]); act silu(g) · u,
 * or gpt-oss's clamped SwiGLU; the biases where the expert has them.
 */
function swigluFfn(f: Pass, out: Buf, x: Buf, w: ExpertWeights, n: number, F: number, tag = "ffn", act?: ExpertAct): void {
  const be = f.be;
  if (plainSwiglu(w, act) && be.expertFfn && be.supports("expert_ffn", w.gate.type)) return be.expertFfn(out, x, w.gate, w.up, w.down, n);
  // A tag per FFN width (routed experts, shared expert), so scratch is not reallocated between them each layer.
  const ge = f.buf(`${tag}.gate`, f.nTokens * F), ue = f.buf(`${tag}.up`, f.nTokens * F);
  be.matmul(ge, w.gate, x, n);
  be.matmul(ue, w.up, x, n);
  const bg = biasOf(w, "gate_b"), bu = biasOf(w, "up_b"), bd = biasOf(w, "down_b");
  if (bg) be.addRows(ge, bg, F, n);
  if (bu) be.addRows(ue, bu, F, n);
  if (act) be.swigluOai(ge, ge, ue, n * F, act.alpha, act.limit);
  else be.swiglu(ge, ge, ue, n * F);
  be.matmul(out, w.down, ge, n);
  if (bd) be.addRows(out, bd, w.down.shape[1], n);
}

/** A dense SwiGLU FFN over all T rows (leading dense layers, shared experts): out[T, D]. */
export function denseFfn(f: Pass, out: Buf, x: Buf, w: { gate: Weight; up: Weight; down: Weight }): void {
  f.checkAbort();
  swigluFfn(f, out, x, w, f.nTokens, w.gate.shape[1], "dense"); // its own scratch: its width differs from the experts'
}

