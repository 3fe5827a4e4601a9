// npm run bench -- tier: where a GPU tier's expert lookups land on real routing (../shared/traces), replayed
// through the engine's own DeviceTier (and, split, its HostSide admission) with the records and device slots faked:
// no weights, no GPU. At tiers of 12.5%, 25% and 50% of all experts, per decode token:
// - upload (`--gpu-misses upload`, the default): device hits %, and uploads a token (each a whole record over PCIe);
// - split (`--gpu-misses cpu`): lookups on the GPU %, uploads a token (admissions), lookups run on the CPU a token;
// - layers: llama.cpp's --n-cpu-moe at the same share, whole layers on the GPU (the first ones; lookups there %).
// The CPU's work a token is what bounds the split tier (and llama.cpp -ncmoe) where the GPU is fast.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Backend, WeightDesc } from "../src/backends/backend.js";
import { ADMIT_RATIO, DeviceTier, type DeviceSlots } from "../src/experts/device-tier.js";
import { parsePolicySpec, policyByName, RECOMMENDED_POLICY } from "../src/experts/policies.js";
import { policyContext } from "../src/experts/replay.js";
import type { StreamingExperts } from "../src/experts/streaming-source.js";
import { expertLayers, readTrace, type Trace } from "../src/experts/trace.js";
import { REAL_LIKE } from "../src/gen/weights.js";
import { printTable, TRACES_DIR } from "./replay.js";
import { syntheticTrace } from "./replay-synthetic.js";

export const SHARES = [0.125, 0.25, 0.5];

export interface TierReplay {
  /** Decode lookups (distinct experts of a layer's routing), and of them: */
  lookups: number;
  device: number;
  uploads: number;
  host: number;
  tokens: number;
}

/** The host cache and device slots a DeviceTier needs, holding nothing: records are empty, views are their descriptions. */
function fakes(trace: Trace, slots: number): { host: StreamingExperts; dev: DeviceSlots } {
  const m = trace.header.model, layers = expertLayers(m);
  const reader = { layers, expertCount: () => m.nExpert, parts: () => [], recordBytes: (l: number) => m.recordBytes[l] };
  const none = new Uint8Array(0);
  const host = { reader, capacity: m.nExpert * layers.length, prefetchDepth: 0, acquireRecords: async (_l: number, ids: readonly number[]) => ids.map(() => none), withRecord: async (_l: number, _e: number, use: (r: Uint8Array) => unknown) => use(none), release: () => undefined, prefetch: () => undefined };
  const dev: DeviceSlots = { nSlots: slots, slotBytes: Math.max(...m.recordBytes), write: () => undefined, view: (_s: number, d: WeightDesc) => d, uploadStats: { uploads: 0, bytes: 0, ms: 0 }, free: () => undefined };
  return { host: host as unknown as StreamingExperts, dev };
}

/** The trace's calls through a tier of `slots` with the recommended policy; split: its HostSide decides (a stand-in host backend that never runs). */
export async function replayTier(trace: Trace, slots: number, split: boolean, admitRatio?: number): Promise<TierReplay> {
  const m = trace.header.model;
  const { host, dev } = fakes(trace, slots);
  const spec = parsePolicySpec(RECOMMENDED_POLICY);
  const tier = new DeviceTier(host, dev, policyByName(spec.name, spec.params, policyContext(trace)), { minExperts: m.k, hostBackend: split ? ({} as Backend) : undefined, admitRatio });
  const out: TierReplay = { lookups: 0, device: 0, uploads: 0, host: 0, tokens: 0 };
  for (const call of trace.calls) {
    const decode = call.phase === "decode";
    if (decode) out.tokens += call.nTokens;
    for (const [layer, ids] of call.routes.entries()) {
      if (!ids?.length) continue;
      const all = [...ids];
      const s0 = { ...tier.stats };
      const onDevice = tier.host ? tier.host.split(layer, all).device : [...new Set(all)];
      if (onDevice.length) {
        await tier.acquire(layer, onDevice);
        tier.release(layer, onDevice);
      }
      await tier.host?.admitQueued?.(); // as the next layer's read does: admitted experts go up during its wait
      if (!decode) continue;
      const d = (k: keyof typeof s0) => tier.stats[k] - s0[k];
      out.lookups += new Set(all).size;
      out.device += d("hits") + d("misses");
      out.uploads += d("misses") + d("admits");
      out.host += d("hostRuns");
    }
  }
  return out;
}

/** llama.cpp -ncmoe at a share of the expert bytes: the first floor(share x layers) expert layers on the GPU; their share of the decode lookups. */
export function layerSplit(trace: Trace, share: number): number {
  const layers = expertLayers(trace.header.model), gpu = new Set(layers.slice(0, Math.floor(share * layers.length)));
  let all = 0, on = 0;
  for (const call of trace.calls) {
    if (call.phase !== "decode") continue;
    for (const [layer, ids] of call.routes.entries()) {
      if (!ids?.length) continue;
      const n = new Set(ids).size;
      all += n;
      if (gpu.has(layer)) on += n;
    }
  }
  return on / all;
}

export async function benchReplayTier(): Promise<void> {
  const sources: { name: string; trace: () => Promise<Trace> }[] = existsSync(TRACES_DIR)
    ? readdirSync(TRACES_DIR).filter((f) => f.endsWith(".jsonl")).sort().map((f) => ({ name: f.replace(/\.jsonl$/, ""), trace: async () => readTrace(join(TRACES_DIR, f)) }))
    : [];
  if (!sources.length) console.log(`no traces: ${TRACES_DIR} is absent (the real routing traces live outside the repository); generated routing only`);
  sources.push({ name: "generated real-like seed 1", trace: async () => (await syntheticTrace(1, REAL_LIKE)).trace });
  console.log(`a GPU tier of a share of all experts, replayed through DeviceTier (policy ${RECOMMENDED_POLICY}); figures per decode token`);
  console.log("upload: every miss goes up (--gpu-misses upload); split: misses run on the CPU unless admitted (--gpu-misses cpu);");
  console.log("layers: llama.cpp --n-cpu-moe, the first layers' experts on the GPU. gpu %: decode lookups served on the GPU");
  const rows: string[][] = [["routing", "tier", "slots", "lookups/tok", "upload gpu %", "uploads/tok", "split gpu %", "uploads/tok", "cpu runs/tok", "layers gpu %", "cpu runs/tok"]];
  // Admission's bar (DeviceTierOptions.admitRatio): an upload costs some CPU runs of the record (PCIe vs the CPU's
  // memory bandwidth), so a stricter bar trades uploads for CPU runs; which wins depends on the machine.
  const ratios = [...new Set([ADMIT_RATIO, 1, 2, 4, 8, 16, Infinity])].sort((x, y) => x - y);
  const adm: string[][] = [["routing", "tier", ...ratios.map((r) => `r ${r === Infinity ? "inf" : r}`)]];
  for (const src of sources) {
    const trace = await src.trace();
    const m = trace.header.model, all = expertLayers(m).length * m.nExpert;
    for (const share of SHARES) {
      const slots = Math.max(m.k, Math.round(share * all));
      const up = await replayTier(trace, slots, false);
      const byRatio = new Map<number, TierReplay>();
      for (const r of ratios) byRatio.set(r, await replayTier(trace, slots, true, r));
      const sp = byRatio.get(ADMIT_RATIO)!;
      const per = (n: number, r: TierReplay) => (n / r.tokens).toFixed(1), pct = (n: number, d: number) => ((100 * n) / d).toFixed(1);
      const ls = layerSplit(trace, share), perTok = up.lookups / up.tokens;
      rows.push([src.name, `${100 * share}%`, String(slots), perTok.toFixed(1), pct(up.device - up.uploads, up.lookups), per(up.uploads, up), pct(sp.device, sp.lookups), per(sp.uploads, sp), per(sp.host, sp), (100 * ls).toFixed(1), (perTok * (1 - ls)).toFixed(1)]);
      adm.push([src.name, `${100 * share}%`, ...ratios.map((r) => `${per(byRatio.get(r)!.uploads, byRatio.get(r)!)} / ${per(byRatio.get(r)!.host, byRatio.get(r)!)}`)]);
    }
  }
  printTable(rows, 2);
  console.log(`\nsplit, admission over a victim at r x its lookups (default ${ADMIT_RATIO}): uploads / cpu runs a decode token; 'inf': only free slots fill`);
  printTable(adm, 2);
}
