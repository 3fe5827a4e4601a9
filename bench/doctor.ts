// npm run bench -- doctor: doctor's decode and prefill forecasts against `bench`'s measurement on the tiny model, a3b-8L's
// Q4_K_M-like mix (resident) and a3b Q4_K's pack under a memory cgroup at 0.35x its bytes (streamed). Each is one
// `bench --forecast` child: memory and disk probed before and after every run, so forecast and measurement share
// the machine's load (the load average is printed beside them). --only=tiny|8L|a3b picks one.
// The page cache is not dropped: packs are read with O_DIRECT, so it does not change the streamed figures.
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { createMemCgroup, runChild, type MemCgroup } from "./cgroup.js";

/** children: separate processes (a streamed run's repetitions would replay the same routing into a warm cache). */
interface Case { name: string; model: string; args: string[]; capBytes?: number; children?: number }
interface BenchJson { expertIO: string; pp: { tokens: number; tokPerSec: number[] }; tg: { tokPerSec: number[] }; forecast: { pp: { tokPerSec: number; low: number }[]; tg: { tokPerSec: number; low: number; high: number; memGBps: number; diskGBps?: number; hitRate: number; diskMiBPerToken: number; measured: { hitRate: number; diskMiBPerToken: number; ioWaitMsPerToken: number } }[] } }

const CACHE = process.env.MOESTREAM_BENCH_CACHE ?? join(".cache", "bench");
const GiB = 2 ** 30;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function ensureTiny(): Promise<string> {
  const path = join(CACHE, "tiny-q4_k.gguf");
  if (!existsSync(path)) {
    const r = await runChild([process.execPath, "bin/moestream.cjs", "gen", "--preset", "tiny", "--type", "Q4_K", "-o", path], undefined, 10 * 60_000);
    if (r.code !== 0) throw new Error(`gen tiny: ${r.stderr}`);
  }
  return path;
}

export async function benchDoctor(only?: string): Promise<void> {
  const cases: Case[] = [
    { name: "tiny Q4_K (resident)", model: await ensureTiny(), args: ["-p", "512", "-n", "64", "-r", "6"] },
    { name: "a3b-8L Q4_K_M mix (resident)", model: join(CACHE, "a3b-8L-mix-q4_k_m.gguf"), args: ["-p", "512", "-n", "32", "-r", "5"] },
    { name: "a3b Q4_K pack, cgroup 0.35x (streamed)", model: join(CACHE, "a3b-q4_k-real-like.moe"), args: ["-p", "8", "-n", "32", "-r", "1", "--no-warmup"], capBytes: Math.round(0.35 * 17.2e9), children: 2 },
  ].filter((c) => !only || c.name.includes(only));
  for (const c of cases) {
    if (!existsSync(c.model)) {
      console.log(`${c.name}: ${c.model} missing (npm run bench -- cpu / stream generate it)`);
      continue;
    }
    for (let child = 0; child < (c.children ?? 1); child++) await runCase(c);
  }
}

async function runCase(c: Case): Promise<void> {
  let cg: MemCgroup | undefined;
  if (c.capBytes) {
    const made = createMemCgroup(`moestream-doctor-${process.pid}`, c.capBytes);
    if (typeof made === "string") {
      console.log(`${c.name}: no memory cgroup (${made}); skipped`);
      return;
    }
    cg = made;
  }
  const load0 = loadavg()[0];
  try {
    const r = await runChild([process.execPath, "bin/moestream.cjs", "bench", "-m", c.model, ...c.args, "--forecast", "--json"], cg, 20 * 60_000, { UV_THREADPOOL_SIZE: "16" });
    const j = r.json as BenchJson | undefined;
    if (r.code !== 0 || !j) {
      console.log(`${c.name}: failed (exit ${r.code ?? r.signal}${cg?.oomKills() ? ", OOM-killed" : ""}): ${r.stderr.trim().split("\n").slice(-2).join(" | ")}`);
      return;
    }
    const tg = j.tg.tokPerSec, fc = j.forecast.tg;
    console.log(`\n${c.name}: ${c.model}${cg ? ` in a ${(c.capBytes! / GiB).toFixed(2)} GiB cgroup` : ""}, experts ${j.expertIO}, load average ${load0.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`);
    console.log(`  run  measured tok/s  forecast tok/s (range)  measured/forecast  memory GB/s  disk GB/s  hit rate meas/fc  disk MiB/tok meas/fc  I/O wait ms/tok`);
    tg.forEach((t, i) => {
      const f = fc[i], m = f.measured;
      const stream = j.expertIO === "stream" ? `${(100 * m.hitRate).toFixed(1)}/${(100 * f.hitRate).toFixed(1)}%`.padStart(16) + `  ${m.diskMiBPerToken.toFixed(0)}/${f.diskMiBPerToken.toFixed(0)}`.padStart(21) + `  ${m.ioWaitMsPerToken.toFixed(0)}`.padStart(16) : "";
      console.log(`  ${String(i + 1).padStart(3)}  ${t.toFixed(2).padStart(14)}  ${`${f.tokPerSec.toFixed(2)} (${f.low.toFixed(2)}-${f.high.toFixed(2)})`.padStart(22)}  ${(t / f.tokPerSec).toFixed(2).padStart(17)}  ${f.memGBps.toFixed(1).padStart(11)}  ${(f.diskGBps?.toFixed(2) ?? "-").padStart(9)}${stream}`);
    });
    const ratio = median(tg.map((t, i) => t / fc[i].tokPerSec));
    console.log(`  median measured/forecast ${ratio.toFixed(2)} (${Math.abs(ratio - 1) <= 0.25 ? "within" : "outside"} +-25%)${cg ? `; peak cgroup usage ${(cg.maxUsage() / GiB).toFixed(2)} GiB` : ""}`);
    const pp = j.pp.tokPerSec, pf = j.forecast.pp;
    if (pf.length === pp.length) {
      const ppRatio = median(pp.map((t, i) => t / pf[i].tokPerSec));
      console.log(`  pp${j.pp.tokens}: measured ${pp.map((t) => t.toFixed(1)).join(", ")} tok/s; forecast ${pf.map((f) => f.tokPerSec.toFixed(1)).join(", ")}; median measured/forecast ${ppRatio.toFixed(2)} (${Math.abs(ppRatio - 1) <= 0.25 ? "within" : "outside"} +-25%)`);
    }
  } finally {
    cg?.remove();
  }
}
