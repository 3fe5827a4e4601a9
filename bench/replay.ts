// npm run bench -- replay: hit rate of every eviction policy, and Belady's bound, on the real routing
// traces in ../shared/traces (relative to the repo root; skipped with a note where absent, as in CI), at
// 1x/2x/4x/8x a token's experts per layer. Two pools: the one StreamingExperts has (one pool for every
// layer, multiple x k x layers slots) and a pool per layer (multiple x k slots each, summed), which is how
// the figures were taken. Both replay with group pinning (an acquire's experts, here the current
// token's experts of a layer, are pinned from the start) and count cold misses.
// The generator's presets are not replayed here: a trace of them needs a model run (moestream trace).
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { policyByName, POLICY_NAMES } from "../src/experts/policies.js";
import { accessSequence, belady, hitRate, layerTrace, policyContext, replay, slotsForMultiple, type PhaseStats } from "../src/experts/replay.js";
import { expertLayers, readTrace, type Trace } from "../src/experts/trace.js";
import { formatRoutingStats, traceRoutingStats } from "../src/gen/routing-stats.js";

export const TRACES_DIR = resolve("..", "shared", "traces");
export const MULTIPLES = [1, 2, 4, 8];
export type Pool = "global" | "per-layer";

/** Hits and accesses of each policy and of Belady (key "belady") at `multiple`, in `pool`. */
export function replayPool(trace: Trace, multiple: number, pool: Pool, policies: readonly string[] = POLICY_NAMES): Map<string, PhaseStats> {
  const parts = pool === "global" ? [trace] : expertLayers(trace.header.model).map((l) => layerTrace(trace, l));
  const out = new Map<string, PhaseStats>();
  const add = (name: string, s: PhaseStats) => {
    const o = out.get(name) ?? { accesses: 0, hits: 0, misses: 0, evictions: 0, bytesRead: 0 };
    for (const k of Object.keys(o) as (keyof PhaseStats)[]) o[k] += s[k];
    out.set(name, o);
  };
  for (const t of parts) {
    const slots = slotsForMultiple(t, multiple);
    const seq = accessSequence(t, slots);
    for (const p of policies) add(p, replay(t, { slots, policy: policyByName(p, {}, policyContext(t)) }, seq).total);
    add("belady", belady(t, slots, seq).total);
  }
  return out;
}

export async function benchReplay(): Promise<void> {
  if (!existsSync(TRACES_DIR)) {
    console.log(`no traces: ${TRACES_DIR} is absent (the real routing traces live outside the repository); nothing to replay`);
    return;
  }
  const files = readdirSync(TRACES_DIR).filter((f) => f.endsWith(".jsonl")).sort();
  if (files.length === 0) console.log(`no .jsonl traces in ${TRACES_DIR}`);
  console.log("hit rate % over all accesses; group pinning (the current token's experts pinned), cold misses counted;");
  console.log("pool global: one pool of multiple x k x layers slots (StreamingExperts); per-layer: multiple x k slots per layer");
  console.log("(all): the budget holds every expert, only cold misses remain");
  console.log("generator presets: not replayed here (a trace of them needs a model run: moestream trace, then moestream replay)");
  const head = ["trace", "pool", "budget", ...POLICY_NAMES, "belady"];
  const table: string[][] = [head];
  for (const f of files) {
    const t0 = performance.now();
    const trace = readTrace(join(TRACES_DIR, f));
    const m = trace.header.model;
    console.log(`${f}: ${m.name}, ${m.nLayer} layers x ${m.nExpert} experts, top-${m.k}, ${trace.calls.length} tokens (each one call, decode-only)`);
    // The statistics the generator's real-like profile is calibrated to (mean [min-max over layers]).
    console.log(`  routing: ${formatRoutingStats(traceRoutingStats(trace))}`);
    for (const pool of ["global", "per-layer"] as const) {
      for (const x of MULTIPLES) {
        const r = replayPool(trace, x, pool);
        const pct = (n: string) => (100 * hitRate(r.get(n)!)).toFixed(1);
        // At every expert's slot the cache only misses cold: no policy choice left.
        const all = slotsForMultiple(trace, x) === expertLayers(m).length * m.nExpert;
        table.push([f.replace(/\.jsonl$/, ""), pool, `${x}x${all ? " (all)" : ""}`, ...POLICY_NAMES.map(pct), pct("belady")]);
      }
    }
    console.error(`  ${f}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  console.log("");
  for (const row of table) console.log(row.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
}
