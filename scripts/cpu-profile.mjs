// Summarises a V8 .cpuprofile (node --cpu-prof) by self time: the top functions (name, file:line) and their share,
// with idle and GC apart. Usage: node scripts/cpu-profile.mjs FILE.cpuprofile [TOP=25] [LAST_MS] [SKIP_MS]
// LAST_MS keeps only the profile's last LAST_MS milliseconds (a bench's decode runs come last), SKIP_MS then drops
// the last SKIP_MS of those (the model's close).
import { readFileSync } from "node:fs";

const [file, topArg, lastArg, skipArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: node scripts/cpu-profile.mjs FILE.cpuprofile [TOP]");
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
// Each sample is one node for the interval until the next sample.
const self = new Map();
const at = [];
for (let i = 0, t = 0; i < p.samples.length; i++) at.push((t += p.timeDeltas[i] ?? 0));
const to = at[at.length - 1] - Number(skipArg ?? 0) * 1e3;
const from = lastArg ? to - Number(lastArg) * 1e3 : -Infinity;
for (let i = 0; i < p.samples.length; i++) {
  if (at[i] < from || at[i] > to) continue;
  const dt = p.timeDeltas[i + 1] ?? 0;
  self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
}
const byFn = new Map();
let total = 0;
for (const [id, us] of self) {
  const cf = byId.get(id).callFrame;
  const key = `${cf.functionName || "(anonymous)"} ${cf.url ? `${cf.url.split("/").slice(-2).join("/")}:${cf.lineNumber + 1}` : ""}`.trim();
  byFn.set(key, (byFn.get(key) ?? 0) + us);
  total += us;
}
const top = Number(topArg ?? 25);
console.log(`${file}: ${(total / 1e3).toFixed(0)} ms sampled`);
for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`${(us / 1e3).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
}
