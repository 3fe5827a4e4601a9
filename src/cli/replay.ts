// moestream replay: hit rates of each eviction policy, and Belady's bound, at several cache sizes, by
// phase, from a trace written by `moestream trace`.
import type { Command } from "commander";
import {
  POLICY_NAMES, RECOMMENDED_POLICY, checkTraceModel, hitRate, modelRoutingShape, parsePolicySpec, readTrace, replayAt, replayObserved, slotsForMultiple, type Pinning, type PhaseStats, type ReplayResult, type Trace,
} from "../engine/replay.js";
import { RoutingRecorder } from "../gen/routing-stats.js";
import { UsageError } from "../util/errors.js";

export const DEFAULT_MULTIPLES = [1, 1.5, 2, 3, 4];
/** Every policy in one pool, and the engine's default (per-layer quotas). */
const DEFAULT_SPECS = [...POLICY_NAMES, RECOMMENDED_POLICY];

interface Budget {
  label: string;
  slots: number;
}

function budgets(trace: Trace, slots?: string, budget?: string): Budget[] {
  if (slots !== undefined && budget !== undefined) throw new UsageError("bad_option", "give --slots or --budget, not both");
  const list = (s: string) => s.split(",").map((x) => x.trim()).filter((x) => x !== "");
  const counts = slots !== undefined
    ? list(slots).map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < trace.header.model.k) throw new UsageError("bad_option", `--slots takes integers >= k = ${trace.header.model.k}, got '${x}'`);
      return n;
    })
    : (budget === undefined ? DEFAULT_MULTIPLES : list(budget).map((x) => {
      const n = Number(x.replace(/x$/i, ""));
      if (!(n > 0) || !Number.isFinite(n)) throw new UsageError("bad_option", `--budget takes multiples like 1x,2.5x, got '${x}'`);
      return n;
    })).map((m) => slotsForMultiple(trace, m));
  // Labelled by the real multiple of a token's experts: rounding and the every-expert cap can move it.
  const perToken = trace.header.model.k * trace.header.model.nLayer;
  return counts.map((n) => ({ label: `${+(n / perToken).toFixed(2)}x`, slots: n }));
}

const pct = (s: PhaseStats) => (s.accesses ? (100 * hitRate(s)).toFixed(1) : "-");

function describe(trace: Trace): string[] {
  const m = trace.header.model;
  const calls = (p: string) => trace.calls.filter((c) => c.phase === p);
  const pre = calls("prefill"), dec = calls("decode");
  const rec = new RoutingRecorder(m.nLayer, m.nExpert, m.k);
  // null: a layer without experts; empty: an imported trace captured no routing there.
  for (const c of trace.calls) c.routes.forEach((ids, l) => ids && ids.length > 0 && rec.record(l, ids, c.nTokens));
  const st = rec.stats();
  const r = trace.header.routing;
  const profile = r ? Object.entries(r).map(([k, v]) => (k === "kind" ? String(v) : `${k} ${v}`)).join(" ") : "not recorded";
  const lines = [
    `trace: ${m.name} (${m.architecture}, ${m.nLayer} layers x ${m.nExpert} experts, top-${m.k}, ${m.k * m.nLayer} active experts per token)`,
    `calls: ${pre.length} prefill (${pre.reduce((a, c) => a + c.nTokens, 0)} tokens), ${dec.length} decode`,
    `routing profile: ${profile}; measured: top-quarter share ${st.topQuarterShare.toFixed(2)} (uniform 0.25), reuse ${st.reuse.toFixed(2)} (chance ${st.uniformReuse.toFixed(2)})`,
  ];
  // An imported capture's note says how it was read (decode-only, nominal record sizes).
  if (r === null && trace.header.note?.startsWith("imported")) lines.push(`note: ${trace.header.note}`);
  return lines;
}

/** Replays the engine's own policy at the run's cache size and says whether it matches what the run counted. */
function selfCheck(trace: Trace): string | undefined {
  const o = trace.end?.observed;
  if (!o) return undefined;
  let r: ReplayResult;
  try {
    r = replayObserved(trace, o);
  } catch (e) {
    return `observed in the run: ${o.policy} at ${o.slots} slots; replay cannot run it: ${(e as Error).message}`;
  }
  const same = (["prefill", "decode"] as const).every((p) => r[p].hits === o[p].hits && r[p].misses === o[p].misses);
  const f = (p: { hits: number; misses: number }) => `${p.hits}/${p.hits + p.misses}`;
  return `observed in the run: ${o.policy} at ${o.slots} slots, hits prefill ${f(o.prefill)} decode ${f(o.decode)}; replay ${same ? "matches" : `DIFFERS: prefill ${f(r.prefill)} decode ${f(r.decode)}`}`;
}

export function registerReplay(program: Command): void {
  program
    .command("replay <trace>")
    .description("replay a routing trace (moestream's own, or a routing JSON-lines capture: header line, then {\"t\", \"layers\": [[ids], ...]} per token): hit rate per eviction policy and Belady's bound, per cache size and phase")
    .option("--slots <list>", "cache sizes in expert slots, e.g. 64,128")
    .option("--budget <list>", "cache sizes as multiples of the active experts per token (k x layers), e.g. 1x,2x (default 1x,1.5x,2x,3x,4x)")
    .option("--policy <spec...>", `policies, name[:key=value,...] (default: ${DEFAULT_SPECS.join(" ")}); e.g. slru:protected=0.8 lfu:history=0 lru:perLayer=1`)
    .option("--pinning <mode>", "group (what StreamingExperts does: an acquire's experts all pinned from the start) | sequential", "group")
    .option("-m, --model <path>", "the model the trace is of (GGUF or pack): its expert ids and shape are checked against it")
    .option("--json", "print one JSON object")
    .addHelpText("after", "\nExamples:\n  moestream replay tiny.trace\n  moestream replay tiny.trace -m tiny.gguf --budget 2x --policy lru lfu-decay:perLayer=1 markov:perLayer=1")
    .action(async (path: string, opts) => {
      const pinning = opts.pinning as Pinning;
      if (pinning !== "sequential" && pinning !== "group") throw new UsageError("bad_option", `--pinning must be sequential or group, got '${opts.pinning}'`);
      const specs = ((opts.policy as string[] | undefined) ?? DEFAULT_SPECS).map((s) => ({ label: s, ...parsePolicySpec(s) }));
      const trace = readTrace(path);
      if (opts.model) checkTraceModel(trace, path, await modelRoutingShape(opts.model), opts.model);
      const rows = budgets(trace, opts.slots, opts.budget).map((b) => ({ budget: b.label, slots: b.slots, ...replayAt(trace, b.slots, specs, pinning) }));
      if (opts.json) {
        const rate = (r: ReplayResult) => ({ prefill: hitRate(r.prefill), decode: hitRate(r.decode), total: hitRate(r.total) });
        const out = rows.map((r) => ({
          budget: r.budget, slots: r.slots,
          policies: Object.fromEntries(r.policies.map((p) => [p.policy, { ...rate(p), prefill_stats: p.prefill, decode_stats: p.decode }])),
          belady: { ...rate(r.belady), bound: { prefill: hitRate(r.belady.bound.prefill), decode: hitRate(r.belady.bound.decode) } },
        }));
        process.stdout.write(JSON.stringify({ trace: path, model: trace.header.model, routing: trace.header.routing, pinning, rows: out }) + "\n");
        return;
      }
      const lines = [...describe(trace)];
      const check = selfCheck(trace);
      if (check) lines.push(check);
      // A phase no policy can hit in (a first prompt: every expert is a first use) gets a line, not rows.
      const phases = (["prefill", "decode"] as const).filter((ph) => {
        if (rows.some((r) => r.belady.bound[ph].hits > 0)) return true;
        const n = rows[0]?.belady.bound[ph].accesses ?? 0;
        if (n > 0) lines.push(`${ph}: all ${n} accesses are first uses at every budget (0% for any policy); rows left out`);
        return false;
      });
      lines.push(`pinning: ${pinning}; hit rate % by phase; belady = the most hits any policy can get in that phase`, "");
      const head = ["budget", "slots", "phase", ...specs.map((s) => s.label), "belady"];
      const table: string[][] = [head];
      for (const r of rows) {
        phases.forEach((ph, i) => table.push([i === 0 ? r.budget : "", i === 0 ? String(r.slots) : "", ph, ...r.policies.map((p) => pct(p[ph])), pct(r.belady.bound[ph])]));
      }
      const widths = head.map((_, i) => Math.max(...table.map((row) => row[i].length)));
      for (const row of table) lines.push(row.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
      process.stdout.write(lines.join("\n") + "\n");
    });
}
