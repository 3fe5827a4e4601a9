// moestream doctor: will a model run here, and how fast? Header (local or remote), the engine's memory plan,
// a few-second probe of memory and disk, and a decode forecast.
import type { Command } from "commander";
import { ENGINE_OPTIONS } from "../engine/config.js";
import { doctor, type DoctorReport } from "../engine/doctor.js";
import { CALIBRATION } from "../engine/forecast.js";
import { formatBytes } from "../util/bytes.js";
import { addOptions, engineConfig, intOption } from "./common.js";
import { addHubOptions, hubAccess } from "./pull.js";

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const tps = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

export function formatReport(r: DoctorReport): string {
  const m = r.model;
  const out: string[] = [];
  const fetched = r.source.headerBytesFetched !== undefined ? ` (header read remotely: ${formatBytes(r.source.headerBytesFetched)} fetched)` : "";
  out.push(`model: ${r.source.path}, ${formatBytes(r.source.fileBytes)}${fetched}`);
  const h = r.source.hub;
  if (h) {
    const parts = h.files.length > 1 ? `, a split GGUF of ${h.files.length} parts: each part's header read (each lists its own tensors), nothing downloaded` : ", nothing downloaded";
    out.push(`  ${h.repo}@${h.commit.slice(0, 12)} ${h.quant}: ${h.files[0]}${parts}`);
  }
  out.push(`  ${m.arch}, ${m.layers} layers (${m.moeLayers} with experts), ${m.experts} experts, ${m.expertsUsed} used per token`);
  out.push(`  dense ${formatBytes(m.denseBytes)}, experts ${formatBytes(m.expertBytes)}, record ${formatBytes(m.recordBytes)}; ${m.perExpert.map((t) => `${t.type} ${formatBytes(t.bytesPerExpert)}`).join(" + ")} per expert per layer`);
  const perTok = Object.entries(m.bytesPerTokenByType).sort((a, b) => b[1] - a[1]).map(([t, b]) => `${t} ${formatBytes(b)}`).join(", ");
  out.push(`  weights read per token: ${perTok}`);
  const p = r.probe;
  out.push(`machine (probed in ${(p.ms / 1000).toFixed(1)} s):`);
  if (p.memory) out.push(`  memory read ${p.memory.gbps.toFixed(1)} GB/s (best ${p.memory.best.toFixed(1)}; ${p.memory.how})`);
  const gf = (g: Record<string, number>) => Object.entries(g).map(([t, x]) => `${t} ${x.toFixed(0)}`).join(", ");
  if (p.compute) out.push(`  matmul GFLOP/s at ${p.compute.dense.tokens} tokens: ${gf(p.compute.dense.gflops)}${p.compute.experts ? `; at ${p.compute.experts.tokens} (an expert's share): ${gf(p.compute.experts.gflops)}` : ""} (${p.compute.dense.how.replace(/ by \d+ tokens/, "")})${p.compute.attentionMs !== undefined ? `; attention over ${p.compute.dense.tokens} tokens ${p.compute.attentionMs.toFixed(1)} ms a layer` : ""}`);
  if (p.disk) out.push(`  disk ${p.disk.gbps.toFixed(2)} GB/s as the reads were issued (the device alone ${p.disk.diskGBps.toFixed(2)}), read p50 ${p.disk.p50Ms.toFixed(1)} ms, p99 ${p.disk.p99Ms.toFixed(1)} ms (${p.disk.how})`);
  if (!r.plan || !r.forecast) {
    out.push(`verdict: does not run here: ${r.whyNot}`);
    return out.join("\n");
  }
  const f = r.forecast;
  out.push(`plan (as the engine decides): memory budget ${formatBytes(r.plan.budget.bytes)} (${r.plan.budget.why}), context ${r.plan.ctxSize}, KV ${formatBytes(r.plan.kvBytes)}`);
  out.push(`  ${r.plan.reason}`);
  if (f.mode === "stream") {
    out.push(`  expert cache ${formatBytes(r.plan.cacheBytes)} = ${r.plan.cacheSlots} slots, ${f.cacheMultiple!.toFixed(2)}x a token's experts per layer`);
    out.push(`  hit rate ${pct(f.hitRate.low)}-${pct(f.hitRate.high)} (expected ${pct(f.hitRate.mid)}; assumed: real routing traces replayed with the default policy, docs/cache-policy.md)`);
    out.push(`  disk read per token ${formatBytes(f.diskBytesPerToken.mid)} (${formatBytes(f.diskBytesPerToken.low)}-${formatBytes(f.diskBytesPerToken.high)})`);
  }
  out.push(`forecast: decode ${tps(f.decode.mid)} tok/s (${tps(f.decode.low)}-${tps(f.decode.high)}), experts ${f.mode === "stream" ? "streamed" : "resident"}`);
  out.push(`  per token: ${formatBytes(f.bytesPerToken)} of weights; ${f.ms.compute.toFixed(1)} ms compute + ${f.ms.fixed.toFixed(1)} ms fixed${f.mode === "stream" ? ` + ${f.ms.disk.toFixed(1)} ms disk` : ""}`);
  out.push(`  (bandwidth model: kernels at ${CALIBRATION.memEfficiency} of the probed memory bandwidth; README "doctor" says where the factors come from)`);
  const pf = r.prefill;
  if (pf) {
    const ms = Object.entries(pf.ms).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(" + ");
    out.push(`forecast: prefill ${tps(pf.tokPerSec.mid)} tok/s (${tps(pf.tokPerSec.low)}-${tps(pf.tokPerSec.mid)}) for a ${pf.promptTokens}-token prompt, compute-bound: ${ms} ms`);
    if (pf.expertsTouched > 0) out.push(`  (batches of ${pf.batch}: a MoE layer's batch touches ${pf.expertsTouched.toFixed(1)} experts, ${pf.expertBatch.toFixed(1)} tokens each; the low figure if weight reads and compute do not overlap)`);
  }
  for (const a of f.advice) out.push(`hint: ${a}`);
  return out.join("\n");
}

export function registerDoctor(program: Command): void {
  const cmd = program
    .command("doctor <model>")
    .description("will a model run here, and how fast? reads its header (a GGUF, a pack, a Hugging Face REPO[:QUANT|FILE] as pull takes it, or an http(s) URL: range requests, no download), probes memory and disk, forecasts decode and prefill tok/s")
    .option("--json", "print one JSON object")
    .option("--prompt-tokens <n>", "the prompt length the prefill forecast is for", "512")
    .option("--probe-dir <dir>", "for a remote model: where the disk probe writes a scratch file (where the model would be downloaded)", ".")
    .addHelpText("after", "\nExamples:\n  moestream doctor model.gguf\n  moestream doctor unsloth/Qwen3-30B-A3B-GGUF:Q4_K_M\n  moestream doctor https://huggingface.co/ORG/REPO/resolve/main/FILE.gguf\n  moestream doctor model.moe --mem-budget 8G --json");
  addHubOptions(cmd);
  addOptions(cmd, ENGINE_OPTIONS);
  cmd.action(async (model: string, opts) => {
    const cfg = engineConfig(opts);
    const promptTokens = intOption(opts.promptTokens, "--prompt-tokens", 1);
    const report = await doctor(model, cfg, { probeDir: opts.probeDir, hub: hubAccess(opts), promptTokens });
    process.stdout.write((opts.json ? JSON.stringify(report) : formatReport(report)) + "\n");
  });
}
