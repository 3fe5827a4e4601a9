// `moestream doctor` as a user runs it: the plan it prints is the one the engine makes on load.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { smallVocabModel } from "../helpers/models.js";
import { startHubStandIn } from "../helpers/hub-server.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "moestream.cjs");
const model = () => smallVocabModel({ preset: "mixtral-tiny", type: "Q8_0", seed: 11, nVocab: 8192 });

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, "doctor", ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: `${r.stderr}${r.signal ? ` (killed by ${r.signal})` : ""}` };
}

test("doctor --json: resident, the engine's cache, a positive forecast; the text form says the same", async () => {
  const path = await model();
  const r = cli(path, "--json");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  const lm = await loadModel(path, defaultEngineConfig());
  try {
    assert.equal(j.fits, true);
    assert.equal(j.plan.mode, lm.expertIO.mode);
    assert.equal(j.plan.cacheBytes, lm.expertIO.cacheBytes);
    assert.equal(j.plan.ctxSize, lm.config.ctxSize);
  } finally {
    await lm.close();
  }
  assert.equal(j.forecast.mode, "resident");
  assert.ok(j.forecast.decode.mid > 0 && j.probe.memory.gbps > 0 && j.probe.disk.gbps > 0);
  // Prefill: the backend's matmuls timed at a 512-token batch (Q8_0 dense, the experts fused), and a forecast from them.
  assert.equal(j.prefill.promptTokens, 512);
  assert.ok(j.probe.compute.dense.gflops.Q8_0 > 0 && j.probe.compute.experts.gflops["Q8_0+Q8_0+Q8_0"] > 0 && j.probe.compute.attentionMs > 0, JSON.stringify(j.probe.compute));
  assert.ok(j.prefill.tokPerSec.low > 0 && j.prefill.tokPerSec.low <= j.prefill.tokPerSec.mid, JSON.stringify(j.prefill));
  const t = cli(path, "--ctx-size", "256");
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /forecast: decode [\d.]+ tok\/s \([\d.]+-[\d.]+\), experts resident/);
  assert.match(t.out, /plan \(as the engine decides\): memory budget .*context 256/);
  assert.match(t.out, /forecast: prefill [\d.]+ tok\/s \([\d.]+-[\d.]+\) for a 512-token prompt/);
});

test("doctor streamed: the engine's slots, a hit-rate range and disk bytes per token", async () => {
  const path = await model();
  const flags = ["--expert-io", "stream", "--expert-cache", "2M"];
  const r = cli(path, "--json", ...flags);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  const lm = await loadModel(path, { ...defaultEngineConfig(), expertIo: "stream", expertCache: 2 * 2 ** 20 });
  try {
    assert.equal(j.plan.mode, "stream");
    assert.equal(j.plan.cacheBytes, lm.expertIO.cacheBytes);
  } finally {
    await lm.close();
  }
  const f = j.forecast;
  assert.equal(j.plan.cacheSlots, Math.floor((2 * 2 ** 20) / j.model.recordBytes));
  assert.ok(f.hitRate.low <= f.hitRate.mid && f.hitRate.mid <= f.hitRate.high && f.hitRate.high <= 1);
  assert.ok(f.diskBytesPerToken.mid > 0 && f.decode.low <= f.decode.mid && j.probe.disk.reads > 0);
});

test("doctor: a missing file exits 2, a file that is not GGUF 3", () => {
  const small = cli("--json", "--mem-budget", "16M", "--expert-io", "stream", join(import.meta.dirname, "..", "..", "package.json"));
  assert.equal(small.code, 3, small.err); // package.json is not a GGUF
  const missing = cli(join(tmpdir(), "doctor-missing.gguf"));
  assert.equal(missing.code, 2);
  assert.match(missing.err, /model file not found/);
});

test("doctor: too little memory is a verdict, not an error", async () => {
  const r = cli(await model(), "--json", "--mem-budget", "16M");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.fits, false);
  assert.match(j.whyNot, /cannot run in this memory|more than the memory budget/);
  assert.equal(j.forecast, undefined);
});

test("bench --forecast: doctor's forecast beside each run, from probes on both sides of it", async () => {
  const r = spawnSync(process.execPath, [BIN, "bench", "-m", await model(), "-p", "4", "-n", "4", "-r", "2", "--forecast", "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.forecast.tg.length, j.tg.tokPerSec.length);
  for (const f of j.forecast.tg) {
    assert.ok(f.tokPerSec > 0 && f.low <= f.tokPerSec && f.tokPerSec <= f.high && f.memGBps > 0, JSON.stringify(f));
    assert.equal(f.measured.hitRate, 1); // resident: every expert is a hit
  }
  assert.equal(j.forecast.pp.length, j.pp.tokPerSec.length);
  for (const f of j.forecast.pp) assert.ok(f.tokPerSec > 0 && f.low <= f.tokPerSec, JSON.stringify(f));
});

test("doctor REPO:QUANT (HF_ENDPOINT names the Hub stand-in): the header read remotely, nothing downloaded; an unknown quant exits 2", async () => {
  const hub = await startHubStandIn({ "test-org/Tiny-MoE-GGUF": { files: { "Tiny-MoE-Q8_0.gguf": readFileSync(await model()) } } });
  // Asynchronously: the stand-in answers from this process while the child runs.
  const run = (...args: string[]) => new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, "doctor", ...args], { env: { ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: "" } });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("close", (code) => resolve({ code, out, err }));
  });
  try {
    const r = await run("test-org/Tiny-MoE-GGUF:Q8_0", "--ctx-size", "256");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^model: test-org\/Tiny-MoE-GGUF:Q8_0, .*\(header read remotely: .* fetched\)\n  test-org\/Tiny-MoE-GGUF@0123456789ab Q8_0: Tiny-MoE-Q8_0\.gguf, nothing downloaded\n/);
    assert.match(r.out, /forecast: decode [\d.]+ tok\/s/);
    const bad = await run("test-org/Tiny-MoE-GGUF:Q2_K");
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /no Q2_K GGUF.*available: Q8_0/);
  } finally {
    await hub.close();
  }
});
