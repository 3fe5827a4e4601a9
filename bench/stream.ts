// npm run bench -- stream: a3b (48 layers, Q4_K, ~17 GB) under a memory cgroup at 35% of its bytes:
// moestream streaming experts vs llama.cpp paging the same GGUF through mmap, against the disk's
// ceiling. Each engine runs in its own child process (`stream.ts child <json>`), one JSON line out;
// children get UV_THREADPOOL_SIZE=16 so 16 reads can be in flight. `stream.ts only NAME,...` runs a subset.
// Routing: `real-like` (calibrated to real traces) by default; `--routing=realistic|uniform` for the
// skewed best case and the worst case. Each routing is its own generated model (the routers are weights).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { getLlama } from "node-llama-cpp";
import { loadModel } from "../src/engine/load.js";
import { countReadbacks } from "./readbacks.js";
import { defaultEngineConfig, type EngineConfig } from "../src/engine/config.js";
import { Session, type ExpertPhaseStats } from "../src/engine/session.js";
import { expertLayout } from "../src/engine/expert-layout.js";
import { packModel } from "../src/experts/pack.js";
import { MANIFEST_FILE, RECORDS_OFFSET, type PackManifest } from "../src/experts/pack-format.js";
import { benchModel } from "./models.js";
import { inspectGGUF } from "../src/engine/inspect.js";
import { formatExpertBytes } from "../src/engine/expert-bytes.js";
import { parseRouting } from "../src/cli/gen.js";
import { UsageError } from "../src/util/errors.js";
import type { RoutingProfile } from "../src/gen/weights.js";
import { createMemCgroup, dropCaches, runChild, type MemCgroup } from "./cgroup.js";
import { readRecords, shuffled, type RecordRef } from "../src/util/disk-read.js";
import { DEPTH_BUCKETS, type IoStats } from "../src/experts/io-queue.js";
import { HEADROOM } from "../src/engine/expert-io.js";
import type { PrefetchStats } from "../src/experts/prefetch.js";

export const STREAM_ROUTINGS = ["real-like", "realistic", "uniform"] as const;
export type StreamRouting = (typeof STREAM_ROUTINGS)[number];
/** The routing's profile (realistic: skew 1, locality 0.5, the figures before real-like existed) and how reports name it. */
function routingOf(r: StreamRouting): { profile: RoutingProfile; label: string } {
  const profile = parseRouting(r, "1", "0.5");
  return { profile, label: r === "realistic" ? "realistic routing (skew 1, locality 0.5)" : `${r} routing` };
}
/** Bench files of a routing: realistic keeps the names it always had (cached models stay valid). */
const fileName = (base: string, r: StreamRouting, ext: string) => (r === "realistic" ? `${base}.${ext}` : `${base}-${r}.${ext}`);
const a3b = (r: StreamRouting) => ({ preset: "a3b", type: "Q4_K", seed: 1, routing: routingOf(r).profile, expertSynthesis: "direct" }) as const;
const a3b8L = (r: StreamRouting) => ({ preset: "a3b-8L", type: "Q8_0", seed: 1, routing: routingOf(r).profile }) as const;
// a3b's per-layer dimensions in the IQ2_XXS mix (gen/mixes.ts), MIX_LAYERS of its 48 layers: the whole model would be
// ~8.3 GB beside the Q4_K file and its pack; this many layers keep it at ~2.4 GB. Streamed from the GGUF (no pack).
const MIX_LAYERS = 12;
/** The process's own bytes, KV and prefetch staging, as the a3b Q4_K run's plan counts them (held 191 MiB, KV 48 MiB, staging 81 MiB). */
const FIXED_HELD = 320 * 2 ** 20;
const a3bIq2 = (r: StreamRouting) => ({ preset: "a3b", hp: { nLayer: MIX_LAYERS }, type: "IQ2_XXS", mix: "iq2_xxs", seed: 1, routing: routingOf(r).profile, expertSynthesis: "direct" }) as const;
// gpt-oss-120b's per-layer dimensions (128 experts of 2880, top-4; MXFP4 experts, Q8_0 elsewhere, as ggml-org's GGUF),
// OSS_LAYERS of its 36 layers: the whole file is ~63 GB; this many layers keep it at ~11 GB. Both engines run this same
// file under the same cap, CAP_SHARE of its bytes.
const OSS_LAYERS = 6;
const oss120 = (r: StreamRouting) => ({ preset: "gpt-oss-120b", hp: { nLayer: OSS_LAYERS, swa: Array.from({ length: OSS_LAYERS }, (_, i) => i % 2 === 0) }, type: "Q8_0", expertType: "MXFP4", seed: 1, routing: routingOf(r).profile, expertSynthesis: "direct" }) as const;
// ~64 Qwen3 tokens of plain prose.
const PROMPT =
  "The history of the Roman Empire spans many centuries, from the founding of the city on the banks of the Tiber to the fall of " +
  "Constantinople. Historians still argue about why it declined: some blame the economy, others the army, the plague, or the " +
  "sheer size of the territory that had to be defended against";
export const DECODE = 24;
export const THREADS = 2;
export const CAP_SHARE = 0.35;
const DISK_RECORDS = 768; // per in-flight setting: ~2 GB, disjoint sets
export const CHILD_TIMEOUT_MS = 8 * 60_000;
export const UV_POOL = "16";
const SHIM = join(".cache", "bench", "no-repack.so");

export type ChildSpec =
  /** depth: prefetch depth (layers of router lookahead); warm: wait for the background fill before the prompt. */
  | { kind: "moe"; path: string; cfg: Partial<EngineConfig>; n: number; depth?: number; warm?: boolean }
  | { kind: "llama"; path: string; threads: number; n: number; noRepack?: boolean }
  | { kind: "disk"; records: RecordRef[]; recordBytes: number; inFlight: number; direct: boolean };

export interface DiskOut { gbps: number; p50Ms: number; p99Ms: number }
/** Decode-phase read queue and prefetch-by-depth counts. */
interface IoOut { io: IoStats; byDepth: { lookahead: PrefetchStats[]; prev: PrefetchStats[] }; byRank: ({ issued: number[]; used: number[] } | null)[]; direct: boolean; ioDepth: number; prefetchDepth: number; warmMs: number; filled: number }

interface IoSnap { ioWaitMs: number; reads: number; diskBytes: number; /** Host readbacks (device syncs). */ readbacks: number }
export interface ChildOut {
  promptTokens: number;
  decodeTokens: number;
  loadMs: number;
  prefillTokPerS: number;
  decodeTokPerS: number;
  /** Generated ids: greedy runs of one model should agree. */
  tokens: number[];
  /** Bytes the kernel read from disk for this process (rusage inblock), per phase. */
  disk: { prefill: number; decode: number };
  /** Expert cache traffic per phase; read latency percentiles are of decode-phase demand reads. */
  moe?: { mode: string; reason: string; prefill: ExpertPhaseStats & IoSnap; decode: ExpertPhaseStats & IoSnap; readP50Ms: number; readP99Ms: number; recordBytes: number } & IoOut;
  maxRssBytes: number;
  /** At exit: anonymous (heap, copies) vs file-backed (mmap) resident bytes. */
  rssAnonBytes: number;
  rssFileBytes: number;
}

const diskRead = () => process.resourceUsage().fsRead * 512;
function rss(): Pick<ChildOut, "maxRssBytes" | "rssAnonBytes" | "rssFileBytes"> {
  const st = readFileSync("/proc/self/status", "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? NaN) * 1024;
  return { maxRssBytes: process.resourceUsage().maxRSS * 1024, rssAnonBytes: kb("RssAnon"), rssFileBytes: kb("RssFile") };
}

/** b - a, field by field, for plain objects and arrays of numbers. */
function delta<T>(a: T, b: T): T {
  if (typeof b === "number") return ((b as number) - ((a as number) ?? 0)) as T;
  if (Array.isArray(b)) return b.map((v, i) => delta((a as unknown[] | undefined)?.[i], v)) as T;
  if (b && typeof b === "object") return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, delta((a as Record<string, unknown> | undefined)?.[k], v)])) as T;
  return b;
}

async function childMoe(spec: Extract<ChildSpec, { kind: "moe" }>): Promise<ChildOut> {
  const t0 = performance.now();
  const lm = await loadModel(spec.path, defaultEngineConfig({ ctxSize: 256, ioDepth: 16, ...spec.cfg })); // the child's libuv pool has 16 threads
  const x = lm.experts;
  const syncs = countReadbacks(lm.backend);
  if (spec.depth) await x.setPrefetchDepth(spec.depth);
  await x.prepare(); // slot memory: part of loading, not of the first prompt
  const loadMs = performance.now() - t0;
  let warmMs = 0;
  if (spec.warm && lm.expertIO.mode === "stream") {
    // Same warm-up as resident (every expert in memory): start the fill with one token's forward, wait for it.
    const t = performance.now();
    const w = new Session(lm);
    for await (const _ of w.generate(lm.tokenizer.encode("Hello"), { maxTokens: 1, sampling: { temperature: 0 }, stopAtEog: false })) break;
    await x.whenFilled();
    warmMs = performance.now() - t;
  }
  const ioSnap = () => JSON.parse(JSON.stringify({ io: x.io.stats, byDepth: x.staging?.byDepth ?? { lookahead: [], prev: [] }, byRank: x.staging?.byRank ?? [] })) as Pick<IoOut, "io" | "byDepth" | "byRank">;
  try {
    const io = (): IoSnap => ({ ioWaitMs: x.stats.ioWaitMs, reads: x.stats.reads, diskBytes: diskRead(), readbacks: syncs.n });
    const s = new Session(lm);
    const prompt = lm.tokenizer.encode(PROMPT);
    const a = io();
    let b = a, lat = 0;
    const tokens: number[] = [];
    let q0 = ioSnap();
    for await (const step of s.generate(prompt, { maxTokens: spec.n + 1, sampling: { temperature: 0 }, stopAtEog: false })) {
      tokens.push(step.token);
      if (b === a) { // first token: prefill just ended, no decode step ran yet
        b = io();
        lat = x.readLatency.count;
        q0 = ioSnap();
      }
    }
    const c = io();
    const q1 = delta(q0, ioSnap());
    const st = s.lastStats!;
    const d = (p: IoSnap, q: IoSnap): IoSnap => ({ ioWaitMs: q.ioWaitMs - p.ioWaitMs, reads: q.reads - p.reads, diskBytes: q.diskBytes - p.diskBytes, readbacks: q.readbacks - p.readbacks });
    const [p50, p99] = x.readLatency.percentiles(lat, [0.5, 0.99]);
    return {
      promptTokens: st.promptTokens, decodeTokens: st.generatedTokens - 1, loadMs, tokens,
      prefillTokPerS: (st.promptTokens * 1000) / st.promptMs, decodeTokPerS: ((st.generatedTokens - 1) * 1000) / st.decodeMs,
      disk: { prefill: b.diskBytes - a.diskBytes, decode: c.diskBytes - b.diskBytes },
      moe: {
        mode: lm.expertIO.mode, reason: lm.expertIO.reason, readP50Ms: p50, readP99Ms: p99, recordBytes: x.slotBytes,
        prefill: { ...st.experts.prefill, ...d(a, b) }, decode: { ...st.experts.decode, ...d(b, c) },
        ...q1, direct: (x.reader as { direct?: boolean }).direct ?? false, ioDepth: x.io.depth, prefetchDepth: x.prefetchDepth, warmMs, filled: x.stats.filled,
      },
      ...rss(),
    };
  } finally {
    await lm.close();
  }
}

async function childLlama(spec: Extract<ChildSpec, { kind: "llama" }>): Promise<ChildOut> {
  const t0 = performance.now();
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" as never });
  // Defaults: mmap, CPU repack; noRepack runs under LD_PRELOAD=no-repack.so (the parent sets it), as --no-repack.
  const model = await llama.loadModel({ modelPath: spec.path });
  const ctx = await model.createContext({ contextSize: 256, threads: spec.threads });
  const loadMs = performance.now() - t0;
  const seq = ctx.getSequence();
  const prompt = model.tokenize(PROMPT, true);
  const d0 = diskRead(), t1 = performance.now();
  const res = await seq.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { token: true } }] : t)) as never);
  const first = res[prompt.length - 1]?.next.token;
  if (first == null) throw new Error("llama.cpp returned no next token for the prompt");
  const d1 = diskRead(), t2 = performance.now();
  // Same counting as moestream: the prompt gives token 1, then `n` single-token evaluations.
  const tokens: number[] = [first];
  for await (const t of seq.evaluate([first], { temperature: 0 })) if (tokens.push(t) > spec.n) break;
  const produced = tokens.length - 1;
  const t3 = performance.now(), d2 = diskRead();
  const mem = rss();
  await ctx.dispose();
  await model.dispose();
  return {
    promptTokens: prompt.length, decodeTokens: produced, loadMs, tokens,
    prefillTokPerS: (prompt.length * 1000) / (t2 - t1), decodeTokPerS: (produced * 1000) / (t3 - t2),
    disk: { prefill: d1 - d0, decode: d2 - d1 }, ...mem,
  };
}

// ---- parent ----

export const GB = 1e9, GiB = 2 ** 30, MiB = 2 ** 20;
export const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");
export const pct = (a: number, b: number) => (b > 0 ? `${f((100 * a) / b, 1)}%` : "-");
export const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");

function memAvailable(): number {
  return Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) * 1024;
}

export interface Run { label: string; out?: ChildOut; error?: string; peakBytes?: number; wallMs: number; load: string }

/** One child run after dropping the page cache; inside a fresh cgroup at limitBytes when given. */
export async function measure(label: string, spec: ChildSpec, limitBytes: number | undefined): Promise<Run> {
  dropCaches();
  let cg: MemCgroup | undefined;
  if (limitBytes !== undefined) {
    const made = createMemCgroup(`moestream-bench-${process.pid}`, limitBytes);
    if (typeof made === "string") throw new Error(made);
    cg = made;
  }
  const before = load();
  process.stderr.write(`  running: ${label} ...\n`);
  const env: Record<string, string> = { UV_THREADPOOL_SIZE: UV_POOL };
  if (spec.kind === "llama" && spec.noRepack) env.LD_PRELOAD = join(process.cwd(), SHIM);
  try {
    const r = await runChild([process.execPath, "--import", "tsx", "bench/stream.ts", "child", JSON.stringify(spec)], cg, CHILD_TIMEOUT_MS, env);
    const oom = cg?.oomKills() ?? 0;
    const run: Run = { label, wallMs: r.wallMs, load: `${before} -> ${load()}`, peakBytes: cg?.maxUsage() };
    if (r.code === 0 && r.json) run.out = r.json as ChildOut;
    else run.error = `exit ${r.code ?? r.signal}${oom ? `, OOM-killed (${oom})` : ""}${r.wallMs >= CHILD_TIMEOUT_MS ? ", timed out" : ""}: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`;
    return run;
  } finally {
    cg?.remove();
  }
}

async function ensurePack(gguf: string, routing: StreamRouting): Promise<string> {
  const dir = join(".cache", "bench", fileName("a3b-q4_k", routing, "moe"));
  if (existsSync(join(dir, MANIFEST_FILE))) return dir;
  const need = statSync(gguf).size * 1.02;
  const fs = statfsSync(".cache");
  if (fs.bavail * fs.bsize < need) throw new Error(`packing needs ${f(need / GB, 1)} GB free, ${f((fs.bavail * fs.bsize) / GB, 1)} GB left`);
  console.error(`packing ${gguf} -> ${dir} (once; cached) ...`);
  const t0 = performance.now();
  await packModel(gguf, dir, { experts: expertLayout });
  console.error(`  done in ${f((performance.now() - t0) / 1000, 0)} s`);
  return dir;
}

/** The LD_PRELOAD shim that turns llama.cpp's CPU repack off (see no-repack.c); undefined if no C compiler. */
export function buildShim(): string | undefined {
  try {
    execFileSync("cc", ["-O2", "-shared", "-fPIC", "-o", SHIM, join("bench", "no-repack.c"), "-ldl"], { stdio: "pipe" });
    return SHIM;
  } catch (e) {
    console.log(`  (no-repack shim not built: ${(e as Error).message.split("\n")[0]})`);
    return undefined;
  }
}

export interface DiskRow { when: "start" | "end"; mode: "direct" | "buffered"; inFlight: number; gbps: number; p50Ms: number; p99Ms: number; load: string }

/** Print one capped moestream run's expert traffic. */
export function printTraffic(r: Run, disk: DiskRow[]): void {
  const m = r.out?.moe;
  if (!m || !r.out) return;
  const d = m.decode, n = r.out.decodeTokens;
  const perTok = (d.bytesRead + d.prefetchBytes) / n;
  const best = Math.max(...disk.map((x) => x.gbps));
  console.log(`  ${r.label}: ${m.reason}; reads ${m.direct ? "O_DIRECT" : "buffered"}, up to ${m.ioDepth} in flight, prefetch depth ${m.prefetchDepth}`);
  console.log(`    hit rate ${pct(d.hits, d.hits + d.misses)} (${d.hits} hits, ${d.misses} misses, ${d.prefetched} of them served by prefetch); prefill hit rate ${pct(m.prefill.hits, m.prefill.hits + m.prefill.misses)}`);
  const depths = (src: "lookahead" | "prev") => m.byDepth[src].map((s, i) => (i && s?.issued ? `@${i} ${pct(s.used, s.issued)} of ${s.issued} (${s.cancelled} dropped unread)` : "")).filter(Boolean).join(", ");
  console.log(`    prefetch precision ${d.prefetchIssued ? `${pct(d.prefetchUsed, d.prefetchIssued)} (${d.prefetchUsed} used / ${d.prefetchIssued} issued, ${d.prefetchWasted} wasted)` : "- (none issued)"}${d.prefetchIssued ? `; by depth: lookahead ${depths("lookahead") || "-"}; previous token ${depths("prev") || "-"}` : ""}`);
  const ranks = m.byRank.map((r, depth) => (r ? `@${depth} ${r.issued.map((n, i) => pct(r.used[i] ?? 0, n ?? 0)).join(" ")}` : "")).filter(Boolean).join("; ");
  if (ranks) console.log(`    lookahead precision by rank in the router's top-k (best first): ${ranks}`);
  console.log(`    read per token ${f(perTok / MiB, 0)} MiB (demand ${f(d.bytesRead / n / MiB, 0)} + prefetch ${f(d.prefetchBytes / n / MiB, 0)}); kernel disk reads ${f(r.out.disk.decode / n / MiB, 0)} MiB/token`);
  const io = m.io;
  const delivered = io.waitMs > 0 ? io.bytesDuringWait / (io.waitMs / 1000) / GB : NaN;
  const hist = DEPTH_BUCKETS.map((b, i) => `${b}: ${pct(io.waitDepthMs[i], io.waitMs)}`).join(", ");
  console.log(`    I/O wait ${f(d.ioWaitMs / n, 0)} of ${f(1000 / r.out.decodeTokPerS, 0)} ms/token; demand read latency p50 ${f(m.readP50Ms, 1)} ms, p99 ${f(m.readP99Ms, 1)} ms`);
  console.log(`    host readbacks (awaited backend reads) per decode token: ${f(d.readbacks / n, 1)}`);
  console.log(`    delivered during misses: ${f(delivered)} GB/s = ${pct(delivered, best)} of the best ceiling (${f(best)} GB/s) [bytes landed while the forward waited / wait time; each read's bytes spread over its run]`);
  console.log(`    reads in flight while waiting (share of wait time): ${hist}`);
  console.log(`    disk-bound decode ceiling at ${f(perTok / MiB, 0)} MiB/token: ${f((best * GB) / perTok)} tok/s at ${f(best)} GB/s`);
  console.log(`    prefill: read ${f((m.prefill.bytesRead + m.prefill.prefetchBytes) / GB)} GB, I/O wait ${f(m.prefill.ioWaitMs / 1000, 1)} s of ${f(r.out.promptTokens / r.out.prefillTokPerS, 1)} s`);
}

export async function benchStream(only?: string[], routing: StreamRouting = "real-like"): Promise<void> {
  const t0 = performance.now();
  const want = (name: string) => !only || only.includes(name);
  const fs = statfsSync(".");
  const ggufName = fileName("a3b-q4_k", routing, "gguf");
  const ggufPath = join(".cache", "bench", ggufName);
  if (!existsSync(ggufPath) && fs.bavail * fs.bsize < 36 * GB) {
    throw new Error(`a3b needs ~17 GB for the GGUF and ~17 GB for its pack; ${f((fs.bavail * fs.bsize) / GB, 1)} GB free`);
  }
  const gguf = await benchModel(a3b(routing), ggufName);
  const pack = await ensurePack(gguf, routing);
  const fileBytes = statSync(gguf).size;
  const manifest = JSON.parse(readFileSync(join(pack, MANIFEST_FILE), "utf8")) as PackManifest;
  const recordBytes = Math.max(...manifest.layers.map((l) => l.recordBytes));
  const expertBytes = manifest.layers.reduce((a, l) => a + l.recordBytes * l.experts, 0);
  const cap = Math.round(CAP_SHARE * fileBytes);
  console.log(`model: a3b Q4_K, ${routingOf(routing).label}, GGUF ${f(fileBytes / GB)} GB, experts ${f(expertBytes / GB)} GB in ${manifest.layers.length} layer files, record ${f(recordBytes / MiB)} MiB`);
  console.log(`load average at start: ${load()} (shared VM: other work on it skews every figure)`);

  // 1. Disk ceiling, records in random order over all layer files, disjoint sets per setting, in a child
  // with the same libuv pool as the engine runs.
  const recs: RecordRef[] = manifest.layers.flatMap((l) => Array.from({ length: l.experts }, (_, e) => ({ file: join(pack, l.file), position: RECORDS_OFFSET + e * l.recordBytes })));
  const order = shuffled(recs, 42);
  const disk: DiskRow[] = [];
  let used = 0;
  const measureDisk = async (when: DiskRow["when"], settings: [DiskRow["mode"], number][]) => {
    for (const [mode, inFlight] of settings) {
      const dropped = dropCaches();
      const recs = order.slice(used, (used += DISK_RECORDS));
      if (recs.length < DISK_RECORDS) return;
      const spec: ChildSpec = { kind: "disk", records: recs, recordBytes, inFlight, direct: mode === "direct" };
      const r = await runChild([process.execPath, "--import", "tsx", "bench/stream.ts", "child", JSON.stringify(spec)], undefined, CHILD_TIMEOUT_MS, { UV_THREADPOOL_SIZE: UV_POOL });
      if (r.code !== 0 || !r.json) throw new Error(`disk child failed: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
      disk.push({ when, mode, inFlight, load: load(), ...(r.json as DiskOut) });
      if (!dropped) console.log("  (could not drop the page cache: disk figures may be cache hits)");
    }
  };
  if (want("disk")) await measureDisk("start", [["direct", 1], ["direct", 4], ["direct", 8], ["direct", 16], ["buffered", 1], ["buffered", 16]]);

  // 2. Capped runs, each after dropping the page cache.
  const cgOk = createMemCgroup(`moestream-probe-${process.pid}`, cap);
  const capped = typeof cgOk !== "string";
  if (capped) cgOk.remove();
  else console.log(`NO memory cgroup (${cgOk}): falling back to --mem-budget alone, page cache is NOT capped`);
  const limit = capped ? cap : undefined;
  const moe = (prefetch: boolean, depth?: number): ChildSpec => ({ kind: "moe", path: pack, n: DECODE, depth, cfg: { expertIo: "stream", memBudget: cap, backend: "native", threads: THREADS, prefetch } });
  const shim = want("llama-norepack") ? buildShim() : undefined;
  const runs: Run[] = [];
  const plan: [string, string, ChildSpec][] = [
    ["moe-d2", "moestream stream, prefetch depth 2 (default)", moe(true)],
    ["moe-d1", "moestream stream, prefetch depth 1", moe(true, 1)],
    ["moe-d3", "moestream stream, prefetch depth 3", moe(true, 3)],
    ["moe-off", "moestream stream, prefetch off", moe(false)],
    ["llama", "llama.cpp mmap (default)", { kind: "llama", path: gguf, threads: THREADS, n: DECODE }],
  ];
  if (shim) plan.push(["llama-norepack", "llama.cpp mmap, repack off (--no-repack via LD_PRELOAD shim)", { kind: "llama", path: gguf, threads: THREADS, n: DECODE, noRepack: true }]);
  for (const [name, label, spec] of plan) if (want(name)) runs.push(await measure(label, spec, limit));

  // 2b. The IQ2_XXS mix, a3b's layers, MIX_LAYERS of 48: capped as the whole 48-layer file would be at CAP_SHARE
  // of its bytes, the expert share of that cap scaled to these layers (each layer keeps the cache share it would
  // have); then extrapolated to 48 layers: expert bytes per token x 48/L, time per token x 48/L (the embedding and
  // output head counted 48/L times: a lower bound on tok/s).
  let mix: { run: Run; scale: number; fileBytes: number } | undefined;
  if (want("moe-iq2xxs")) {
    const iq = await benchModel(a3bIq2(routing), fileName(`a3b-${MIX_LAYERS}L-mix-iq2_xxs`, routing, "gguf"));
    const info = await inspectGGUF(iq);
    const perLayer = info.expertBytes / MIX_LAYERS, scale = 48 / MIX_LAYERS;
    const headBytes = info.tensors.filter((t) => !t.name.startsWith("blk.")).reduce((a, t) => a + t.byteLength, 0);
    const wholeBytes = info.denseBytes + (info.denseBytes - headBytes) * (scale - 1) + perLayer * 48;
    // The whole file's run would keep its fixed room once (headroom, the process's own bytes, staging: not per
    // layer) and give the rest after dense weights to its cache; these layers get that cache / scale and the same
    // fixed room (scaling the fixed room too starved the cache: 66 MiB, 52 slots, in the first run of this row).
    const capWhole = CAP_SHARE * wholeBytes;
    const fixed = HEADROOM(capWhole) + FIXED_HELD;
    const cache = Math.round((capWhole - (info.denseBytes + (info.denseBytes - headBytes) * (scale - 1)) - fixed) / scale);
    const mixCap = Math.round(info.denseBytes + cache + fixed);
    const spec: ChildSpec = { kind: "moe", path: iq, n: DECODE, cfg: { expertIo: "stream", memBudget: mixCap, expertCache: cache, backend: "native", threads: THREADS, prefetch: true } };
    mix = { run: await measure(`moestream stream, IQ2_XXS mix, ${MIX_LAYERS} layers (default prefetch)`, spec, capped ? mixCap : undefined), scale, fileBytes: wholeBytes };
    console.log(`IQ2_XXS mix: ${MIX_LAYERS}-layer file ${f(statSync(iq).size / GB)} GB (the 48-layer file: ${f(wholeBytes / GB)} GB), capped at ${f(mixCap / GiB)} GiB; ${formatExpertBytes(info.perExpert, info.expertLayers)}`);
  }

  // 2c. gpt-oss-120b's shapes, OSS_LAYERS of 36 layers, both engines capped at CAP_SHARE of that file's bytes.
  const oss: Run[] = [];
  let ossCap = 0;
  if (want("oss120")) {
    const path = await benchModel(oss120(routing), fileName(`gpt-oss-120b-${OSS_LAYERS}L-mxfp4`, routing, "gguf"));
    const info = await inspectGGUF(path);
    ossCap = Math.round(CAP_SHARE * statSync(path).size);
    console.log(`gpt-oss-120b-shaped, ${OSS_LAYERS} of 36 layers: file ${f(statSync(path).size / GB)} GB, capped at ${f(ossCap / GiB)} GiB; ${formatExpertBytes(info.perExpert, info.expertLayers)}`);
    oss.push(await measure(`moestream stream, gpt-oss-120b ${OSS_LAYERS}L`, { kind: "moe", path, n: DECODE, cfg: { expertIo: "stream", memBudget: ossCap, backend: "native", threads: THREADS, prefetch: true } }, capped ? ossCap : undefined));
    oss.push(await measure(`llama.cpp mmap, gpt-oss-120b ${OSS_LAYERS}L`, { kind: "llama", path, threads: THREADS, n: DECODE }, capped ? ossCap : undefined));
    // Its CPU repack copies weights out of the mapping (OOM under the cap): also run with repack off, as for a3b.
    if (buildShim()) oss.push(await measure(`llama.cpp mmap, repack off, gpt-oss-120b ${OSS_LAYERS}L`, { kind: "llama", path, threads: THREADS, n: DECODE, noRepack: true }, capped ? ossCap : undefined));
  }

  // 3. Uncapped: stream vs resident after the same warm-up (every expert in memory), and llama.cpp;
  // a safety cgroup keeps an overrun from OOM-killing other work.
  const denseBytes = fileBytes - expertBytes;
  const fits = memAvailable() > expertBytes + denseBytes + 2 * GiB;
  const wantFree = ["free-stream", "free-resident", "free-llama"].some(want);
  const big = fits || !wantFree ? pack : await benchModel(a3b8L(routing), fileName("a3b-8L-q8_0", routing, "gguf"));
  const safety = capped ? Math.min(totalmem() - GiB, memAvailable()) : undefined;
  const uc = (expertIo: "stream" | "resident"): ChildSpec => ({ kind: "moe", path: big, n: DECODE, warm: true, cfg: { expertIo, backend: "native", threads: THREADS, prefetch: true } });
  const free: Run[] = [];
  const tag = fits ? "a3b" : "a3b-8L";
  if (want("free-stream")) free.push(await measure(`moestream stream (${tag}), warmed`, uc("stream"), safety));
  if (want("free-resident")) free.push(await measure(`moestream resident (${tag})`, uc("resident"), safety));
  if (fits && want("free-llama")) free.push(await measure("llama.cpp mmap (default), a3b", { kind: "llama", path: gguf, threads: THREADS, n: DECODE }, safety));

  // Again at the end: the disk is shared, one sample can catch someone else's burst.
  if (want("disk")) await measureDisk("end", [["direct", 16], ["buffered", 16]]);

  // ---- report ----
  if (disk.length) {
    console.log(`\ndisk ceiling: ${DISK_RECORDS} random ${f(recordBytes / MiB)} MiB records per setting, disjoint (page cache dropped), Node fs positioned reads, UV_THREADPOOL_SIZE=${UV_POOL}; measured at the start and again at the end`);
    for (const d of disk) console.log(`  ${d.when.padEnd(5)} ${d.mode.padEnd(8)} ${String(d.inFlight).padStart(2)} in flight  ${f(d.gbps)} GB/s   per read p50 ${f(d.p50Ms, 1)} ms, p99 ${f(d.p99Ms, 1)} ms   (load avg ${d.load})`);
    console.log(`  best: ${f(Math.max(...disk.map((d) => d.gbps)))} GB/s (the bar's reference below)`);
  }

  const byLabel = (p: string) => runs.find((r) => r.label.startsWith(p));
  const llama = byLabel("llama.cpp mmap (default)")?.out, llamaNr = byLabel("llama.cpp mmap, repack off")?.out;
  const llamaFree = free.find((r) => r.label.startsWith("llama.cpp"))?.out;
  const llamaRef = llama ?? llamaNr;
  console.log(`\ncapped at ${f(cap / GiB)} GiB = ${CAP_SHARE} x GGUF bytes (${capped ? "cgroup v1 memory limit, page cache included" : "--mem-budget only"}); prompt ${runs[0]?.out?.promptTokens ?? "?"} tokens, ${DECODE} decode tokens, greedy, ${THREADS} threads`);
  console.log("  " + ["engine", "prefill t/s", "decode t/s", `x llama capped${llama ? "" : " (repack off)"}`, "x llama uncapped", "load s", "disk MiB/tok", "peak GiB", "RSS anon/file GiB", "load avg before -> after"].join(" | "));
  for (const r of runs) {
    if (!r.out) {
      console.log(`  ${r.label}: FAILED ${r.error} (peak ${f((r.peakBytes ?? NaN) / GiB)} GiB, after ${f(r.wallMs / 1000, 0)} s)`);
      continue;
    }
    const o = r.out, x = (ref?: ChildOut) => (ref ? f(o.decodeTokPerS / ref.decodeTokPerS) : "-");
    console.log(`  ${[r.label, f(o.prefillTokPerS), f(o.decodeTokPerS), x(llamaRef), x(llamaFree), f(o.loadMs / 1000, 1), f(o.disk.decode / o.decodeTokens / MiB, 0), f((r.peakBytes ?? NaN) / GiB), `${f(o.rssAnonBytes / GiB)}/${f(o.rssFileBytes / GiB)}`, r.load].join(" | ")}`);
  }
  if (!llama && llamaFree) {
    console.log(`  llama.cpp (default) uncapped holds ${f(llamaFree.rssAnonBytes / GiB)} GiB anonymous + ${f(llamaFree.rssFileBytes / GiB)} GiB mmapped: its CPU repack copies the Q4_K weights out of the mapping, so no cap below that can run it`);
  }
  if (llamaNr) console.log(`  llama.cpp with repack off under the cap: ${f(llamaNr.decodeTokPerS)} decode t/s, ${f(llamaNr.prefillTokPerS)} prefill t/s, anon ${f(llamaNr.rssAnonBytes / GiB)} GiB (weights stay in the mapping)`);

  console.log(`\nmoestream expert traffic under the cap (decode phase unless noted)`);
  for (const r of runs) printTraffic(r, disk);
  if (mix) {
    printTraffic(mix.run, disk);
    const o = mix.run.out, q4 = byLabel("moestream stream, prefetch depth 2")?.out;
    const perTok = (x: ChildOut) => (x.moe!.decode.bytesRead + x.moe!.decode.prefetchBytes) / x.decodeTokens / MiB;
    if (o?.moe) {
      const mib = perTok(o) * mix.scale, tps = o.decodeTokPerS / mix.scale;
      console.log(`\na3b, Q4_K vs the IQ2_XXS mix, capped at ${CAP_SHARE} x each file's bytes (IQ2_XXS: ${MIX_LAYERS} layers measured, x ${mix.scale} to 48)`);
      console.log(`  Q4_K:    read ${q4 ? f(perTok(q4), 0) : "-"} MiB/token, decode ${q4 ? f(q4.decodeTokPerS) : "-"} tok/s (48 layers measured)`);
      console.log(`  IQ2_XXS: read ${f(mib, 0)} MiB/token, decode >= ${f(tps)} tok/s (measured on ${MIX_LAYERS} layers: ${f(perTok(o), 0)} MiB/token, ${f(o.decodeTokPerS)} tok/s)${q4 ? `; ${f(tps / q4.decodeTokPerS)}x Q4_K's decode, ${f(mib / perTok(q4))}x its bytes` : ""}`);
    } else console.log(`  IQ2_XXS mix: FAILED ${mix.run.error}`);
  }

  if (oss.length) {
    console.log(`\ngpt-oss-120b-shaped (${OSS_LAYERS} of 36 layers, MXFP4 experts), both capped at ${f(ossCap / GiB)} GiB = ${CAP_SHARE} x the file; ${routingOf(routing).label}`);
    const mo = oss[0].out, lo = oss[1]?.out ?? oss[2]?.out;
    for (const r of oss) {
      if (!r.out) console.log(`  ${r.label}: FAILED ${r.error} (peak ${f((r.peakBytes ?? NaN) / GiB)} GiB)`);
      else console.log(`  ${r.label.padEnd(40)} prefill ${f(r.out.prefillTokPerS)} tok/s, decode ${f(r.out.decodeTokPerS)} tok/s, disk ${f(r.out.disk.decode / r.out.decodeTokens / MiB, 0)} MiB/token, peak ${f((r.peakBytes ?? NaN) / GiB)} GiB, load avg ${r.load}`);
    }
    if (mo && lo) console.log(`  moestream / llama.cpp${oss[1]?.out ? "" : " (repack off)"}: decode ${f(mo.decodeTokPerS / lo.decodeTokPerS)}x, prefill ${f(mo.prefillTokPerS / lo.prefillTokPerS)}x; same greedy tokens: ${mo.tokens.join() === lo.tokens.join() ? "yes" : `no (first difference at ${mo.tokens.findIndex((t, i) => t !== lo.tokens[i])})`}`);
    if (oss[0]) printTraffic(oss[0], disk);
  }

  console.log(`\nuncapped (${fits ? "a3b" : `a3b-8L Q8_0: a3b resident needs ~${f((expertBytes + denseBytes) / GiB, 0)} GiB, only ${f(memAvailable() / GiB, 1)} GiB available`}; page cache dropped before each; safety cgroup ${safety ? f(safety / GiB, 1) + " GiB" : "none"}; stream waits for its background fill before the prompt, as resident loads every expert first)`);
  for (const r of free) {
    if (!r.out) {
      console.log(`  ${r.label}: FAILED ${r.error}`);
      continue;
    }
    const o = r.out, d = o.moe?.decode, p = o.moe?.prefill;
    const io = d && p ? `, decode hit rate ${pct(d.hits, d.hits + d.misses)}, I/O wait ${f(d.ioWaitMs / o.decodeTokens, 0)} ms/token (prefill ${f(p.ioWaitMs / 1000, 1)} s)` : "";
    const warm = o.moe?.warmMs ? `, warm-up fill ${f(o.moe.warmMs / 1000, 1)} s (${o.moe.filled} experts)` : "";
    console.log(`  ${r.label.padEnd(32)} decode ${f(o.decodeTokPerS)} tok/s, prefill ${f(o.prefillTokPerS)} tok/s, load ${f(o.loadMs / 1000, 1)} s${warm}${io}, RSS anon ${f(o.rssAnonBytes / GiB)} + file ${f(o.rssFileBytes / GiB)} GiB, load avg ${r.load}`);
  }
  const fs_ = free.find((r) => r.label.startsWith("moestream stream"))?.out, fr = free.find((r) => r.label.startsWith("moestream resident"))?.out;
  if (fs_ && fr) console.log(`  stream / resident: decode ${f(fs_.decodeTokPerS / fr.decodeTokPerS)}x, prefill ${f(fs_.prefillTokPerS / fr.prefillTokPerS)}x (bar: decode >= 1.00x)`);
  if (fr && llamaFree && fits) console.log(`  moestream resident / llama.cpp decode: ${f(fr.decodeTokPerS / llamaFree.decodeTokPerS)}x, prefill ${f(fr.prefillTokPerS / llamaFree.prefillTokPerS)}x`);
  // Greedy ids: moestream must agree with itself whatever the mode; llama.cpp may part where logits are near-tied.
  const ids = [...runs, ...(fits ? free : [])].filter((r) => r.out).map((r) => [r.label, r.out!.tokens] as const);
  if (ids.length > 1) {
    const [ref, refIds] = ids[0];
    const part = (t: number[]) => {
      const i = t.findIndex((x, j) => x !== refIds[j]);
      return i < 0 && t.length === refIds.length ? "same" : `differs from token ${i < 0 ? Math.min(t.length, refIds.length) : i}`;
    };
    console.log(`greedy ids vs ${ref}: ${ids.slice(1).map(([l, t]) => `${l} ${part(t)}`).join("; ")}`);
  }
  const out = join(".cache", "bench", only ? "stream-results-partial.json" : "stream-results.json");
  writeFileSync(out, JSON.stringify({ routing, cap, disk, capped: runs, uncapped: free }, null, 1));
  console.log(`load average at end: ${load()}; took ${f((performance.now() - t0) / 60_000, 1)} min; raw results in ${out}`);
}

/** The routing a `--routing=NAME` argument asks for (default real-like); an unknown name is an error. */
export function streamRouting(args: readonly string[]): StreamRouting {
  const r = args.find((a) => a.startsWith("--routing="))?.slice("--routing=".length) ?? "real-like";
  if (!(STREAM_ROUTINGS as readonly string[]).includes(r)) throw new UsageError("bad_option", `--routing must be one of ${STREAM_ROUTINGS.join(", ")}, got '${r}'`);
  return r as StreamRouting;
}

// Child entry: `node --import tsx bench/stream.ts child <spec json>` prints one JSON line.
const main = import.meta.url === pathToFileURL(process.argv[1]).href;
if (main && process.argv[2] === "only") await benchStream(process.argv[3].split(","), streamRouting(process.argv.slice(4)));
if (main && process.argv[2] === "child") {
  const spec = JSON.parse(process.argv[3]) as ChildSpec;
  try {
    const out = spec.kind === "moe" ? await childMoe(spec) : spec.kind === "llama" ? await childLlama(spec) : await readRecords(spec.records, spec.recordBytes, spec.inFlight, spec.direct);
    console.log(JSON.stringify(out));
    process.exit(0); // node-llama-cpp can keep the loop alive
  } catch (e) {
    console.error((e as Error).stack ?? e);
    process.exit(1);
  }
}
