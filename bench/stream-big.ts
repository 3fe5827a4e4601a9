// npm run bench -- stream-big: the families expert streaming exists for, at their real layer dimensions —
// Qwen3.5-397B-A17B (512 experts of 1024, 3 DeltaNet + 1 gated-attention layer) and DeepSeek-V3-671B (MLA, 256
// experts of 2048, its first dense layer and one MoE layer) — as many layers as the disk holds, real-like routing,
// experts Q4_K and the rest Q8_0, streamed straight from the GGUF (the file a user downloads; no pack) under a
// memory cgroup holding the dense part and 0.33 of the experts (what 0.35x of a real file leaves), against the disk's ceiling for the same reads measured in the same run.
// Whole-model figures are extrapolated from the per-layer cost (printed with the rule used).
import { statfsSync, statSync } from "node:fs";
import { join } from "node:path";
import { openGGUF } from "../src/format/gguf/read.js";
import { parseRouting } from "../src/cli/gen.js";
import { PRESETS } from "../src/gen/presets.js";
import type { GenerateOptions } from "../src/gen/generate.js";
import { benchModel } from "./models.js";
import { createMemCgroup, dropCaches, runChild } from "./cgroup.js";
import { shuffled, type RecordRef } from "../src/util/disk-read.js";
import {
  CHILD_TIMEOUT_MS, DECODE, THREADS, UV_POOL, GB, GiB, MiB, f, pct, load, measure, printTraffic,
  type ChildSpec, type DiskOut, type DiskRow, type Run,
} from "./stream.js";

interface BigModel {
  label: string;
  file: string;
  gen: Omit<GenerateOptions, "onProgress">;
  /** The real model's layers, and how its per-token time is bounded from this file's (see extrapolate). */
  realLayers: number;
  /** Factor k: the real model's decode time per token <= k x this file's (each term of the real sum is at most one of ours). */
  scale: number;
  scaleRule: string;
}

const REAL_LIKE = parseRouting("real-like", "1", "0.5");
/** The share of the experts' bytes the cap leaves them: what a cap at CAP_SHARE of a real file (~97% experts) leaves. */
const EXPERT_SHARE = 0.33;
export const MODELS: BigModel[] = [
  {
    label: "Qwen3.5-397B-A17B shape",
    file: "q35-397b-4L-q4_k-rl.gguf",
    gen: { preset: "qwen35-397b-4L", type: "Q8_0", expertType: "Q4_K", expertSynthesis: "direct", seed: 1, routing: REAL_LIKE },
    realLayers: 60,
    // 60 = 15 x (3 DeltaNet + 1 attention) layers, the file's exact pattern; output head and embedding counted 15 times.
    scale: 15,
    scaleRule: "real 60 layers = 15 x this file's 3 DeltaNet + 1 attention; time x 15 (head counted 15 times: an upper bound)",
  },
  {
    label: "DeepSeek-V3-671B shape",
    file: "dsv3-2L-q4_k-rl.gguf",
    gen: {
      preset: { ...PRESETS["deepseek-v3-4L"], hp: { ...PRESETS["deepseek-v3-4L"].hp, nLayer: 2, nDenseLead: 1 } },
      type: "Q8_0", expertType: "Q4_K", expertSynthesis: "direct", seed: 1, routing: REAL_LIKE,
    },
    realLayers: 61,
    // 61 = 3 dense + 58 MoE: at most 58 x (1 dense + 1 MoE + head), this file's token.
    scale: 58,
    scaleRule: "real 3 dense + 58 MoE layers <= 58 x this file's 1 dense + 1 MoE (+ head): time x 58, an upper bound",
  },
];

/** Every routed expert's gate/up/down slice in the file: what the GGUF expert reader reads, one read each. */
async function expertSlices(path: string): Promise<{ recs: RecordRef[]; bytes: number; experts: number; expertBytes: number }> {
  const file = await openGGUF(path);
  try {
    const parts = file.tensors.filter((t) => /^blk\.\d+\.ffn_(gate|up|down|gate_up)_exps\.weight$/.test(t.name));
    const recs: RecordRef[] = [];
    let bytes = Infinity, expertBytes = 0, experts = 0;
    for (const t of parts) {
      const n = t.shape[t.shape.length - 1];
      const b = t.byteLength / n;
      bytes = Math.min(bytes, b);
      expertBytes += t.byteLength;
      if (/ffn_(down|gate_up)_exps/.test(t.name)) experts += n;
      for (let e = 0; e < n; e++) recs.push({ file: path, position: t.offset + e * b });
    }
    return { recs, bytes, experts, expertBytes };
  } finally {
    await file.source.close();
  }
}

export async function benchStreamBig(only?: string): Promise<void> {
  const t0 = performance.now();
  for (const m of MODELS) {
    if (only && !m.file.includes(only) && !m.label.toLowerCase().includes(only.toLowerCase())) continue;
    const path = join(".cache", "bench", m.file);
    try {
      statSync(path);
    } catch {
      const fs = statfsSync(".");
      console.log(`${m.label}: generating ${m.file} (once; cached; ${f((fs.bavail * fs.bsize) / GB, 1)} GB free)`);
    }
    const gguf = await benchModel(m.gen, m.file);
    const fileBytes = statSync(gguf).size;
    const sl = await expertSlices(gguf);
    // The real files are ~97% experts, so a cap at 0.35x of one leaves its experts ~0.33 of their bytes; these
    // few-layer files carry the whole embedding and output head (a third of the DeepSeek one), so 0.35x of the
    // file would not even hold its dense part: the cap gives the dense part and the same expert share instead.
    const denseBytes = fileBytes - sl.expertBytes;
    const cap = Math.round(denseBytes + EXPERT_SHARE * sl.expertBytes);
    console.log(`\n${m.label}: ${m.file}, ${f(fileBytes / GB)} GB (experts ${f(sl.expertBytes / GB)} GB, ${sl.experts} experts, slices of ${f(sl.bytes / MiB)} MiB), real-like routing, experts Q4_K, rest Q8_0`);
    console.log(`  load average at start: ${load()}`);

    // Disk ceiling for these reads: random slices, buffered as the GGUF reader reads them (GGUF offsets are not
    // O_DIRECT-aligned), 4 and 16 in flight before the run and 16 again after it (the disk is shared), disjoint sets.
    const order = shuffled(sl.recs, 7);
    const per = Math.min(384, Math.floor(order.length / 3));
    const disk: DiskRow[] = [];
    const measureDisk = async (when: DiskRow["when"], inFlight: number) => {
      dropCaches();
      const spec: ChildSpec = { kind: "disk", records: order.slice(disk.length * per, (disk.length + 1) * per), recordBytes: sl.bytes, inFlight, direct: false };
      const r = await runChild([process.execPath, "--import", "tsx", "bench/stream.ts", "child", JSON.stringify(spec)], undefined, CHILD_TIMEOUT_MS, { UV_THREADPOOL_SIZE: UV_POOL });
      if (r.code !== 0 || !r.json) throw new Error(`disk child failed: ${r.stderr.trim().split("\n").slice(-3).join(" | ")}`);
      disk.push({ when, mode: "buffered", inFlight, load: load(), ...(r.json as DiskOut) });
    };
    await measureDisk("start", 4);
    await measureDisk("start", 16);

    const probe = createMemCgroup(`moestream-probe-${process.pid}`, cap);
    const capped = typeof probe !== "string";
    if (capped) probe.remove();
    else console.log(`  NO memory cgroup (${probe}): --mem-budget alone, page cache NOT capped`);
    const spec: ChildSpec = { kind: "moe", path: gguf, n: DECODE, cfg: { expertIo: "stream", memBudget: cap, backend: "native", threads: THREADS, prefetch: true } };
    const run: Run = await measure(`moestream stream ${m.file}`, spec, capped ? cap : undefined);
    if (!run.out) {
      console.log(`  FAILED: ${run.error} (peak ${f((run.peakBytes ?? NaN) / GiB)} GiB)`);
      continue;
    }
    await measureDisk("end", 16);
    for (const d of disk) console.log(`  disk (${d.when}): ${per} random ${f(sl.bytes / MiB)} MiB slices, ${d.mode}, ${d.inFlight} in flight: ${f(d.gbps)} GB/s (p50 ${f(d.p50Ms, 1)} ms, p99 ${f(d.p99Ms, 1)} ms)`);
    const best = Math.max(...disk.map((x) => x.gbps));
    const o = run.out, d = o.moe!.decode, n = o.decodeTokens;
    const perTok = (d.bytesRead + d.prefetchBytes) / n;
    const ceiling = (best * GB) / perTok;
    console.log(`  capped at ${f(cap / GiB)} GiB = dense ${f(denseBytes / GiB)} + ${EXPERT_SHARE} x experts${capped ? " (cgroup: page cache included)" : ""}; prompt ${o.promptTokens} tokens, ${n} decode tokens, greedy, ${THREADS} threads; peak ${f((run.peakBytes ?? NaN) / GiB)} GiB`);
    console.log(`  prefill ${f(o.prefillTokPerS)} tok/s, decode ${f(o.decodeTokPerS)} tok/s; hit rate ${pct(d.hits, d.hits + d.misses)}; read ${f(perTok / MiB, 0)} MiB/token; I/O wait ${f(d.ioWaitMs / n, 0)} of ${f(1000 / o.decodeTokPerS, 0)} ms/token; disk-bound decode ceiling ${f(ceiling)} tok/s at ${f(best)} GB/s`);
    printTraffic(run, disk);
    console.log(`  whole model (${m.realLayers} layers): decode >= ${f(o.decodeTokPerS / m.scale, 3)} tok/s, prefill >= ${f(o.prefillTokPerS / m.scale, 3)} tok/s, disk-bound decode ceiling ${f(ceiling / m.scale, 3)} tok/s; rule: ${m.scaleRule}`);
  }
  console.log(`\nload average at end: ${load()}; took ${f((performance.now() - t0) / 60_000, 1)} min`);
}
