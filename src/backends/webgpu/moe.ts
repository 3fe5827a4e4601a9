/// <reference types="@webgpu/types" />
// The MoE ops of the WebGPU backend: a layer's experts over their (expert, row) pairs wherever their slots sit
// (moeFfn), the routing on the device (routeOnDevice), and a resident layer's experts run from that routing's
// pair tables with nothing read back (moeRouted). Dispatches go through the backend's recorder (recorder.ts), as its own ops'.
import type { Buf, DeviceRoute, ExpertParts, ExpertRows, RouteSpec } from "../backend.js";
import { weightDims } from "../backend.js";
import { GpuWeight } from "./arena.js";
import { GpuBuf, gbuf, gw } from "./buffers.js";
import { COMBINE_WGSL } from "./kernels.js";
import { MOE_TILE_WORDS, moeTiledDownWgsl, moeTiledGateUpWgsl, pushTiles } from "./moe-tiles.js";
import { ROUTE_FNS, ROUTE_MAX_EXPERTS, ROUTE_MAX_K, ROUTE_WGSL, routeWords } from "./route.js";
import { matvecGroups, moeDownSumWgsl, moeDownWgsl, moeGateUpRoutedWgsl, moeGateUpWgsl } from "./matvec.js";
import type { WebGpuBackend } from "./webgpu.js";

const STORAGE = 0x80, COPY_DST = 0x08;
/** Tokens of one expert from which a prompt's MoE reads its weights once per tile of 16 (moe-tiles.ts), not per token. */
const MOE_TILE_MIN = 4;
/** Most experts per token whose down projections one dispatch sums (moeDownSumWgsl: k · R partials per thread). */
const MAX_SUM_K = 16;

/**
 * A device routing (route.ts has its words) and, when it writes the pair tables, where the layer's experts sit.
 * A decode token's routing with tables is not dispatched at once: moeRouted runs it inside its gate+up dispatch;
 * reading `buf` first dispatches the routing kernel (`pending`).
 */
class GpuRoute implements DeviceRoute {
  constructor(private readonly words: GpuBuf, readonly nTokens: number, readonly k: number, readonly layer?: LayerExperts, public pending?: { logits: GPUBuffer; spec: RouteSpec; run: () => void }) {}
  get tables(): boolean {
    return this.layer !== undefined;
  }
  get buf(): GpuBuf {
    this.pending?.run();
    this.pending = undefined;
    return this.words;
  }
  get rt(): GPUBuffer {
    return this.words.buffer;
  }
}

/** A layer's experts where one dispatch per part reads them: each part of every expert in one buffer, one type. */
interface LayerExperts {
  readonly gate: GpuWeight;
  readonly down: GpuWeight;
  readonly gateBuf: GPUBuffer;
  readonly upBuf: GPUBuffer;
  readonly downBuf: GPUBuffer;
  /** [nExpert · 3] word offsets of gate, up, down. */
  readonly offs: GPUBuffer;
  /** Every part starts at a 16-byte boundary (vec4 readers may read them). */
  readonly aligned: boolean;
}

export class GpuMoe {
  private emptyTable: GPUBuffer | undefined;
  /** Each resident layer's experts as the device routing reads them (false: not placed so), by the source's array. */
  private readonly layerTables = new WeakMap<readonly ExpertParts[], LayerExperts | false>();

  constructor(private readonly be: WebGpuBackend) {}

  /**
   * A MoE layer's experts in the same submission: gate and up with SwiGLU for every (expert, row) pair, one
   * dispatch per weight buffer they sit in, then down the same way, then one scatter-add in pair order (expert
   * order, then row order). Each pair's arithmetic is the same wherever its expert sits, so streamed == resident.
   * Experts of other shapes than the first (none in real files) go one at a time, adding in the same order.
   */
  moeFfn(out: Buf, x: Buf, experts: readonly ExpertRows[]): void {
    const live = experts.filter((e) => e.rows.length > 0);
    if (!live.length) return;
    if (this.decodeSum(out, x, live)) return;
    const pairs = live.reduce((n, e) => n + e.rows.length, 0);
    if (pairs <= 65535 && live.every((e) => sameShapes(e, live[0]))) this.moeSlots(out, x, live); // pairs: workgroups in z
    else for (const e of live) this.moeSlots(out, x, [e]);
  }
  private moeSlots(out: Buf, x: Buf, experts: readonly ExpertRows[]): void {
    const { k: D, n: F } = weightDims(experts[0].gate);
    const P = experts.reduce((a, e) => a + e.rows.length, 0);
    if (P > 65535) throw new RangeError(`webgpu moeFfn: ${P} rows of one expert exceed a dispatch's 65535 workgroups in z`);
    const ae = this.be.scratchBuf("ge", P * F), ye = this.be.scratchBuf("ye", P * D);
    const rows = new Int32Array(P), scales = new Float32Array(P);
    type Group = { w: GpuWeight; bufs: GPUBuffer[]; tab: number[]; aligned: boolean };
    const gateUp = new Map<string, Group>();
    const down = new Map<string, Group>();
    const group = (m: typeof gateUp, w: GpuWeight, bufs: GPUBuffer[], offsets: number[]) => {
      const id = (b: GPUBuffer) => this.be.rec.bufferId(b);
      const key = bufs.length === 1 ? `${w.type}/${id(bufs[0])}` : `${w.type}/${id(bufs[0])}/${id(bufs[1])}`;
      let g = m.get(key);
      if (!g) m.set(key, (g = { w, bufs, tab: [], aligned: true }));
      g.aligned &&= offsets.every((o) => o % 4 === 0);
      return g.tab;
    };
    // An expert with MOE_TILE_MIN tokens or more: its weights read once per tile of 16 (moe-tiles.ts), not per token.
    const tiledGateUp = new Map<string, Group>(), tiledDown = new Map<string, Group>();
    let at = 0;
    for (const e of experts) {
      const g = gw(e.gate, "moeFfn"), u = gw(e.up, "moeFfn"), d = gw(e.down, "moeFfn");
      if (g.type !== u.type) throw new RangeError(`webgpu moeFfn: expert parts '${g.name}' and '${u.name}' are of different types`);
      rows.set(e.rows, at);
      scales.set(e.scales, at);
      if (e.rows.length >= MOE_TILE_MIN) {
        pushTiles(group(tiledGateUp, g, [g.buffer, u.buffer], []), g.wordOffset, u.wordOffset, e.rows, at);
        pushTiles(group(tiledDown, d, [d.buffer], []), d.wordOffset, 0, Array.from(e.rows, (_, i) => at + i), at);
      } else {
        const gu = group(gateUp, g, [g.buffer, u.buffer], [g.wordOffset, u.wordOffset]), dn = group(down, d, [d.buffer], [d.wordOffset]);
        e.rows.forEach((r, i) => {
          gu.push(g.wordOffset, u.wordOffset, r, at + i);
          dn.push(d.wordOffset, at + i, at + i);
        });
      }
      at += e.rows.length;
    }
    const xs = gbuf(x).buffer;
    const xRows = experts.reduce((m, e) => e.rows.reduce((a, r) => Math.max(a, r + 1), m), 0);
    const tiles = (tab: number[]) => [this.be.rec.hostData(Uint32Array.from(tab)), tab.length / MOE_TILE_WORDS] as const;
    for (const { w, bufs, tab } of tiledGateUp.values()) {
      const [t, nt] = tiles(tab);
      this.be.rec.dispatch(`moe_tiled_gate_up/${w.type}`, () => moeTiledGateUpWgsl(w.quant.wgsl), [D, F, t], [bufs[0], bufs[1], this.be.rec.stageBuf, xs, ae.buffer], Math.ceil(F / 64), nt);
    }
    // Each table's staging words first, then the staging buffer (hostData may grow it into a new one).
    for (const { w, bufs, tab, aligned } of gateUp.values()) {
      const t = this.be.rec.hostData(Uint32Array.from(tab));
      this.moeGateUp(w, bufs[0], bufs[1], this.be.rec.stageBuf, t, tab.length / 4, xs, xRows, ae.buffer, aligned);
    }
    for (const { w, bufs, tab } of tiledDown.values()) {
      const [t, nt] = tiles(tab);
      const r2 = this.be.tileRows === 2;
      this.be.rec.dispatch(`moe_tiled_down/${w.type}${r2 ? "/2" : ""}`, () => moeTiledDownWgsl(w.quant.wgsl, r2), [F, D, t], [bufs[0], this.be.rec.stageBuf, ae.buffer, ye.buffer], Math.ceil(D / (r2 ? 128 : 64)), nt);
    }
    for (const { w, bufs, tab, aligned } of down.values()) {
      const t = this.be.rec.hostData(Uint32Array.from(tab));
      this.moeDown(w, bufs[0], this.be.rec.stageBuf, t, tab.length / 3, ae.buffer, P, ye.buffer, aligned);
    }
    this.be.scatterAddRows(out, ye, rows, scales, D);
  }
  /**
   * Experts of row 0 only (a decode token's, streamed or split) whose parts sit in one buffer each: gate+up over
   * the pairs, then down with the weighted sum added into out in one dispatch (moe_down_sum, accumulating: the
   * same sums in the same order as moe_down then the scatter-add), where moeSlots takes three dispatches and four
   * host tables. False, nothing recorded, where they do not fit.
   */
  private decodeSum(out: Buf, x: Buf, experts: readonly ExpertRows[]): boolean {
    const P = experts.length, e0 = experts[0];
    if (P > MAX_SUM_K || !this.be.fuseDownSum) return false;
    const parts = experts.map((e) => [gw(e.gate, "moeFfn"), gw(e.up, "moeFfn"), gw(e.down, "moeFfn")] as const);
    const [g0, u0, d0] = parts[0];
    if (g0.type !== u0.type) return false;
    for (const [j, e] of experts.entries()) {
      if (e.rows.length !== 1 || e.rows[0] !== 0 || !sameShapes(e, e0)) return false;
      const [g, u, d] = parts[j];
      if (g.buffer !== g0.buffer || u.buffer !== u0.buffer || d.buffer !== d0.buffer || g.type !== g0.type || u.type !== u0.type || d.type !== d0.type) return false;
    }
    const { k: D, n: F } = weightDims(g0);
    const o = gbuf(out);
    if (o.length < D) throw new RangeError(`webgpu moeFfn: out holds ${o.length} values, needs ${D}`);
    const ae = this.be.scratchBuf("ge", P * F);
    // [gate, up, xrow 0, orow j] per pair; then [down, arow j, _] per pair and the pairs' weights as f32 words.
    const words = new Uint32Array(4 * P + 4 * P), f = new Float32Array(words.buffer);
    parts.forEach(([g, u, d], j) => {
      words.set([g.wordOffset, u.wordOffset, 0, j], 4 * j);
      words.set([d.wordOffset, j, 0], 4 * P + 3 * j);
      f[7 * P + j] = experts[j].scales[0];
    });
    const at = this.be.rec.hostData(words);
    const aligned = parts.every((ws) => ws.every((w) => w.wordOffset % 4 === 0));
    this.moeGateUp(g0, g0.buffer, u0.buffer, this.be.rec.stageBuf, at, P, gbuf(x).buffer, 1, ae.buffer, aligned);
    const { k: Kd, n: Nd } = weightDims(d0);
    const { q, s, key } = this.be.mm.plan(d0, aligned, Kd, Nd);
    this.be.rec.dispatch(`moe_down_sum/${key}/${P}/acc`, () => moeDownSumWgsl(q, s, P, true), [Kd, Nd, at + 4 * P, at + 7 * P], [d0.buffer, this.be.rec.stageBuf, this.be.mm.xFor(q, ae.buffer, Kd, P), o.buffer], matvecGroups(Nd, s), 1);
    return true;
  }
  /** silu(gate · x) · (up · x) for `pairs` pairs [gate, up, xrow, orow] at word `tab` of `tb` (w: the type and shape of gate). */
  private moeGateUp(w: GpuWeight, gate: GPUBuffer, up: GPUBuffer, tb: GPUBuffer, tab: number, pairs: number, x: GPUBuffer, xRows: number, out: GPUBuffer, aligned: boolean): void {
    const { k, n } = weightDims(w);
    const { q, s, key } = this.be.mm.plan(w, aligned, k, n);
    const xs = this.be.mm.xFor(q, x, k, xRows);
    this.be.rec.dispatch(`moe_gate_up/${key}`, () => moeGateUpWgsl(q, s), [k, n, tab], [gate, up, tb, xs, out], matvecGroups(n, s), pairs);
  }
  /** down · a for `pairs` pairs [down, arow, orow] at word `tab` of `tb`. */
  private moeDown(w: GpuWeight, buffer: GPUBuffer, tb: GPUBuffer, tab: number, pairs: number, a: GPUBuffer, aRows: number, out: GPUBuffer, aligned: boolean): void {
    const { k, n } = weightDims(w);
    const { q, s, key } = this.be.mm.plan(w, aligned, k, n);
    const as = this.be.mm.xFor(q, a, k, aRows);
    this.be.rec.dispatch(`moe_down/${key}`, () => moeDownWgsl(q, s), [k, n, tab], [buffer, tb, as, out], matvecGroups(n, s), pairs);
  }
  routeOnDevice(logits: Buf, nTokens: number, spec: RouteSpec, resident?: readonly ExpertParts[]): DeviceRoute {
    const { nExpert, k } = spec;
    if (nExpert > ROUTE_MAX_EXPERTS || k > ROUTE_MAX_K || k < 1 || k > nExpert) throw new RangeError(`webgpu routing: top-${k} of ${nExpert} experts (at most ${ROUTE_MAX_K} of ${ROUTE_MAX_EXPERTS})`);
    const lg = gbuf(logits);
    if (lg.length < nTokens * nExpert) throw new RangeError(`webgpu routing: ${lg.length} logits for ${nTokens} tokens of ${nExpert}`);
    const P = nTokens * k;
    const layer = resident && P <= 65535 ? this.layerExperts(resident, nExpert) : undefined; // pairs: workgroups in z
    const rt = this.be.scratchBuf("route", routeWords(P));
    const run = () => this.be.rec.dispatch("route", () => ROUTE_WGSL, [nTokens, nExpert, k, spec.normalize ? 1 : 0, layer ? 1 : 0], [lg.buffer, layer?.offs ?? this.noTable(), rt.buffer], nTokens);
    const words = new GpuBuf(rt.buffer, 2 * P);
    if (layer && nTokens === 1 && this.be.fuseRouting) return new GpuRoute(words, nTokens, k, layer, { logits: lg.buffer, spec, run });
    run();
    return new GpuRoute(words, nTokens, k, layer);
  }
  moeRouted(out: Buf, x: Buf, route: DeviceRoute): void {
    if (!(route instanceof GpuRoute) || !route.layer) throw new TypeError("webgpu moeRouted: the route was not made by this backend with the layer's experts");
    const L = route.layer, P = route.nTokens * route.k;
    const { k: D, n: F } = weightDims(L.gate);
    const ae = this.be.scratchBuf("ge", P * F), rt = route.rt;
    const pending = route.pending;
    if (pending) {
      // The routing inside gate+up's dispatch (one token): every workgroup routes, workgroup 0 writes the tables.
      route.pending = undefined;
      const { k: Kg, n: Ng } = weightDims(L.gate);
      const { q, s, key } = this.be.mm.plan(L.gate, L.aligned, Kg, Ng);
      this.be.rec.dispatch(`moe_gate_up_routed/${key}`, () => moeGateUpRoutedWgsl(q, s, ROUTE_FNS),
        [Kg, Ng, pending.spec.nExpert, route.k, pending.spec.normalize ? 1 : 0], [L.gateBuf, L.upBuf, pending.logits, L.offs, this.be.mm.xFor(q, gbuf(x).buffer, Kg, 1), ae.buffer, rt], matvecGroups(Ng, s), P);
    } else this.moeGateUp(L.gate, L.gateBuf, L.upBuf, rt, 3 * P, P, gbuf(x).buffer, route.nTokens, ae.buffer, L.aligned);
    const o = gbuf(out);
    if (o.length < route.nTokens * D) throw new RangeError(`webgpu moeRouted: out holds ${o.length} values, needs ${route.nTokens * D}`);
    if (route.k <= MAX_SUM_K && this.be.fuseDownSum) {
      // down and the weighted sum in one dispatch (the same bits as the two below)
      const { k: Kd, n: Nd } = weightDims(L.down);
      const { q, s, key } = this.be.mm.plan(L.down, L.aligned, Kd, Nd);
      this.be.rec.dispatch(`moe_down_sum/${key}/${route.k}`, () => moeDownSumWgsl(q, s, route.k), [Kd, Nd, 7 * P, 10 * P], [L.downBuf, rt, this.be.mm.xFor(q, ae.buffer, Kd, P), o.buffer], matvecGroups(Nd, s), route.nTokens);
      return;
    }
    const ye = this.be.scratchBuf("ye", P * D);
    this.moeDown(L.down, L.downBuf, rt, 7 * P, P, ae.buffer, P, ye.buffer, L.aligned);
    this.be.rec.dispatch("combine", () => COMBINE_WGSL, [D, route.nTokens, route.k, 10 * P], [rt, ye.buffer, o.buffer], Math.ceil((route.nTokens * D) / 64));
  }
  /** A stand-in for the expert table binding of a routing that writes no tables. */
  private noTable(): GPUBuffer {
    return (this.emptyTable ??= this.be.device.createBuffer({ size: 16, usage: STORAGE }));
  }
  /** The layer's experts as one dispatch per part reads them, or undefined where they are not so placed. */
  private layerExperts(all: readonly ExpertParts[], nExpert: number): LayerExperts | undefined {
    const have = this.layerTables.get(all);
    if (have !== undefined) return have || undefined;
    const parts = all.map((e) => [e.gate, e.up, e.down].map((w) => (w instanceof GpuWeight ? w : undefined)));
    const first = parts[0];
    const fits = all.length === nExpert && first?.every((w) => w) && parts.every((ws) =>
      ws.every((w, i) => w && w.buffer === first[i]!.buffer && w.type === first[i]!.type && w.shape.join() === first[i]!.shape.join())) && first[0]!.type === first[1]!.type;
    if (!fits) {
      this.layerTables.set(all, false);
      return undefined;
    }
    const offs = this.be.device.createBuffer({ size: Math.max(16, 12 * nExpert), usage: STORAGE | COPY_DST });
    this.be.device.queue.writeBuffer(offs, 0, Uint32Array.from(parts.flatMap((ws) => ws.map((w) => w!.wordOffset)))); // a fresh buffer: nothing recorded reads it yet
    const aligned = parts.every((ws) => ws.every((w) => w!.wordOffset % 4 === 0));
    const L: LayerExperts = { gate: first[0]!, down: first[2]!, gateBuf: first[0]!.buffer, upBuf: first[1]!.buffer, downBuf: first[2]!.buffer, offs, aligned };
    this.layerTables.set(all, L);
    return L;
  }
}

const PARTS = ["gate", "up", "down"] as const;
/** Whether two experts' parts have the same shapes (numbers compared: this runs for every expert a layer). */
function sameShapes(e: ExpertRows, a: ExpertRows): boolean {
  for (const k of PARTS) {
    const x = e[k].shape, y = a[k].shape;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  }
  return true;
}
