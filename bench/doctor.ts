// npm run bench -- doctor: doctor's decode forecast against `bench`'s measurement on the tiny model, a3b-8L's
// Q4_K_M-like mix (resident) and a3b Q4_K's pack under a memory cgroup at 0.35x its bytes (streamed). Each is one
// `bench --forecast` child: memory and disk probed before and after every run, so forecast and measurement share
// the machine's load (the load average is printed beside them). --only=tiny|8L|a3b picks one.
// The page cache is not dropped: packs are read with O_DIRECT, so it does not change the streamed figures.
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { createMemCgroup, runChild, type MemCgroup } from "./cgroup.js";

interface Case { name: string; model: string; args: string[]; capBytes?: number }
interface BenchJson { expertIO: string; tg: { tokPerSec: number[] }; forecast: { tg: { tokPerSec: number; low: number; high: number; memGBps: number; diskGBps?: number }[] }; lastRun: { experts: { decode: { hits: number; misses: number } } } }

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
    { name: "tiny Q4_K (resident)", model: await ensureTiny(), args: ["-p", "16", "-n", "64", "-r", "6"] },
    { name: "a3b-8L Q4_K_M mix (resident)", model: join(CACHE, "a3b-8L-mix-q4_k_m.gguf"), args: ["-p", "16", "-n", "32", "-r", "5"] },
    { name: "a3b Q4_K pack, cgroup 0.35x (streamed)", model: join(CACHE, "a3b-q4_k-real-like.moe"), args: ["-p", "8", "-n", "16", "-r", "3"], capBytes: Math.round(0.35 * 17.2e9) },
  ].filter((c) => !only || c.name.includes(only));
  for (const c of cases) {
    if (!existsSync(c.model)) {
      console.log(`${c.name}: ${c.model} missing (npm run bench -- cpu / stream generate it)`);
      continue;
    }
    let cg: MemCgroup | undefined;
    if (c.capBytes) {
      const made = createMemCgroup(`moestream-doctor-${process.pid}`, c.capBytes);
      if (typeof made === "string") {
        console.log(`${c.name}: no memory cgroup (${made}); skipped`);
        continue;
      }
      cg = made;
    }
    const load0 = loadavg()[0];
    try {
      const r = await runChild([process.execPath, "bin/moestream.cjs", "bench", "-m", c.model, ...c.args, "--forecast", "--json"], cg, 20 * 60_000, { UV_THREADPOOL_SIZE: "16" });
      const j = r.json as BenchJson | undefined;
      if (r.code !== 0 || !j) {
        console.log(`${c.name}: failed (exit ${r.code ?? r.signal}${cg?.oomKills() ? ", OOM-killed" : ""}): ${r.stderr.trim().split("\n").slice(-2).join(" | ")}`);
        continue;
      }
      const tg = j.tg.tokPerSec, fc = j.forecast.tg;
      const d = j.lastRun.experts.decode;
      console.log(`\n${c.name}: ${c.model}${cg ? ` in a ${(c.capBytes! / GiB).toFixed(2)} GiB cgroup` : ""}, experts ${j.expertIO}, load average ${load0.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`);
      console.log(`  run  measured tok/s  forecast tok/s (range)   measured/forecast  memory GB/s  disk GB/s`);
      tg.forEach((t, i) => console.log(`  ${String(i + 1).padStart(3)}  ${t.toFixed(2).padStart(14)}  ${`${fc[i].tokPerSec.toFixed(2)} (${fc[i].low.toFixed(2)}-${fc[i].high.toFixed(2)})`.padStart(22)}  ${(t / fc[i].tokPerSec).toFixed(2).padStart(17)}  ${fc[i].memGBps.toFixed(1).padStart(11)}  ${fc[i].diskGBps?.toFixed(2) ?? "-"}`));
      const ratio = median(tg.map((t, i) => t / fc[i].tokPerSec));
      console.log(`  median measured/forecast ${ratio.toFixed(2)} (${Math.abs(ratio - 1) <= 0.25 ? "within" : "outside"} +-25%)${d.hits + d.misses ? `; last run's decode hit rate ${((100 * d.hits) / (d.hits + d.misses)).toFixed(1)}%` : ""}${cg ? `; peak cgroup usage ${(cg.maxUsage() / GiB).toFixed(2)} GiB` : ""}`);
    } finally {
      cg?.remove();
    }
  }
}
