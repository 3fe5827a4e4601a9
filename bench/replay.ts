// npm run bench -- replay: hit rate of every eviction policy, and Belady's bound, on the real routing
// traces in ../shared/traces (relative to the repo root; skipped with a note where absent, as in CI), at
// 1x/2x/4x/8x a token's experts and at the stream bench's cache. All replay the engine's cache (one pool
// of slots, group pinning: an acquire's experts, here the current token's experts of a layer, pinned from
// the start; cold misses counted), budgeted three ways: one pool for every layer (`global`), a slot quota
// per layer adapted to use (`quota`, perLayer=1: layer-budget.ts) and fixed equal quotas (`equal`,
// perLayer=1,floor=1, what a pool per layer gives). Belady is the optimum of the one pool, which may
// shift slots between layers at will: the bound for every row.
// Then, per real trace, what foresight of its routing would give (foresight.ts; docs/cache-policy.md), and
// the generator's routing (replay-synthetic.ts) against the real Qwen3 trace: does it rank the same?
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { policyByName, POLICY_NAMES } from "../src/experts/policies.js";
import { accessSequence, belady, hitRate, policyContext, replay, slotsForMultiple, type PhaseStats } from "../src/experts/replay.js";
import { expertLayers, readTrace, type Trace } from "../src/experts/trace.js";
import { formatRoutingStats, traceRoutingStats } from "../src/gen/routing-stats.js";
import { ForesightPolicy, nextTokenRecall } from "./foresight.js";
import { REAL_LIKE, type RoutingProfile } from "../src/gen/weights.js";
import { QWEN_LIKE, spearman, syntheticTrace } from "./replay-synthetic.js";

export const TRACES_DIR = resolve("..", "shared", "traces");
/** The real trace the generator's real-like profile is calibrated to (k 6 of 128, as the synthetic models). */
const QWEN_TRACE = "bigmoeonedge-qwen.jsonl";
export const MULTIPLES = [1, 2, 4, 8];
/**
 * The stream bench's capped a3b run (README, Expert streaming): 1682 slots of its 6144 experts, 384 a
 * token (48 layers x top-8). Replayed two ways: the same multiple of a token's experts, and the same
 * share of all experts (the cap is a share of the model's bytes).
 */
export const STREAM_BENCH = { slots: 1682, experts: 6144, perToken: 384 } as const;
export const POOLS = { global: {}, quota: { perLayer: 1 }, equal: { perLayer: 1, floor: 1 } } as const;
export type Pool = keyof typeof POOLS;

export interface Budget {
  label: string;
  slots: number;
}

/** 1x..8x a token's experts, then the stream bench's cache as a multiple and as a share of every expert. */
export function budgets(trace: Trace): Budget[] {
  const m = trace.header.model;
  const all = expertLayers(m).length * m.nExpert;
  const out = MULTIPLES.map((x) => ({ label: `${x}x`, slots: slotsForMultiple(trace, x) }));
  const x = STREAM_BENCH.slots / STREAM_BENCH.perToken, share = STREAM_BENCH.slots / STREAM_BENCH.experts;
  out.push({ label: `stream ${x.toFixed(2)}x`, slots: slotsForMultiple(trace, x) });
  out.push({ label: `stream ${(100 * share).toFixed(1)}%`, slots: Math.max(m.k, Math.min(all, Math.round(share * all))) });
  return out.map((b) => ({ label: b.slots >= all ? `${b.label} (all)` : b.label, slots: b.slots }));
}

/** A column of the tables: a policy in a pool, e.g. "lfu-decay quota". */
export const configName = (policy: string, pool: Pool) => `${policy} ${pool}`;

/** Hits and accesses of each policy in each pool (keys configName) and of Belady (key "belady") at `slots`. */
export function replayBudget(trace: Trace, slots: number, policies: readonly string[] = POLICY_NAMES, pools: readonly Pool[] = Object.keys(POOLS) as Pool[]): Map<string, PhaseStats> {
  const seq = accessSequence(trace, slots);
  const ctx = policyContext(trace);
  const out = new Map<string, PhaseStats>();
  for (const pool of pools) for (const p of policies) out.set(configName(p, pool), replay(trace, { slots, policy: policyByName(p, { ...POOLS[pool] }, ctx) }, seq).total);
  out.set("belady", belady(trace, slots, seq).total);
  return out;
}

export async function benchReplay(): Promise<void> {
  if (!existsSync(TRACES_DIR)) {
    console.log(`no traces: ${TRACES_DIR} is absent (the real routing traces live outside the repository); generated routing only`);
    return benchSynthetic(undefined);
  }
  const files = readdirSync(TRACES_DIR).filter((f) => f.endsWith(".jsonl")).sort();
  if (files.length === 0) console.log(`no .jsonl traces in ${TRACES_DIR}`);
  console.log("hit rate % over all accesses; the engine's cache: group pinning (the current token's experts pinned), cold misses counted;");
  console.log("global: one pool for every layer; quota: a slot quota per layer adapted to use (perLayer=1); equal: fixed equal quotas (perLayer=1,floor=1)");
  console.log(`stream: the stream bench's cache (${STREAM_BENCH.slots} of a3b's ${STREAM_BENCH.experts} experts) as a multiple of a token's experts and as a share of all experts`);
  console.log("belady: the one pool's optimum (slots move between layers freely); (all): the budget holds every expert, only cold misses remain");
  const head = ["trace", "budget", "slots", "pool", ...POLICY_NAMES, "belady"];
  let qwen: Parameters<typeof benchSynthetic>[0];
  const table: string[][] = [head];
  const sight: string[][] = [["trace", "budget", "markov quota", ...FORESIGHT.map((f) => f.label), "belady", "belady-8"]];
  const recall: string[][] = [["trace", "previous token", "frequency top-k / 2k", "markov top-k / 2k"]];
  for (const f of files) {
    const t0 = performance.now();
    const trace = readTrace(join(TRACES_DIR, f));
    const m = trace.header.model;
    console.log(`${f}: ${m.name}, ${m.nLayer} layers x ${m.nExpert} experts, top-${m.k}, ${trace.calls.length} tokens (each one call, decode-only)`);
    // The statistics the generator's real-like profile is calibrated to (mean [min-max over layers]).
    console.log(`  routing: ${formatRoutingStats(traceRoutingStats(trace))}`);
    for (const b of budgets(trace)) {
      const r = replayBudget(trace, b.slots);
      if (f === QWEN_TRACE) (qwen ??= { trace, byBudget: new Map() }).byBudget.set(b.label, r);
      const pct = (n: string) => (100 * hitRate(r.get(n)!)).toFixed(1);
      for (const pool of Object.keys(POOLS) as Pool[]) {
        table.push([f.replace(/\.jsonl$/, ""), b.label, String(b.slots), pool, ...POLICY_NAMES.map((p) => pct(configName(p, pool))), pct("belady")]);
      }
    }
    const name = f.replace(/\.jsonl$/, "");
    sight.push(...foresightRows(trace, name));
    const rc = nextTokenRecall(trace);
    const pc = (x: number) => (100 * x).toFixed(1);
    recall.push([name, pc(rc.previous), `${pc(rc.frequency[0])} / ${pc(rc.frequency[1])}`, `${pc(rc.markov[0])} / ${pc(rc.markov[1])}`]);
    console.error(`  ${f}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  console.log("");
  printTable(table, 4);
  if (files.length) {
    console.log("\nforesight (one pool): evict the expert whose next use within the next N tokens of its layer is farthest, those with none in");
    console.log("sight first by decayed frequency; 'half the future': every later use, each told with probability 0.5 (fixed hash);");
    console.log("belady-8: the issue's bar. The online default (markov quota) knows only the past.");
    printTable(sight, 2);
    console.log("\nthe next token's experts per layer named by each online predictor (% of them): the previous token's (adjacent-token");
    console.log("overlap), the k and 2k most frequent (decay 0.9 a token), the k and 2k markov ranks highest");
    printTable(recall, 1);
  }
  await benchSynthetic(qwen);
}

/** The foresight columns: N tokens of every layer's future routing, and half of all of it. */
const FORESIGHT = [
  ...[1, 2, 3, 4, 8].map((w) => ({ label: `next ${w}`, window: w, reveal: 1 })),
  { label: "half the future", window: Infinity, reveal: 0.5 },
];

/** Markov (the online default), each foresight and Belady at 2x and 4x, as hit rates %. */
function foresightRows(trace: Trace, name: string): string[][] {
  return ["2x", "4x"].map((label) => {
    const slots = slotsForMultiple(trace, Number(label.slice(0, -1)));
    const seq = accessSequence(trace, slots);
    const pct = (s: PhaseStats) => (100 * hitRate(s)).toFixed(1);
    const online = replay(trace, { slots, policy: policyByName("markov", { perLayer: 1 }, policyContext(trace)) }, seq).total;
    const sighted = FORESIGHT.map((f) => pct(replay(trace, { slots, policy: new ForesightPolicy(trace, f) }, seq).total));
    const b = 100 * hitRate(belady(trace, slots, seq).total);
    return [name, label, pct(online), ...sighted, b.toFixed(1), (b - 8).toFixed(1)];
  });
}

/** Rows of cells, the first `left` columns padded right, the rest left; the first row is the header. */
export function printTable(table: string[][], left: number): void {
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) console.log(row.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
}

/** The budgets the synthetic routing is compared at (of budgets()). */
const COMPARED = ["2x", "4x", `stream ${(STREAM_BENCH.slots / STREAM_BENCH.perToken).toFixed(2)}x`];
const SEEDS = [1, 2, 3, 4, 5];
const SHOWN = ["lru global", "lfu global", "lfu-decay global", "lru quota", "lfu-decay quota", "markov quota"];

/**
 * The generator's real-like routing (seeds 1-5) and the skewed `realistic` preset (seed 1) replayed as the
 * real Qwen3 trace is: statistics, and every policy x pool at 2x, 4x and the stream bench's multiple, with
 * Spearman's rho of those 27 figures against the real trace's (1: the same ranking).
 */
async function benchSynthetic(real: { trace: Trace; byBudget: Map<string, Map<string, PhaseStats>> } | undefined): Promise<void> {
  const sources: { label: string; routing: RoutingProfile; seed: number }[] = [
    ...SEEDS.map((seed) => ({ label: `real-like seed ${seed}`, routing: REAL_LIKE as RoutingProfile, seed })),
    { label: "realistic seed 1", routing: { kind: "realistic", skew: 1, locality: 0.5 }, seed: 1 },
  ];
  console.log(`\ngenerated routing (${QWEN_LIKE.nLayer} layers x ${QWEN_LIKE.nExpert} experts, top-${QWEN_LIKE.k}, ${QWEN_LIKE.tokens} tokens of prose, one per forward) against ${real ? "the real Qwen3-30B-A3B trace" : "nothing (bigmoeonedge-qwen.jsonl absent)"}`);
  const stats: string[][] = [["source", "overlap", "top-16 share", "distinct"]];
  const rows: string[][] = [["source", "budget", ...SHOWN, "best", "belady", "rho"]];
  const configs = (Object.keys(POOLS) as Pool[]).flatMap((pool) => POLICY_NAMES.map((p) => configName(p, pool)));
  const add = (label: string, trace: Trace, byBudget: (b: string) => Map<string, PhaseStats>) => {
    for (const b of COMPARED) {
      const r = byBudget(b);
      const rate = (n: string) => 100 * hitRate(r.get(n)!);
      const best = configs.reduce((a, c) => (rate(c) > rate(a) ? c : a));
      const ref = real?.byBudget.get(b);
      const rho = ref ? spearman(configs.map(rate), configs.map((c) => 100 * hitRate(ref.get(c)!))).toFixed(2) : "-";
      rows.push([label, b, ...SHOWN.map((n) => rate(n).toFixed(1)), `${best} ${rate(best).toFixed(1)}`, rate("belady").toFixed(1), rho]);
    }
    const st = traceRoutingStats(trace);
    const f = (x: { mean: number; sd: number }, d: number) => `${x.mean.toFixed(d)} (sd ${x.sd.toFixed(d)})`;
    stats.push([label, f(st.overlap, 2), f(st.topEighthShare, 2), f(st.distinct, 0)]);
  };
  if (real) add("real Qwen3-30B-A3B", real.trace, (b) => real.byBudget.get(b)!);
  for (const src of sources) {
    const t0 = performance.now();
    const { trace } = await syntheticTrace(src.seed, src.routing);
    const all = new Map(budgets(trace).map((b) => [b.label.replace(/ \(all\)$/, ""), b.slots]));
    add(src.label, trace, (b) => replayBudget(trace, all.get(b)!));
    console.error(`  ${src.label}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  printTable(stats, 1);
  console.log("");
  printTable(rows, 2);
}
