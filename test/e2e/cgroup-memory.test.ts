// In a memory cgroup smaller than the model, `run` and `serve` with no flags take their budget from the
// cgroup's limit, stream the experts and finish with a peak RSS under it (on physical RAM they would load
// every expert and be OOM-killed). The test makes a cgroup when it can (root, cgroup v1 or v2) and says
// why when it cannot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ownCgroupDirs } from "../../src/engine/memory-limit.js";
import { testModel } from "../helpers/models.js";

const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "moestream.cjs");
const PEAK = join(ROOT, "test", "helpers", "peak-rss.cjs");
const MiB = 2 ** 20;
const LIMIT = 512 * MiB;
// Only the flags given below: no budget or expert options from the caller's environment.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MOESTREAM_")));

interface TestCgroup {
  dir: string;
  procs: string;
  /** OOM kills inside the cgroup so far, where the kernel reports them. */
  oomKills(): number | undefined;
  remove(): void;
}

const tryWrite = (file: string, text: string) => {
  try {
    writeFileSync(file, text);
    return true;
  } catch {
    return false;
  }
};

/** A fresh memory cgroup of `limit` bytes (no swap where that can be said), or why none can be made here. */
function makeCgroup(limit: number): TestCgroup | string {
  if (process.platform !== "linux") return `not Linux (${process.platform}): no cgroups`;
  if (process.getuid?.() !== 0) return `not root (uid ${process.getuid?.()}): creating a memory cgroup needs root`;
  const name = `moestream-test-${process.pid}`;
  const tried: string[] = [];
  for (const own of ownCgroupDirs()) {
    // v1: nest under our own memory cgroup (its limits bind too). v2: a cgroup with processes cannot hand
    // controllers to children, so make it at the hierarchy's (namespace's) root.
    const parent = own.v2 ? own.mountPoint : own.dir;
    const dir = join(parent, name);
    try {
      if (own.v2) {
        const ctl = join(parent, "cgroup.subtree_control");
        if (!/\bmemory\b/.test(readFileSync(ctl, "utf8")) && !tryWrite(ctl, "+memory")) {
          tried.push(`v2 ${parent}: the memory controller is not enabled for children and cannot be`);
          continue;
        }
      }
      mkdirSync(dir);
    } catch (e) {
      tried.push(`${own.v2 ? "v2" : "v1"} ${parent}: ${(e as Error).message}`);
      continue;
    }
    const limitFile = join(dir, own.v2 ? "memory.max" : "memory.limit_in_bytes");
    if (!tryWrite(limitFile, String(limit))) {
      rmdirSync(dir);
      tried.push(`${limitFile}: not writable`);
      continue;
    }
    // Swap would hide an overrun as paging instead of an OOM kill.
    if (own.v2) tryWrite(join(dir, "memory.swap.max"), "0");
    else tryWrite(join(dir, "memory.memsw.limit_in_bytes"), String(limit));
    const events = join(dir, own.v2 ? "memory.events" : "memory.oom_control");
    return {
      dir,
      procs: join(dir, "cgroup.procs"),
      oomKills: () => {
        const m = existsSync(events) ? /^oom_kill (\d+)$/m.exec(readFileSync(events, "utf8")) : null;
        return m ? Number(m[1]) : undefined;
      },
      remove: () => rmdirSync(dir),
    };
  }
  return `no memory cgroup could be made: ${tried.join("; ") || "no cgroup v1 memory controller or v2 hierarchy found"}`;
}

/** The CLI started inside the cgroup: the shell joins it, then becomes node (so every byte is charged there). */
function spawnIn(cg: TestCgroup, args: string[]) {
  return spawn("sh", ["-c", 'echo $$ > "$1" && shift && exec "$@"', "sh", cg.procs, process.execPath, "--require", PEAK, BIN, ...args], { env });
}

function collect(child: ReturnType<typeof spawn>) {
  let out = "", err = "";
  child.stdout!.on("data", (c: Buffer) => (out += c));
  child.stderr!.on("data", (c: Buffer) => (err += c));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  return { exit, out: () => out, err: () => err };
}

const peakOf = (stderr: string) => Number(/^peak-rss-bytes (\d+)$/m.exec(stderr)?.[1]);

test("in a 512 MiB memory cgroup, `run` and `serve` on a 660 MiB model with no flags stream from the cgroup limit, finish, and peak under it", async (t) => {
  const cg = makeCgroup(LIMIT);
  if (typeof cg === "string") {
    t.diagnostic(`cgroup test not run: ${cg}`);
    t.skip(cg);
    return;
  }
  t.after(() => cg.remove());
  // Tiny widths but many wide experts: 8 layers x 64 experts x 1.25 MiB = 612 MiB of experts, 40 MiB dense.
  const model = await testModel({ type: "Q8_0", seed: 1, expertSynthesis: "direct", hp: { nExpert: 64, nFfExp: 1536, nLayer: 8 } });
  const prompt = "Once upon a time";
  // The reference: every expert resident, outside the cgroup.
  const ref = spawnSync(process.execPath, [BIN, "run", "-m", model, "-p", prompt, "-n", "16", "--temp", "0", "--expert-io", "resident"], { encoding: "utf8", env });
  assert.equal(ref.status, 0, ref.stderr);

  const run = collect(spawnIn(cg, ["run", "-m", model, "-p", prompt, "-n", "16", "--temp", "0"]));
  const r = await run.exit;
  assert.deepEqual(r, { code: 0, signal: null }, `run in the cgroup: ${run.err()}`);
  assert.match(run.err(), /experts streamed from disk \(experts 612 MiB > 0\.75 x cgroup limit 512 MiB\)/);
  assert.equal(run.out(), ref.stdout, "streaming in the cgroup changes no token");
  const runPeak = peakOf(run.err());
  t.diagnostic(`run: peak RSS ${(runPeak / MiB).toFixed(0)} MiB in a ${LIMIT / MiB} MiB cgroup`);
  assert.ok(runPeak > 0 && runPeak < LIMIT, `run's peak RSS ${runPeak} is under the limit ${LIMIT}`);

  const srv = spawnIn(cg, ["serve", "-m", model, "--port", "0", "--temp", "0"]);
  const served = collect(srv);
  const port = await new Promise<number>((resolve, reject) => {
    srv.stdout!.on("data", () => {
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(served.out());
      if (m) resolve(Number(m[1]));
    });
    srv.on("close", () => reject(new Error(`serve exited before listening: ${served.err()}`)));
  });
  const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: basename(model, ".gguf"), prompt, max_tokens: 16, temperature: 0 }),
  });
  const body = (await res.json()) as { choices: { text: string }[] };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.choices[0].text, ref.stdout.replace(/\n$/, ""), "serve's greedy text is run's");
  srv.kill("SIGTERM");
  assert.deepEqual(await served.exit, { code: 0, signal: null }, `serve in the cgroup: ${served.err()}`);
  assert.match(served.err(), /cgroup limit 512 MiB/);
  const servePeak = peakOf(served.err());
  t.diagnostic(`serve: peak RSS ${(servePeak / MiB).toFixed(0)} MiB in a ${LIMIT / MiB} MiB cgroup`);
  assert.ok(servePeak > 0 && servePeak < LIMIT, `serve's peak RSS ${servePeak} is under the limit ${LIMIT}`);
  const kills = cg.oomKills();
  if (kills !== undefined) assert.equal(kills, 0, "no OOM kill in the cgroup");
});
