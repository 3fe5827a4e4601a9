// The GPU's SM clock through each variant of bench gpu --split (clock.sh): its rounds' start times (pad.json's
// splitOverlap.at.<variant>, epoch ms) against nvidia-smi's samples (pad-smi.csv: timestamp, clocks.sm, util, W).
// Usage: node clock-by-variant.mjs pad.json pad-smi.csv. A round is its 8 tokens: from its start to the next round's.
import { readFileSync } from "node:fs";

const [json, csv] = process.argv.slice(2);
const { ms, at } = JSON.parse(readFileSync(json, "utf8")).splitOverlap;
const samples = readFileSync(csv, "utf8").split("\n").flatMap((l) => {
  const [ts, mhz, util, w] = l.split(", ");
  const t = Date.parse(`${ts?.replace(/\//g, "-").replace(" ", "T")}Z`);
  return Number.isFinite(t) ? [{ t, mhz: parseFloat(mhz), util: parseFloat(util), w: parseFloat(w) }] : [];
});
const starts = Object.entries(at).flatMap(([k, ts]) => ts.map((t, i) => ({ k, t, i })));
starts.sort((a, b) => a.t - b.t);
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : NaN; };
const by = {};
for (const [j, s] of starts.entries()) {
  const end = starts[j + 1]?.t ?? s.t + 8 * ms[s.k][s.i];
  const in_ = samples.filter((x) => x.t >= s.t && x.t < end);
  (by[s.k] ??= []).push(...in_);
  console.log(`${s.k.padEnd(14)} round ${s.i + 1}: ${ms[s.k][s.i].toFixed(2)} ms a token; sm ${in_.map((x) => x.mhz).join(" ") || "(no sample)"} MHz; util ${in_.map((x) => x.util).join(" ")}%`);
}
for (const [k, v] of Object.entries(by)) console.log(`${k.padEnd(14)} all rounds: sm median ${med(v.map((x) => x.mhz))} MHz over ${v.length} samples, util median ${med(v.map((x) => x.util))}%, ${med(v.map((x) => x.w))} W; ms a token median ${med(ms[k]).toFixed(2)}`);
