// The split GPU tier (--gpu-misses cpu) on lavapipe: a tiny peaked qwen3moe whose GPU tier holds a layer's top-k or
// half the experts, the rest running on the native CPU backend. References: the same model all on the GPU and all
// on the CPU (the host experts' kernels round activations to 8 bits, as the CPU backend does, so the logits sit
// between the two within a stated tolerance and the greedy tokens equal both). Counters: each routed expert is
// one lookup, on the device (a hit, or a miss uploaded) or run on the host; uploads = device misses and admissions
// (an admitted expert ran on the host, then went up during a read's wait); a decode token admits at most one
// expert a layer over a victim, and some are admitted in this run. Two runs give the same bits, and so do a host cache
// streaming from disk and the GPU's idle windows padded (--gpu-keep-busy).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/config.js";
import { argmax } from "../helpers/greedy.js";
import { nmse, sameBits } from "../helpers/numeric.js";
import { smallVocabModel } from "../helpers/models.js";
import { gpuDevice } from "../helpers/webgpu.js";
import { repacks } from "../helpers/parity.js";
import { loadNativeAddon } from "../../src/backends/cpu/native-addon.js";
import { WebGpuBackend } from "../../src/backends/webgpu/webgpu.js";

const PROMPT = "The quick brown fox jumps";
const STEPS = 6;

/** A layer's routed ids as `layer:ids`, each token's k ids sorted (the device routing orders them by weight). */
function routeKey(layer: number, ids: ArrayLike<number>, k: number): string {
  const out: number[] = [];
  for (let t = 0; t < ids.length; t += k) out.push(...Array.from(ids).slice(t, t + k).sort((a, b) => a - b));
  return `${layer}:${out.join(",")}`;
}

/** `hookRoutes`: the routing of every step through the onRoute hook (the host routes then: the reference's ids). */
async function run(path: string, cfg: Partial<EngineConfig>, hookRoutes = false) {
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 32, prefetch: false, expertIo: "resident", ...cfg }));
  const k = lm.model.info.nExpertUsed;
  const routes: string[][] = [];
  const hooks = hookRoutes ? { onRoute: (layer: number, r: { ids: ArrayLike<number> }) => routes.at(-1)!.push(routeKey(layer, r.ids, k)) } : undefined;
  try {
    const tier = lm.gpuExperts;
    const g0 = tier && { ...tier.stats }, u0 = tier && { ...tier.slots.uploadStats };
    let lookups = 0, disowned = 0;
    const split = tier?.host;
    if (split) {
      const f = split.split.bind(split);
      split.split = (layer, ids) => ((lookups += new Set(ids).size), routes.at(-1)!.push(routeKey(layer, ids, k)), f(layer, ids));
      const be = split.backend, d = be.disown?.bind(be);
      if (d) be.disown = (w) => ((disowned++), d(w)); // a record the host backend repacked, then admitted to the device
    }
    const cache = lm.model.makeCache(32);
    const toks = lm.tokenizer.encode(PROMPT);
    routes.push([]);
    const prefill = await lm.model.forward(Int32Array.from(toks), cache, { logits: "last", hooks });
    const tokens: number[] = [], steps: Float32Array[] = [prefill];
    let logits = prefill;
    const decode0 = tier && { ...tier.stats };
    const counters = (lm.backend as Partial<WebGpuBackend>).counters, submits0 = counters?.submits ?? 0;
    let laters = 0; // host sums added later (addLater) over the decode tokens
    const lb = lm.backend as Partial<WebGpuBackend>, al = lb.addLater;
    if (al) lb.addLater = (...a) => (laters++, al.apply(lb, a));
    for (let i = 0; i < STEPS; i++) {
      tokens.push(argmax(logits));
      routes.push([]);
      logits = await lm.model.forward(Int32Array.of(tokens[i]), cache, { logits: "last", hooks });
      steps.push(logits);
    }
    const d = <T extends object>(a: T | undefined, b: T | undefined) => (a && b ? (Object.fromEntries(Object.entries(b).map(([k, v]) => [k, (v as number) - (a as Record<string, number>)[k]])) as Record<keyof T, number>) : undefined);
    const submits = ((counters?.submits ?? 0) - submits0) / STEPS;
    return { tokens, steps, routes: routes.map((r) => r.join(" ")), lookups, submits, laters: laters / STEPS, disowned, gpu: d(g0, tier?.stats), decode: d(decode0, tier?.stats), up: d(u0, tier?.slots.uploadStats), info: lm.model.info, slotBytes: lm.experts.slotBytes, reason: lm.expertIO.reason, split: !!split, total: lm.experts.reader.layers.reduce((a, l) => a + lm.experts.reader.expertCount(l), 0) };
  } finally {
    await lm.close();
  }
}

test("split GPU tier (--gpu-misses cpu): greedy tokens equal all-GPU and all-CPU runs, logits within 1e-3 nmse of both (a step routed apart by a router near-tie exempt), counters consistent, deterministic", async (t) => {
  await gpuDevice();
  const path = await smallVocabModel({ type: "Q8_0", seed: 7, peaked: 4, nVocab: 2048 });
  const gpu = await run(path, { backend: "webgpu" });
  const cpu = await run(path, { backend: "cpu" });
  const gpuRoutes = (await run(path, { backend: "webgpu" }, true)).routes;
  assert.deepEqual(cpu.tokens, gpu.tokens, "the model is peaked: both backends agree on the greedy tokens");
  const { nExpertUsed: k, nLayer } = gpu.info;
  let disowned = 0;
  // Admitting at 1x (the default asks 8x): in a run this short, experts that ran on the host then go up.
  const split = { backend: "webgpu", gpuMisses: "cpu", gpuAdmit: 1 } as const;
  for (const slots of [k, Math.floor(gpu.total / 2)]) {
    const s = await run(path, { ...split, gpuExpertCache: slots * gpu.slotBytes });
    assert.ok(s.split, s.reason);
    assert.match(s.reason, /experts not on the GPU run on backend '(native|wasm|scalar)' \(--gpu-misses cpu\)/);
    // A step whose routing differs from the all-GPU run's (a router near-tie tipped by the host's 8-bit activations)
    // is exempt from the logits bound, as llama.cpp parity exempts near-tie positions; its tokens still count.
    const flipped = s.steps.map((_, i) => s.routes[i] !== gpuRoutes[i]);
    const worst = Math.max(...s.steps.map((l, i) => (flipped[i] ? 0 : Math.max(nmse(l, gpu.steps[i]), nmse(l, cpu.steps[i])))));
    assert.ok(flipped.filter(Boolean).length <= 1, `${slots} slots: routing differs from the all-GPU run's at steps ${flipped.flatMap((f, i) => (f ? [i] : []))}`);
    if (flipped.some(Boolean)) t.diagnostic(`${slots} slots: step ${flipped.indexOf(true)} routed an expert apart from the all-GPU run (a near-tie): exempt from the logits bound`);
    disowned += s.disowned;
    t.diagnostic(`${slots} of ${s.total} slots: device hits ${s.gpu!.hits}, misses (uploads) ${s.gpu!.misses}, admitted ${s.gpu!.admits}, host runs ${s.gpu!.hostRuns}, repacked weights given back for an upload ${s.disowned}; worst logits nmse vs GPU/CPU ${worst.toExponential(2)}`);
    assert.deepEqual(s.tokens, gpu.tokens, `${slots} slots: greedy tokens`);
    assert.ok(worst < 1e-3, `${slots} slots: logits nmse ${worst}`);
    assert.equal(s.gpu!.hits + s.gpu!.misses + s.gpu!.hostRuns, s.lookups, "each lookup: a device hit, an upload or a host run");
    assert.ok(s.gpu!.hostRuns > 0 && s.gpu!.hits > 0, "both sides ran experts");
    if (slots === k) assert.ok(s.gpu!.admits > 0, "with a layer's top-k of slots, some expert that ran on the host was admitted");
    assert.equal(s.up!.uploads, s.gpu!.misses + s.gpu!.admits, "uploads: the misses' and the admissions'");
    assert.equal(s.up!.bytes % s.up!.uploads, 0);
    assert.ok(s.gpu!.misses <= slots && s.gpu!.admits <= (STEPS + 1) * nLayer, "free slots fill, then at most one admission over a victim per layer per forward");
    assert.ok(s.decode!.misses + s.decode!.admits <= STEPS * nLayer);
    // One submit a layer (its routing and input read back) and one for the logits, and where the host's sum is
    // taken later, one before it (the device's experts run while the next layer records).
    assert.ok(s.laters > 0 && s.laters <= nLayer);
    assert.ok(Math.abs(s.submits - (nLayer + 1 + s.laters)) < 1e-9, `${slots} slots: ${s.submits} submits a decode token, for ${s.laters} sums taken later`);
    const again = await run(path, { ...split, gpuExpertCache: slots * gpu.slotBytes });
    again.steps.forEach((l, i) => assert.ok(sameBits(l, s.steps[i]), `${slots} slots: step ${i} differs between two runs`));
    // The host's sum added while the next layer records (addLater, moeFfnAsync), or awaited and written before the
    // next layer records: the same bits.
    const addLater = WebGpuBackend.prototype.addLater;
    const before = await (async () => {
      WebGpuBackend.prototype.addLater = undefined as never;
      try {
        return await run(path, { ...split, gpuExpertCache: slots * gpu.slotBytes });
      } finally {
        WebGpuBackend.prototype.addLater = addLater;
      }
    })();
    before.steps.forEach((l, i) => assert.ok(sameBits(l, s.steps[i]), `${slots} slots: step ${i} differs when the host's sum goes up before the next layer records`));
    // The GPU's idle windows padded (--gpu-keep-busy: one workgroup spinning, writing nothing) after the device's
    // experts and after each read: the same bits, and the pads after reads are submissions of their own.
    const padded = await run(path, { ...split, gpuExpertCache: slots * gpu.slotBytes, gpuKeepBusy: 50 });
    padded.steps.forEach((l, i) => assert.ok(sameBits(l, s.steps[i]), `${slots} slots: step ${i} differs with the GPU's idle windows padded`));
    assert.ok(padded.submits > s.submits, `${slots} slots: pads submitted (${padded.submits} vs ${s.submits} submits a decode token)`);
    // Streamed from disk through a host cache of 2 layers' top-k (the host side acquires in groups it holds): the same bits.
    const streamed = await run(path, { ...split, gpuExpertCache: slots * gpu.slotBytes, expertIo: "stream", expertCache: 2 * k * gpu.slotBytes });
    streamed.steps.forEach((l, i) => assert.ok(sameBits(l, s.steps[i]), `${slots} slots: step ${i} differs when the host streams its experts`));
  }
  // Where the native backend repacks (SIMD CPUs), records that ran on the host and were then admitted went up as read.
  const a = loadNativeAddon();
  t.diagnostic(`repacked host weights given back for an upload: ${disowned}`);
  if (a && repacks(a)) assert.ok(disowned > 0, "some expert ran on the host (repacked) before it was admitted to the device");
});

test("--gpu-misses cpu-fill: once the tier's slots are full nothing more goes up; tokens as all-GPU's", async () => {
  await gpuDevice();
  const path = await smallVocabModel({ type: "Q8_0", seed: 7, peaked: 4, nVocab: 2048 });
  const gpu = await run(path, { backend: "webgpu" });
  const slots = Math.floor(gpu.total / 2);
  const s = await run(path, { backend: "webgpu", gpuExpertCache: slots * gpu.slotBytes, gpuMisses: "cpu-fill" });
  assert.match(s.reason, /\(--gpu-misses cpu-fill\)/);
  assert.deepEqual(s.tokens, gpu.tokens);
  assert.ok(s.gpu!.misses <= slots, `uploads ${s.gpu!.misses} only into the ${slots} free slots`);
  assert.ok(s.gpu!.hostRuns > 0);
  assert.equal(s.gpu!.hits + s.gpu!.misses + s.gpu!.hostRuns, s.lookups);
});

test("--gpu-misses cpu with every expert on the GPU: nothing runs on the host (the tier is resident)", async () => {
  await gpuDevice();
  const path = await smallVocabModel({ type: "Q8_0", seed: 7, peaked: 4, nVocab: 2048 });
  const s = await run(path, { backend: "webgpu", gpuMisses: "cpu" });
  assert.equal(s.split, false);
  assert.doesNotMatch(s.reason, /--gpu-misses/);
});

test("--cpu-moe: every routed expert runs on the CPU beside the GPU (no expert slots, nothing uploaded); tokens as the CPU backend's", async () => {
  await gpuDevice();
  const path = await smallVocabModel({ type: "Q8_0", seed: 7, peaked: 4, nVocab: 2048 });
  const cpu = await run(path, { backend: "cpu" });
  const s = await run(path, { backend: "webgpu", cpuMoe: true, gpuMisses: "upload", gpuAdmit: 1 }); // the tier's options moot
  assert.match(s.reason, /no GPU expert tier \(--cpu-moe\); every routed expert runs on backend '(native|wasm|scalar)' \(--cpu-moe\)/);
  assert.deepEqual(s.tokens, cpu.tokens);
  assert.ok(s.lookups > 0);
  assert.deepEqual([s.gpu!.hits, s.gpu!.misses, s.gpu!.admits, s.gpu!.hostRuns, s.up!.uploads], [0, 0, 0, s.lookups, 0], "every lookup a CPU run, nothing uploaded");
});
