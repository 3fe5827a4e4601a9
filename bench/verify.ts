// npm run bench -- verify: what the default integrity checks cost, on a3b-8L Q4_K packed (2.5 MiB records).
// 1. crc32c throughput: the addon's CRC instructions vs the JS fallback, a record and 64 MiB (best window).
// 2. Resident load (every record and dense tensor checked) and streamed decode (expert cache a third of the
//    experts, prefetch on) with the checks on vs off: each run in its own child, on and off alternated (on
//    first in even pairs); medians, the per-pair ratio, and CPU time, which the machine's load disturbs less.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadNativeAddon } from "../src/backends/cpu/native-addon.js";
import { defaultEngineConfig } from "../src/engine/config.js";
import { loadModel } from "../src/engine/load.js";
import { packModel } from "../src/engine/pack.js";
import { Session } from "../src/engine/session.js";
import { crc32c } from "../src/util/crc32c.js";
import { benchModel } from "./models.js";
import { timeIt } from "./timing.js";

const PAIRS = 8;
const DECODE = 64;
const PROMPT = "The history of the Roman Empire spans many centuries, from the founding of the city on the banks of the Tiber";

interface Spec { pack: string; on: boolean; mode: "resident" | "stream"; cacheBytes: number }
interface Out { loadMs: number; loadCpuMs: number; tps?: number; cpuMsPerTok?: number; mibPerTok?: number }

/** One child: load (and for stream, decode DECODE tokens after a short prompt). */
async function child(s: Spec): Promise<Out> {
  const c0 = process.cpuUsage(), t0 = performance.now();
  const lm = await loadModel(s.pack, defaultEngineConfig({
    ctxSize: 512, expertIo: s.mode, expertCache: s.mode === "stream" ? s.cacheBytes : 0, ioDepth: 16, verifyExperts: s.on, verifyDense: s.on,
  }));
  await lm.experts.prepare();
  const loadMs = performance.now() - t0, c = process.cpuUsage(c0);
  const out: Out = { loadMs, loadCpuMs: (c.user + c.system) / 1000 };
  try {
    if (s.mode === "resident") return out;
    const io = () => lm.experts.io.stats.demandBytes + lm.experts.io.stats.speculativeBytes;
    const sess = new Session(lm);
    let k = 0, t1 = 0, c1 = c0, b1 = 0;
    for await (const _ of sess.generate(lm.tokenizer.encode(PROMPT), { maxTokens: DECODE + 1, sampling: { temperature: 0 }, stopAtEog: false })) {
      if (k++ === 0) [t1, c1, b1] = [performance.now(), process.cpuUsage(), io()];
    }
    const cd = process.cpuUsage(c1);
    return { ...out, tps: (DECODE * 1000) / (performance.now() - t1), cpuMsPerTok: (cd.user + cd.system) / 1000 / DECODE, mibPerTok: (io() - b1) / 2 ** 20 / DECODE };
  } finally {
    await lm.close();
  }
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const f = (x: number, d = 1) => x.toFixed(d);

function throughput(): void {
  const a = loadNativeAddon();
  for (const n of [2654208, 64 << 20]) {
    const buf = new Uint8Array(n).map((_, i) => (i * 2654435761) >>> 24);
    const gbs = (s: number) => f(n / s / 1e9, 2);
    const js = timeIt(() => crc32c(buf), 1);
    const native = a ? gbs(timeIt(() => a.crc32c(buf), 2)) : "n/a (addon not built)";
    console.log(`crc32c of ${f(n / 2 ** 20, 2)} MiB: native (${a?.crc32cImpl() ?? "-"}) ${native} GB/s, JS ${gbs(js)} GB/s`);
  }
}

export async function benchVerify(): Promise<void> {
  throughput();
  const gguf = await benchModel({ preset: "a3b-8L", type: "Q4_K", seed: 1, routing: { kind: "realistic", skew: 1, locality: 0.5 } }, "a3b-8L-q4_k.gguf");
  const pack = join(".cache", "bench", "a3b-8L-q4_k.moe");
  if (!existsSync(pack)) await packModel(gguf, pack);
  const runs: Record<string, Record<"on" | "off", Out[]>> = { resident: { on: [], off: [] }, stream: { on: [], off: [] } };
  for (const mode of ["resident", "stream"] as const) {
    for (let p = 0; p < PAIRS; p++) {
      for (const on of p % 2 ? [false, true] : [true, false]) {
        const spec: Spec = { pack, on, mode, cacheBytes: 900 * 2 ** 20 };
        const line = execFileSync(process.execPath, ["--import", "tsx", "bench/verify.ts", "child", JSON.stringify(spec)], { encoding: "utf8", env: { ...process.env, UV_THREADPOOL_SIZE: "16" } });
        runs[mode][on ? "on" : "off"].push(JSON.parse(line.trim().split("\n").at(-1)!) as Out);
      }
    }
    const { on, off } = runs[mode];
    const ratio = (g: (o: Out) => number) => on.map((o, i) => g(o) / g(off[i]));
    if (mode === "resident") {
      console.log(`resident load, checks on vs off (${PAIRS} pairs): median ${f(med(on.map((o) => o.loadMs)), 0)} vs ${f(med(off.map((o) => o.loadMs)), 0)} ms ` +
        `(per-pair on/off median ${f(med(ratio((o) => o.loadMs)), 3)}), CPU ${f(med(on.map((o) => o.loadCpuMs)), 0)} vs ${f(med(off.map((o) => o.loadCpuMs)), 0)} ms`);
    } else {
      console.log(`streamed decode, 900 MiB cache, checks on vs off (${PAIRS} pairs of ${DECODE} tokens): median ${f(med(on.map((o) => o.tps!)), 2)} vs ${f(med(off.map((o) => o.tps!)), 2)} tok/s ` +
        `(per-pair on/off median ${f(med(ratio((o) => o.tps!)), 3)}), CPU ${f(med(on.map((o) => o.cpuMsPerTok!)), 2)} vs ${f(med(off.map((o) => o.cpuMsPerTok!)), 2)} ms/token, ` +
        `${f(med(on.map((o) => o.mibPerTok!)))} MiB read per token`);
    }
  }
}

// Child entry: `node --import tsx bench/verify.ts child <spec json>` prints one JSON line.
if (import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === "child") {
  console.log(JSON.stringify(await child(JSON.parse(process.argv[3]) as Spec)));
}
