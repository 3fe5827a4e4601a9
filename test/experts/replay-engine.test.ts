// Replay is exact: for a trace recorded from a real run of the tiny model with streamed experts, replaying
// the run's policy at the run's slot count gives exactly the hits, misses, evictions and bytes the engine's
// StreamingExperts counted, per phase; and Belady bounds every policy on the recorded traces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Backend } from "../../src/backends/backend.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { loadModel } from "../../src/engine/load.js";
import { policyByName, POLICY_NAMES, readerPolicyContext, RECOMMENDED_POLICY } from "../../src/experts/policies.js";
import { belady, policyContext, replay, type PhaseStats } from "../../src/experts/replay.js";
import { GGUFExpertReader } from "../../src/experts/store.js";
import { StreamingExperts, type StreamingStats } from "../../src/experts/streaming-source.js";
import { acquireGroups, readTrace, TraceWriter, type Trace } from "../../src/experts/trace.js";
import type { Model } from "../../src/models/registry.js";
import { testModel } from "../helpers/models.js";
import { expertLayout } from "../helpers/experts.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-replay-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const ROUTING = { kind: "realistic", skew: 1, locality: 0.5 } as const;
const PROMPT = "The lighthouse keeper woke before dawn and climbed the stairs with a mug of tea.";
const FOLLOW = " He cleaned the lamp, watched the horizon turn gold, and went down to the harbour where the boats were already moving out to sea, past the church and the school.";

/** The engine's counts; records it brought into slots are demand reads plus staged prefetches. */
interface Counts { hits: number; misses: number; evictions: number; records: number }
const snap = (s: StreamingStats, slot: number): Counts => ({ hits: s.hits, misses: s.misses, evictions: s.evictions, records: s.bytesRead / slot + s.prefetched });
const diff = (a: Counts, b: Counts): Counts => ({ hits: b.hits - a.hits, misses: b.misses - a.misses, evictions: b.evictions - a.evictions, records: b.records - a.records });
const counts = (p: PhaseStats, slot: number): Counts => ({ hits: p.hits, misses: p.misses, evictions: p.evictions, records: p.bytesRead / slot });

interface Run {
  model: Model;
  backend: Backend;
  experts: StreamingExperts;
}

/** Prompt in one forward, then the follow-up one token per forward, routing written to `path`; the cache's counts per phase. */
async function record(run: Run, prompt: number[], follow: number[], path: string): Promise<{ trace: Trace; prefill: Counts; decode: Counts }> {
  const hp = run.model.info;
  const w = TraceWriter.create(path, {
    model: { architecture: "qwen3moe", name: "tiny", nLayer: hp.nLayer, nExpert: hp.nExpert, k: hp.nExpertUsed, recordBytes: new Array(hp.nLayer).fill(run.experts.slotBytes) },
    routing: { ...ROUTING },
  });
  const kv = run.model.makeCache(128);
  const hooks = { onRoute: (l: number, r: { ids: Int32Array; nTokens: number }) => w.route(l, r.ids, r.nTokens) };
  try {
    const slot = run.experts.slotBytes;
    const s0 = snap(run.experts.stats, slot);
    await run.model.forward(Int32Array.from(prompt), kv, { logits: "last", hooks });
    w.endCall("prefill");
    const s1 = snap(run.experts.stats, slot);
    for (const t of follow) {
      await run.model.forward(Int32Array.of(t), kv, { logits: "last", hooks });
      w.endCall("decode");
    }
    w.close();
    return { trace: readTrace(path), prefill: diff(s0, s1), decode: diff(s1, snap(run.experts.stats, slot)) };
  } finally {
    kv.free();
    w.close();
  }
}

test("replay(LRU) equals the engine's own StreamingExperts counts, per phase, at several budgets", async () => {
  const src = await testModel({ type: "Q8_0", seed: 21, routing: ROUTING });
  const probe = await loadModel(src, defaultEngineConfig({ ctxSize: 128, expertIo: "stream", expertCache: 64 << 20 }));
  const slot = probe.experts.slotBytes;
  const { nExpertUsed: k, nLayer } = probe.model.info;
  const prompt = probe.tokenizer.encode(PROMPT), follow = probe.tokenizer.encode(FOLLOW);
  await probe.close();
  // k: the fewest the engine takes (prefill acquires in groups); then 1x .. 3x a token's experts.
  for (const slots of [k, k * nLayer, 1.5 * k * nLayer, 2 * k * nLayer, 3 * k * nLayer]) {
    const lm = await loadModel(src, defaultEngineConfig({ ctxSize: 128, expertIo: "stream", expertCache: slots * slot, expertPolicy: "lru" }));
    try {
      assert.equal(lm.experts.nSlots, slots);
      const r = await record(lm, prompt, follow, join(dir, `lru-${slots}.trace`));
      const rep = replay(r.trace, { slots, policy: policyByName("lru") });
      assert.deepEqual(counts(rep.prefill, slot), r.prefill, `${slots} slots: prefill`);
      assert.deepEqual(counts(rep.decode, slot), r.decode, `${slots} slots: decode`);
      if (slots > k) assert.ok(r.decode.hits > 0 && r.decode.misses > 0, `${slots} slots: a trace with both hits and misses`);
    } finally {
      await lm.close();
    }
  }
});

test("replay equals StreamingExperts for every policy and budget; Belady bounds them all on the recorded trace", async () => {
  const src = await testModel({ type: "Q8_0", seed: 21, routing: ROUTING });
  // Record once from the real model; its acquire pattern is pinned by the test above.
  const lm = await loadModel(src, defaultEngineConfig({ ctxSize: 128, expertIo: "stream", expertCache: 64 << 20 }));
  let trace: Trace;
  try {
    trace = (await record(lm, lm.tokenizer.encode(PROMPT), lm.tokenizer.encode(FOLLOW), join(dir, "policies.trace"))).trace;
  } finally {
    await lm.close();
  }
  const { k } = trace.header.model;
  const reader = await GGUFExpertReader.open(src, expertLayout);
  try {
    const slot = Math.max(...reader.layers.map((l) => reader.recordBytes(l)));
    const specs: { n: string; p: Record<string, number> }[] = [
      ...POLICY_NAMES.map((n) => ({ n, p: {} })), { n: "slru", p: { protected: 0.3 } }, { n: "lfu", p: { halveEvery: 50, history: 0 } },
      // Per-layer quotas: the engine's default (adaptive) and fixed equal ones, over two inner policies.
      { n: "lfu-decay", p: { perLayer: 1 } }, { n: "markov", p: { perLayer: 1 } }, { n: "s3fifo", p: { perLayer: 1 } }, { n: "lru", p: { perLayer: 1, floor: 1 } },
    ];
    // What load.ts tells a policy, from the reader; replay's policyContext says the same from the trace.
    const engineCtx = readerPolicyContext(reader, trace.header.model.nLayer, k);
    assert.deepEqual(policyContext(trace), engineCtx);
    for (const slots of [k, 12, 16, 24, 32, 48]) {
      const b = belady(trace, slots);
      for (const spec of specs) {
        // The real cache, reading real records, driven by the acquire()/release() calls the model makes.
        const experts = new StreamingExperts(reader, new ScalarBackend(), { budgetBytes: slots * slot, minExperts: k, policy: policyByName(spec.n, spec.p, engineCtx) });
        const phases = { prefill: { hits: 0, misses: 0, evictions: 0 }, decode: { hits: 0, misses: 0, evictions: 0 } };
        for (const call of trace.calls) {
          const s0 = { ...experts.stats };
          for (let l = 0; l < trace.header.model.nLayer; l++) {
            for (const ids of acquireGroups(call.routes[l] ?? [], experts.capacity)) {
              await experts.acquire(l, ids);
              experts.release(l, ids);
            }
          }
          const p = phases[call.phase];
          p.hits += experts.stats.hits - s0.hits;
          p.misses += experts.stats.misses - s0.misses;
          p.evictions += experts.stats.evictions - s0.evictions;
        }
        const where = `${spec.n} ${JSON.stringify(spec.p)} at ${slots} slots`;
        const rep = replay(trace, { slots, policy: policyByName(spec.n, spec.p, policyContext(trace)) });
        for (const ph of ["prefill", "decode"] as const) {
          assert.deepEqual({ hits: rep[ph].hits, misses: rep[ph].misses, evictions: rep[ph].evictions }, phases[ph], `${where}: ${ph}`);
        }
        assert.equal(rep.total.bytesRead, experts.stats.bytesRead, where);
        assert.ok(b.total.hits >= rep.total.hits && b.bound.decode.hits >= rep.decode.hits && b.bound.prefill.hits >= rep.prefill.hits, where);
      }
    }
  } finally {
    await reader.close();
  }
});

test("CLI: trace records a streamed run, replay checks itself against it and prints the table", async () => {
  const src = await testModel({ type: "Q8_0", seed: 21, routing: ROUTING });
  const root = resolve(import.meta.dirname, "..", "..");
  const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", join(root, "src", "cli", "main.ts"), ...args], { encoding: "utf8", cwd: root });
  const follow = join(dir, "follow.txt");
  writeFileSync(follow, FOLLOW.repeat(2));
  const out = join(dir, "cli.trace");
  const t = cli("trace", "-m", src, "-p", PROMPT, "--follow", follow, "-n", "20", "-o", out, "--routing", "realistic", "--expert-io", "stream", "--expert-cache", "5M");
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stderr, /wrote 21 forward calls/);
  const tr = readTrace(out);
  assert.deepEqual(tr.header.routing, { kind: "realistic", skew: 1, locality: 0.5 });
  assert.equal(tr.calls.filter((c) => c.phase === "decode").length, 20);
  assert.equal(tr.end?.observed?.policy, RECOMMENDED_POLICY, "the engine default");
  const r = cli("replay", out);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /replay matches/);
  assert.match(r.stdout, /routing profile: realistic skew 1 locality 0.5/);
  for (const col of ["lru", "slru", "lfu", "lrfu", "markov", RECOMMENDED_POLICY, "belady"]) assert.match(r.stdout.split("\n").find((l) => l.startsWith("budget"))!, new RegExp(col));
  const j = cli("replay", out, "--budget", "2x", "--policy", "lru", "slru:protected=0.5", "--json");
  assert.equal(j.status, 0, j.stderr);
  const rows = JSON.parse(j.stdout).rows;
  assert.equal(rows.length, 1);
  assert.equal(rows[0].slots, 2 * tr.header.model.k * tr.header.model.nLayer);
  assert.deepEqual(Object.keys(rows[0].policies), ["lru", "slru:protected=0.5"]);
  const bad = cli("replay", out, "--policy", "mru");
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown eviction policy 'mru'/);

  // -m checks the trace against the model: a header edited to take expert id 999 of this 16-expert model
  // reads as a trace (it is consistent with itself), and is refused against the model naming line, id and limit.
  const nExpert = tr.header.model.nExpert;
  const lines = readFileSync(out, "utf8").split("\n");
  const head = JSON.parse(lines[0]), call = JSON.parse(lines[2]);
  call.routes[1][0] = 999;
  const edited = join(dir, "edited.trace");
  writeFileSync(edited, [JSON.stringify({ ...head, model: { ...head.model, nExpert: 1000 } }), lines[1], JSON.stringify(call), ...lines.slice(3)].join("\n"));
  assert.equal(cli("replay", edited, "--budget", "1x", "--policy", "lru").status, 0, "without the model, the header is all replay knows");
  const ids = cli("replay", edited, "-m", src);
  assert.equal(ids.status, 3, ids.stderr);
  assert.match(ids.stderr, new RegExp(`edited\\.trace: line 3: call 1, layer 1: expert id 999 not in \\[0, ${nExpert}\\) \\(.* has ${nExpert} experts per layer\\)`));
  // Ids in range but a header of another shape: named, with both values.
  writeFileSync(edited, [JSON.stringify({ ...head, model: { ...head.model, nExpert: 2 * nExpert } }), ...lines.slice(1)].join("\n"));
  const shape = cli("replay", edited, "-m", src);
  assert.equal(shape.status, 3, shape.stderr);
  assert.match(shape.stderr, new RegExp(`line 1: header: not a trace of .*: nExpert ${2 * nExpert}, the model ${nExpert}`));
  assert.equal(cli("replay", out, "-m", src, "--budget", "1x", "--policy", "lru").status, 0, "the trace of this model passes");
});
