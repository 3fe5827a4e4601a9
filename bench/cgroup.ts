// Memory cgroup (v1) helpers: run a child process as if on a machine with less RAM. Page cache the
// child faults in is charged to its cgroup, so mmap and buffered reads compete with its heap.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const V1_MEMORY = "/sys/fs/cgroup/memory";

/** This process's memory cgroup directory, or undefined when v1 memory cgroups are not mounted. */
export function ownMemoryCgroup(): string | undefined {
  if (!existsSync(V1_MEMORY)) return undefined;
  const line = readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => l.split(":")[1]?.split(",").includes("memory"));
  return line === undefined ? undefined : join(V1_MEMORY, line.split(":").slice(2).join(":"));
}

export interface MemCgroup {
  dir: string;
  limitBytes: number;
  /** Peak usage (heap + page cache) since creation. */
  maxUsage(): number;
  /** Processes the OOM killer ended in this cgroup. */
  oomKills(): number;
  remove(): void;
}

/** A fresh child cgroup with the given limit, or the reason it cannot be made. */
export function createMemCgroup(name: string, limitBytes: number): MemCgroup | string {
  const parent = ownMemoryCgroup();
  if (!parent) return "no cgroup v1 memory controller mounted";
  const dir = join(parent, name);
  try {
    if (existsSync(dir)) rmdirSync(dir);
    mkdirSync(dir);
    writeFileSync(join(dir, "memory.limit_in_bytes"), String(limitBytes));
  } catch (e) {
    return `cannot create ${dir}: ${(e as Error).message}`;
  }
  const num = (f: string) => Number(readFileSync(join(dir, f), "utf8").trim());
  return {
    dir, limitBytes,
    maxUsage: () => num("memory.max_usage_in_bytes"),
    oomKills: () => Number(/oom_kill (\d+)/.exec(readFileSync(join(dir, "memory.oom_control"), "utf8"))?.[1] ?? 0),
    remove() {
      try {
        writeFileSync(join(dir, "memory.force_empty"), "0"); // uncharge cached pages so rmdir does not stall
      } catch { /* best effort */ }
      try {
        rmdirSync(dir);
      } catch { /* a straggler still inside: leave it */ }
    },
  };
}

/** Flush dirty pages and drop the whole machine's page cache (root); false if not permitted. */
export function dropCaches(): boolean {
  try {
    execFileSync("sync");
    writeFileSync("/proc/sys/vm/drop_caches", "3");
    return true;
  } catch {
    return false;
  }
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last stdout line that parsed as JSON. */
  json: unknown;
  stderr: string;
  wallMs: number;
}

/**
 * Run `argv` (argv[0] is the program); when `cg` is given the child joins it before exec, so every byte it
 * allocates or faults in is charged there. Killed after `timeoutMs`. `env` is added to this process's environment.
 */
export function runChild(argv: string[], cg: MemCgroup | undefined, timeoutMs: number, env: Record<string, string> = {}): Promise<ChildResult> {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = cg ? `echo $$ > ${q(join(cg.dir, "cgroup.procs"))} && exec ${argv.map(q).join(" ")}` : `exec ${argv.map(q).join(" ")}`;
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn("sh", ["-c", cmd], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      let json: unknown;
      for (const line of out.trim().split("\n").reverse()) {
        try {
          json = JSON.parse(line);
          break;
        } catch { /* not the result line */ }
      }
      resolve({ code, signal, json, stderr: err, wallMs: performance.now() - t0 });
    });
  });
}
