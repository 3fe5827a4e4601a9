// Builds the native kernels addon (native/) with node-gyp at install. It never fails the install: without a
// compiler or Node headers moestream still runs on the scalar backend, so a failed build prints one notice
// (the full log goes to native/build/build.log) and exits 0.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, "native");
const log = join(dir, "build", "build.log");

/** node-gyp: the one npm hands to lifecycle scripts, else the copy bundled with npm. */
function findNodeGyp() {
  const npmDir = process.env.npm_execpath ? resolve(dirname(process.env.npm_execpath), "..") : undefined;
  const candidates = [
    process.env.npm_config_node_gyp,
    npmDir && join(npmDir, "node_modules/node-gyp/bin/node-gyp.js"),
    join(dirname(process.execPath), "../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"),
  ];
  return candidates.find((p) => p && existsSync(p));
}

function notice(reason) {
  console.log(`moestream: native kernels not built (${reason}); the scalar backend still works. Log: ${relative(process.cwd(), log)}`);
  process.exit(0);
}

mkdirSync(join(dir, "build"), { recursive: true });
const gyp = findNodeGyp();
if (!gyp) {
  writeFileSync(log, "node-gyp not found (neither npm_config_node_gyp nor npm's bundled copy)\n");
  notice("node-gyp not found");
}
// Use the running Node's own headers when they are installed beside it (no download needed).
const prefix = process.env.npm_config_nodedir || resolve(dirname(process.execPath), "..");
const args = [gyp, "rebuild", "--release", "-j", "max"];
if (existsSync(join(prefix, "include", "node", "node_api.h"))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: dir, encoding: "utf8", timeout: 600_000 });
writeFileSync(log, `$ node ${args.join(" ")}\n${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}\n`);
const built = join(dir, "build", "Release", "moestream_native.node");
if (r.status !== 0 || !existsSync(built)) {
  const err = `${r.stderr ?? ""}`.split("\n").find((l) => /error/i.test(l) && !/^gyp (info|ERR! (stack|cwd|node|System|command|not ok))/.test(l));
  notice(r.error ? String(r.error.message) : (err ?? `node-gyp exited with ${r.status}`).replace(/^gyp ERR! /, "").trim().slice(0, 160));
}
console.log(`moestream: built native kernels (${relative(root, built)})`);
