// The memory this process may really use: the limit of its own cgroup (v2 memory.max, v1
// memory.limit_in_bytes; the tightest on the way up to the hierarchy's root) and the machine's available
// memory, not its physical RAM. Probing takes a file reader, so tests feed it fake /proc and /sys trees.
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { formatBytes } from "../util/bytes.js";

/** A file's text, or undefined when it is missing or unreadable. */
export type ReadFile = (path: string) => string | undefined;

export const readSystemFile: ReadFile = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

/** What the probe found; each figure is absent where the machine does not say. */
export interface MemoryProbe {
  /** The tightest memory limit among the process's cgroup and its ancestors, and the file that set it. */
  cgroup?: { bytes: number; file: string };
  /** /proc/meminfo MemAvailable plus what this process holds already (VmRSS): what it may grow to. */
  available?: number;
  /** Physical RAM: the figure of last resort where neither of the above exists (not Linux). */
  total: number;
}

/** The budget and the limit that set it, as the decision line names it ("cgroup limit 3.00 GiB"). */
export interface MemoryBudget {
  bytes: number;
  why: string;
}

/** v1 writes "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages): anything this large is none. */
const UNLIMITED = 2 ** 62;

interface CgroupMount {
  /** The hierarchy's path that is mounted (not "/" inside some containers without a cgroup namespace). */
  root: string;
  point: string;
  v2: boolean;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Cgroup mounts from /proc/self/mountinfo: v2 hierarchies, and v1 ones carrying the memory controller. */
function cgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-", 6);
    if (dash < 0 || f.length < dash + 4) continue;
    const fstype = f[dash + 1];
    const superOpts = f[dash + 3].split(",");
    if (fstype === "cgroup2") out.push({ root: unescape(f[3]), point: unescape(f[4]), v2: true });
    else if (fstype === "cgroup" && superOpts.includes("memory")) out.push({ root: unescape(f[3]), point: unescape(f[4]), v2: false });
  }
  return out;
}

/** Where systemd and most distributions mount them, for when mountinfo cannot be read. */
const DEFAULT_MOUNTS: CgroupMount[] = [
  { root: "/", point: "/sys/fs/cgroup", v2: true },
  { root: "/", point: "/sys/fs/cgroup/memory", v2: false },
];

function parseLimit(text: string | undefined, v2: boolean): number | undefined {
  const s = text?.trim();
  if (!s || (v2 && s === "max")) return undefined;
  const n = Number(s);
  return Number.isFinite(n) && n >= 0 && n < UNLIMITED ? n : undefined;
}

/** The directory of a cgroup path under a mount, or the mount itself where the path lies outside its root. */
function cgroupDir(m: CgroupMount, path: string): string {
  const root = m.root.replace(/\/+$/, "");
  if (path !== root && !path.startsWith(`${root}/`)) return m.point;
  const rel = path.slice(root.length).replace(/^\/+/, "");
  return rel ? `${m.point.replace(/\/+$/, "")}/${rel}` : m.point;
}

/** The process's own cgroup directories that can carry a memory limit: v1 memory controller, v2 unified. */
export interface CgroupDir {
  dir: string;
  /** Where its hierarchy is mounted: the walk up for ancestors' limits stops here. */
  mountPoint: string;
  v2: boolean;
}

export function ownCgroupDirs(read: ReadFile = readSystemFile): CgroupDir[] {
  const own = read("/proc/self/cgroup");
  if (!own) return [];
  const mountinfo = read("/proc/self/mountinfo");
  const mounts = mountinfo === undefined ? DEFAULT_MOUNTS : cgroupMounts(mountinfo);
  const out: CgroupDir[] = [];
  for (const line of own.split("\n")) {
    // "hierarchy-id:controllers:path"; the path may itself contain ':'.
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const v2 = m[1] === "0" && m[2] === "";
    if (!v2 && !m[2].split(",").includes("memory")) continue;
    for (const mount of mounts) if (mount.v2 === v2) out.push({ dir: cgroupDir(mount, m[3]), mountPoint: mount.point, v2 });
  }
  return out;
}

/** The tightest memory limit over the process's cgroups and their ancestors (a parent's limit binds its children too). */
export function cgroupLimit(read: ReadFile = readSystemFile): { bytes: number; file: string } | undefined {
  let best: { bytes: number; file: string } | undefined;
  for (const { dir, mountPoint, v2 } of ownCgroupDirs(read)) {
    const name = v2 ? "memory.max" : "memory.limit_in_bytes";
    const top = mountPoint.replace(/\/+$/, "");
    for (let d = dir.replace(/\/+$/, ""); d.length >= top.length; d = d.slice(0, d.lastIndexOf("/"))) {
      const file = `${d}/${name}`;
      const bytes = parseLimit(read(file), v2);
      if (bytes !== undefined && (!best || bytes < best.bytes)) best = { bytes, file };
      if (d.length === top.length) break;
    }
  }
  return best;
}

/** A "Key:   123 kB" field of /proc/meminfo or /proc/self/status, in bytes. */
function kbField(text: string | undefined, key: string): number | undefined {
  const m = text && new RegExp(`^${key}:\\s*(\\d+)\\s*kB`, "m").exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

export function probeMemory(read: ReadFile = readSystemFile, total = totalmem()): MemoryProbe {
  const avail = kbField(read("/proc/meminfo"), "MemAvailable");
  // MemAvailable leaves out what this process holds already (the runtime, the tokenizer): it may keep that too.
  const available = avail === undefined ? undefined : avail + (kbField(read("/proc/self/status"), "VmRSS") ?? 0);
  return { cgroup: cgroupLimit(read), available, total };
}

const gib = formatBytes;

/**
 * The memory budget: --mem-budget when given (a cgroup limit below it still binds: past it the kernel kills
 * the process), else the least of the cgroup limit and the available memory (physical RAM where the
 * machine does not report what is available).
 */
export function memoryBudget(flag: number, probe: MemoryProbe = probeMemory()): MemoryBudget {
  const cg = probe.cgroup;
  if (flag > 0) {
    if (cg && cg.bytes < flag) return { bytes: cg.bytes, why: `cgroup limit ${gib(cg.bytes)} (below --mem-budget ${gib(flag)})` };
    return { bytes: flag, why: `--mem-budget ${gib(flag)}` };
  }
  const machine: MemoryBudget = probe.available !== undefined ? { bytes: probe.available, why: `available memory ${gib(probe.available)}` } : { bytes: probe.total, why: `physical RAM ${gib(probe.total)}` };
  if (cg && cg.bytes <= machine.bytes) return { bytes: cg.bytes, why: `cgroup limit ${gib(cg.bytes)}` };
  return machine;
}
