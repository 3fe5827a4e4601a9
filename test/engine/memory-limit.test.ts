// The memory budget from what the process may really use, probed from fake /proc and /sys trees: cgroup
// v1 and v2, nested (the tightest ancestor binds), unlimited, hybrid mounts, containers, missing files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cgroupLimit, memoryBudget, probeMemory, type ReadFile } from "../../src/engine/memory-limit.js";

const G = 2 ** 30, M = 2 ** 20;
/** A file tree as a map of absolute paths; everything else is missing. */
const tree = (files: Record<string, string>): ReadFile => (p) => (Object.hasOwn(files, p) ? files[p] : undefined);
const V1_UNLIMITED = "9223372036854771712\n";

// This machine's layout: v1 controllers, plus an empty v2 hierarchy at /sys/fs/cgroup/unified (hybrid).
const HYBRID_MOUNTS = [
  "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
  "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
  "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
].join("\n");
const V2_MOUNTS = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot";

test("cgroup v1 (hybrid mounts): the tightest limit from the process's cgroup up; 'unlimited' is the huge number", () => {
  const read = tree({
    "/proc/self/cgroup": "9:name=systemd:/\n8:pids:/\n4:memory:/jobs/a/b\n1:cpu:/\n0::/\n",
    "/proc/self/mountinfo": HYBRID_MOUNTS,
    "/sys/fs/cgroup/memory/jobs/a/b/memory.limit_in_bytes": V1_UNLIMITED,
    "/sys/fs/cgroup/memory/jobs/a/memory.limit_in_bytes": `${3 * G}\n`,
    "/sys/fs/cgroup/memory/jobs/memory.limit_in_bytes": `${8 * G}\n`,
    "/sys/fs/cgroup/memory/memory.limit_in_bytes": V1_UNLIMITED,
    // the unified hierarchy carries no memory controller here: no memory.max anywhere
  });
  assert.deepEqual(cgroupLimit(read), { bytes: 3 * G, file: "/sys/fs/cgroup/memory/jobs/a/memory.limit_in_bytes" });
  // Unlimited all the way up: no cgroup limit.
  const free = tree({
    "/proc/self/cgroup": "4:memory:/jobs/a\n0::/\n",
    "/proc/self/mountinfo": HYBRID_MOUNTS,
    "/sys/fs/cgroup/memory/jobs/a/memory.limit_in_bytes": V1_UNLIMITED,
    "/sys/fs/cgroup/memory/memory.limit_in_bytes": V1_UNLIMITED,
  });
  assert.equal(cgroupLimit(free), undefined);
});

test("cgroup v2: memory.max of the own cgroup or a nested ancestor, 'max' = none; a child tighter than its parent wins", () => {
  const files = {
    "/proc/self/cgroup": "0::/user.slice/user-0.slice/app.scope\n",
    "/proc/self/mountinfo": V2_MOUNTS,
    "/sys/fs/cgroup/user.slice/user-0.slice/app.scope/memory.max": "max\n",
    "/sys/fs/cgroup/user.slice/user-0.slice/memory.max": `${2 * G}\n`,
    "/sys/fs/cgroup/user.slice/memory.max": "max\n",
    // the root cgroup has no memory.max
  };
  assert.deepEqual(cgroupLimit(tree(files)), { bytes: 2 * G, file: "/sys/fs/cgroup/user.slice/user-0.slice/memory.max" });
  const tighter = { ...files, "/sys/fs/cgroup/user.slice/user-0.slice/app.scope/memory.max": `${512 * M}\n` };
  assert.deepEqual(cgroupLimit(tree(tighter)), { bytes: 512 * M, file: "/sys/fs/cgroup/user.slice/user-0.slice/app.scope/memory.max" });
});

test("containers: a cgroup namespace (path '/') reads the mount itself; without one the mount's root is stripped from the path", () => {
  // Docker, cgroup v2 with its own namespace: /proc/self/cgroup says "/", the container's cgroup is mounted at /sys/fs/cgroup.
  const ns = tree({ "/proc/self/cgroup": "0::/\n", "/proc/self/mountinfo": V2_MOUNTS, "/sys/fs/cgroup/memory.max": `${3 * G}\n` });
  assert.equal(cgroupLimit(ns)?.bytes, 3 * G);
  // Docker, cgroup v1 without a namespace: the mount's root is /docker/abc and so is the process's path.
  const v1 = tree({
    "/proc/self/cgroup": "12:memory:/docker/abc\n",
    "/proc/self/mountinfo": "700 690 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes": `${1 * G}\n`,
  });
  assert.equal(cgroupLimit(v1)?.bytes, 1 * G);
  // A path outside the mounted root (moved by the host): the mount's own limit still applies.
  const moved = tree({
    "/proc/self/cgroup": "12:memory:/elsewhere\n",
    "/proc/self/mountinfo": "700 690 0:31 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes": `${1 * G}\n`,
  });
  assert.equal(cgroupLimit(moved)?.bytes, 1 * G);
});

test("controllers joined on one v1 hierarchy, an escaped mount point, and the usual mounts when mountinfo is unreadable", () => {
  const joined = tree({
    "/proc/self/cgroup": "5:cpu,memory:/job\n",
    "/proc/self/mountinfo": "41 30 0:40 / /mnt/cg\\040mem rw - cgroup cgroup rw,cpu,memory",
    "/mnt/cg mem/job/memory.limit_in_bytes": `${700 * M}\n`,
  });
  assert.deepEqual(cgroupLimit(joined), { bytes: 700 * M, file: "/mnt/cg mem/job/memory.limit_in_bytes" });
  const noMountinfo = tree({ "/proc/self/cgroup": "0::/job\n", "/sys/fs/cgroup/job/memory.max": `${G}\n` });
  assert.equal(cgroupLimit(noMountinfo)?.bytes, G);
  // Not Linux (or /proc hidden): no cgroup, and garbage in a limit file is no limit.
  assert.equal(cgroupLimit(tree({})), undefined);
  const garbage = tree({ "/proc/self/cgroup": "0::/job\n", "/proc/self/mountinfo": V2_MOUNTS, "/sys/fs/cgroup/job/memory.max": "lots\n" });
  assert.equal(cgroupLimit(garbage), undefined);
});

test("available memory = MemAvailable + what the process holds (VmRSS); physical RAM only where /proc says nothing", () => {
  const read = tree({
    "/proc/meminfo": "MemTotal:       24683748 kB\nMemFree:        16653292 kB\nMemAvailable:   22000000 kB\n",
    "/proc/self/status": "Name:\tnode\nVmHWM:\t  120000 kB\nVmRSS:\t  100000 kB\n",
  });
  const p = probeMemory(read, 32 * G);
  assert.equal(p.available, (22_000_000 + 100_000) * 1024);
  assert.equal(p.cgroup, undefined);
  assert.deepEqual(probeMemory(tree({}), 32 * G), { cgroup: undefined, available: undefined, total: 32 * G });
});

test("the budget: the least of cgroup limit and available memory; --mem-budget wins unless a cgroup limit is below it", () => {
  const cg = { bytes: 3 * G, file: "/sys/fs/cgroup/memory/job/memory.limit_in_bytes" };
  assert.deepEqual(memoryBudget(0, { cgroup: cg, available: 21.3 * G, total: 24 * G }), { bytes: 3 * G, why: "cgroup limit 3.00 GiB" });
  assert.deepEqual(memoryBudget(0, { cgroup: { ...cg, bytes: 64 * G }, available: 21.3 * G, total: 24 * G }), { bytes: 21.3 * G, why: "available memory 21.3 GiB" });
  assert.deepEqual(memoryBudget(0, { available: 21.3 * G, total: 24 * G }), { bytes: 21.3 * G, why: "available memory 21.3 GiB" });
  assert.deepEqual(memoryBudget(0, { total: 24 * G }), { bytes: 24 * G, why: "physical RAM 24.0 GiB" });
  assert.deepEqual(memoryBudget(8 * G, { available: 4 * G, total: 24 * G }), { bytes: 8 * G, why: "--mem-budget 8.00 GiB" });
  assert.deepEqual(memoryBudget(8 * G, { cgroup: cg, available: 21 * G, total: 24 * G }), { bytes: 3 * G, why: "cgroup limit 3.00 GiB (below --mem-budget 8.00 GiB)" });
  assert.deepEqual(memoryBudget(2 * G, { cgroup: cg, available: 21 * G, total: 24 * G }), { bytes: 2 * G, why: "--mem-budget 2.00 GiB" });
});
