// Replays a routing trace through a simulated expert cache: exactly StreamingExperts' accounting (same
// acquire groups, same pin rule, same policy calls), minus the bytes. Belady's optimum over the same
// accesses is the bound a policy is judged against.
import { UsageError } from "../util/errors.js";
import type { PolicyContext } from "./policies.js";
import type { EvictionPolicy } from "./eviction.js";
import { acquireGroups } from "./source.js";
import { expertLayers, PHASES, type Phase, type Trace, type TraceCall } from "./trace.js";

export interface PhaseStats {
  accesses: number;
  hits: number;
  misses: number;
  evictions: number;
  /** Bytes of records read on misses. */
  bytesRead: number;
}

export interface ReplayResult {
  slots: number;
  prefill: PhaseStats;
  decode: PhaseStats;
  total: PhaseStats;
}

export interface BeladyResult extends ReplayResult {
  /**
   * Per phase, the most hits any policy can get in that phase alone (misses elsewhere free): the
   * phase's bound. The phases of the total optimum above need not reach it, as it trades one for the other.
   */
  bound: Record<Phase, PhaseStats>;
}

/**
 * Pins during one acquire(). "group" (the default) is what StreamingExperts does: every expert of the
 * acquire is out of the eviction race from the start. "sequential" pins each when its turn comes, so a
 * miss may evict an expert the same acquire asks for later (read twice): kept to show the difference.
 */
export type Pinning = "sequential" | "group";

export interface ReplayOptions {
  /** Cache slots (StreamingExperts.nSlots); at least the model's k, as the engine requires. */
  slots: number;
  /** A fresh policy: replay feeds it every touch/remove/victim the cache would. */
  policy: EvictionPolicy;
  pinning?: Pinning;
}

/** The trace's cache accesses for a cache of `slots`: keys in acquire order, grouped by acquire() call. */
export interface AccessSequence {
  /** The cache size the acquire groups were cut for. */
  slots: number;
  keys: Int32Array;
  /** Layer of each access (bytes per record). */
  layer: Int32Array;
  /** 0 prefill, 1 decode. */
  phase: Uint8Array;
  /** Start index of each acquire() call, plus keys.length at the end. */
  groups: Int32Array;
}

export function accessSequence(trace: Trace, slots: number): AccessSequence {
  const m = trace.header.model;
  if (!Number.isInteger(slots) || slots < m.k) throw new UsageError("bad_option", `replay needs at least k = ${m.k} slots (the engine refuses fewer), got ${slots}`);
  const keys: number[] = [], layer: number[] = [], phase: number[] = [], groups: number[] = [];
  const moe = expertLayers(m); // dense layers (null routes) acquire nothing
  for (const [i, call] of trace.calls.entries()) {
    const p = call.phase === "prefill" ? 0 : 1;
    for (const l of moe) {
      checkIds(call, i, l, m.nExpert);
      for (const g of acquireGroups(call.routes[l]!, slots)) {
        groups.push(keys.length);
        for (const e of g) keys.push(l * m.nExpert + e), layer.push(l), phase.push(p);
      }
    }
  }
  groups.push(keys.length);
  return { slots, keys: Int32Array.from(keys), layer: Int32Array.from(layer), phase: Uint8Array.from(phase), groups: Int32Array.from(groups) };
}

/**
 * A layer's ids within the model's experts: an id past them would make another layer's key (layer x
 * nExpert + id) and replay figures for accesses that never happened. readTrace checks files; this is
 * for traces made in memory (library callers).
 */
function checkIds(call: TraceCall, index: number, layer: number, nExpert: number): void {
  const ids = call.routes[layer];
  if (!ids) throw new UsageError("bad_trace", `${callWhere(call, index)}: layer ${layer} has experts but no routes (null)`);
  for (const e of ids) {
    if (!(Number.isInteger(e) && e >= 0 && e < nExpert)) throw new UsageError("bad_trace", `${callWhere(call, index)}, layer ${layer}: expert id ${e} not in [0, ${nExpert}) (the model's experts per layer)`);
  }
}

/** "trace line 7 (call 5)", or "trace call 5" for a call made in memory. */
const callWhere = (call: TraceCall, index: number) => (call.line ? `trace line ${call.line} (call ${index})` : `trace call ${index}`);

const zero = (): PhaseStats => ({ accesses: 0, hits: 0, misses: 0, evictions: 0, bytesRead: 0 });

export function hitRate(s: PhaseStats): number {
  return s.accesses ? s.hits / s.accesses : NaN;
}

function result(slots: number, byPhase: PhaseStats[]): ReplayResult {
  const total = zero();
  for (const s of byPhase) for (const k of Object.keys(total) as (keyof PhaseStats)[]) total[k] += s[k];
  return { slots, prefill: byPhase[0], decode: byPhase[1], total };
}

/** Hits and misses StreamingExperts would report for this trace with `slots` slots and `policy`. */
export function replay(trace: Trace, opts: ReplayOptions, seq = accessSequence(trace, opts.slots)): ReplayResult {
  const { slots, policy } = opts;
  if (seq.slots !== slots) throw new RangeError(`access sequence cut for ${seq.slots} slots, replayed at ${slots}`);
  const rec = trace.header.model.recordBytes;
  const stats = [zero(), zero()];
  const cached = new Set<number>();
  const pinned = new Set<number>();
  const group = new Set<number>();
  const evictable = (opts.pinning ?? "group") === "group" ? (k: number) => cached.has(k) && !group.has(k) : (k: number) => cached.has(k) && !pinned.has(k);
  for (let g = 0; g + 1 < seq.groups.length; g++) {
    const a = seq.groups[g], b = seq.groups[g + 1];
    pinned.clear();
    group.clear();
    for (let i = a; i < b; i++) group.add(seq.keys[i]);
    policy.begin?.(Array.from(seq.keys.subarray(a, b)));
    for (let i = a; i < b; i++) {
      const key = seq.keys[i];
      const s = stats[seq.phase[i]];
      s.accesses++;
      if (cached.has(key)) {
        s.hits++;
      } else {
        s.misses++;
        s.bytesRead += rec[seq.layer[i]];
        if (cached.size >= slots) {
          const v = policy.victim(evictable, key);
          if (v === undefined || !evictable(v)) throw new Error(`internal: policy offered no evictable key (got ${v})`);
          cached.delete(v);
          policy.remove(v);
          s.evictions++;
        }
        cached.add(key);
      }
      pinned.add(key);
      policy.touch(key);
    }
  }
  return result(slots, stats);
}

/**
 * Farthest-next-use eviction over the accesses, keeping each acquire's experts together. Accesses of
 * phases not `counted` are free: their key may be taken in (if its next counted use is nearer than the
 * farthest cached one's) or skipped, which relaxes the real cache, so the result bounds counted hits.
 */
function beladyRun(seq: AccessSequence, slots: number, rec: number[], counted: (phase: number) => boolean): PhaseStats[] {
  const n = seq.keys.length;
  // next[i]: the next counted access of keys[i] after i, or Infinity.
  const next = new Float64Array(n);
  const seen = new Map<number, number>();
  for (let i = n - 1; i >= 0; i--) {
    next[i] = seen.get(seq.keys[i]) ?? Infinity;
    if (counted(seq.phase[i])) seen.set(seq.keys[i], i);
  }
  const stats = [zero(), zero()];
  const nextUse = new Map<number, number>(); // cached key -> its next counted access
  const group = new Set<number>();
  const farthest = (): [number, number] => {
    let bk = -1, bu = -Infinity;
    for (const [k, u] of nextUse) if (u > bu && !group.has(k)) [bk, bu] = [k, u];
    return [bk, bu];
  };
  for (let g = 0; g + 1 < seq.groups.length; g++) {
    const a = seq.groups[g], b = seq.groups[g + 1];
    const real = counted(seq.phase[a]); // one acquire belongs to one call, so to one phase
    group.clear();
    if (real) for (let i = a; i < b; i++) group.add(seq.keys[i]);
    for (let i = a; i < b; i++) {
      const key = seq.keys[i];
      if (!real) {
        if (nextUse.has(key) || next[i] === Infinity) {
          if (nextUse.has(key)) nextUse.set(key, next[i]);
          continue;
        }
        if (nextUse.size >= slots) {
          const [v, u] = farthest();
          if (u <= next[i]) continue;
          nextUse.delete(v);
        }
        nextUse.set(key, next[i]);
        continue;
      }
      const s = stats[seq.phase[i]];
      s.accesses++;
      if (nextUse.has(key)) s.hits++;
      else {
        s.misses++;
        s.bytesRead += rec[seq.layer[i]];
        if (nextUse.size >= slots) {
          const [v] = farthest();
          if (v < 0) throw new Error("internal: no evictable key for Belady");
          nextUse.delete(v);
          s.evictions++;
        }
      }
      nextUse.set(key, next[i]);
    }
  }
  return stats;
}

/** Belady's optimum at `slots`: the total optimum, and per phase the bound on that phase's hits. */
export function belady(trace: Trace, slots: number, seq = accessSequence(trace, slots)): BeladyResult {
  if (seq.slots !== slots) throw new RangeError(`access sequence cut for ${seq.slots} slots, Belady at ${slots}`);
  const rec = trace.header.model.recordBytes;
  const all = result(slots, beladyRun(seq, slots, rec, () => true));
  const bound = {} as Record<Phase, PhaseStats>;
  PHASES.forEach((p, pi) => (bound[p] = beladyRun(seq, slots, rec, (x) => x === pi)[pi]));
  return { ...all, bound };
}

/** Slots for a multiple of one token's experts across the layers with experts (k x those layers), capped at every expert. */
export function slotsForMultiple(trace: Trace, multiple: number): number {
  const m = trace.header.model;
  const n = expertLayers(m).length;
  return Math.min(n * m.nExpert, Math.max(m.k, Math.round(multiple * m.k * n)));
}

/**
 * The trace cut to one layer (the others marked expertless): replaying it at `multiple` x k slots is
 * that layer's own pool, the layer-aware alternative to the one pool StreamingExperts shares.
 */
export function layerTrace(trace: Trace, layer: number): Trace {
  const m = trace.header.model;
  const recordBytes = m.recordBytes.map((b, l) => (l === layer ? b : 0));
  return { header: { ...trace.header, model: { ...m, recordBytes } }, calls: trace.calls.map((c) => ({ ...c, routes: c.routes.map((r, l) => (l === layer ? r : null)) })) };
}

/** What the engine tells a policy of this trace's model (as load.ts does): k touches per layer with experts, and the layers' experts. */
export function policyContext(trace: Trace): PolicyContext {
  const m = trace.header.model;
  return { touchesPerToken: m.k * expertLayers(m).length, layerExperts: m.recordBytes.map((b) => (b > 0 ? m.nExpert : 0)) };
}
