// The CLI with --backend webgpu (lavapipe in CI): the same greedy tokens as the scalar reference through a GPU
// expert tier (experts missing from it uploaded, or run on the CPU), and one clear line (exit 2) when no adapter exists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { smallVocabModel } from "../helpers/models.js";
import { gpuEnv } from "../helpers/webgpu.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "moestream.cjs");

function cli(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...env, MOESTREAM_TEMP: undefined } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("run --backend webgpu, experts streamed through a GPU expert tier smaller than them, gives the scalar backend's greedy tokens; --stats-json counts each lookup in one tier", async () => {
  const model = await smallVocabModel({ type: "Q8_0", seed: 5, peaked: 4, nVocab: 2048 });
  const args = ["run", "-m", model, "-p", "Once upon a time", "-n", "4", "--temp", "0", "--json", "--ignore-eos", "--ctx-size", "64"];
  const gpu = cli(gpuEnv(), ...args, "--backend", "webgpu", "--expert-io", "stream", "--prefetch", "off", "--gpu-expert-cache", String(4 * 2 ** 20), "--stats-json");
  assert.equal(gpu.code, 0, gpu.err);
  const ref = cli(process.env, ...args, "--backend", "scalar");
  assert.equal(ref.code, 0, ref.err);
  assert.deepEqual(JSON.parse(gpu.out).tokens, JSON.parse(ref.out).tokens);
  // The tiny preset: 4 layers of 16 experts, top-4; 4 tokens are 3 decode forwards after the prompt's.
  const stats = JSON.parse(gpu.err.split("\n").find((l) => l.startsWith("{"))!);
  const { gpu: tier } = stats.expertCache;
  assert.ok(tier.slots >= 4 && tier.slots < 64 && !tier.resident, JSON.stringify(tier));
  const d = stats.experts.decode;
  assert.equal(d.gpuHits + d.gpuMisses, 3 * 4 * 4, "3 forwards x 4 layers x top-4 lookups");
  assert.equal(d.hits + d.misses, d.gpuMisses, "each device miss is one host lookup");
  assert.equal(d.uploadBytes, d.gpuMisses * (tier.bytes / tier.slots), "each device miss uploads one record");
  // The split tier (experts not on the GPU run on the CPU) with each token recorded ahead (the default): the same
  // tokens. Its host sum and the next token's id both came later, and a read once waited on both: exit 0, no output.
  const split = cli(gpuEnv(), ...args, "--backend", "webgpu", "--expert-io", "resident", "--gpu-expert-cache", String(4 * 2 ** 20), "--gpu-misses", "cpu", "--stats-json");
  assert.equal(split.code, 0, split.err);
  assert.deepEqual(JSON.parse(split.out).tokens, JSON.parse(ref.out).tokens);
  assert.ok(JSON.parse(split.err.split("\n").find((l) => l.startsWith("{"))!).experts.decode.gpuHostRuns > 0, "experts ran on the host");
  // --gpu-admit 1: experts that ran on the host go up in the background; --stats-json counts them apart.
  const admit = cli(gpuEnv(), ...args.map((a) => (a === "4" ? "8" : a)), "--backend", "webgpu", "--expert-io", "resident", "--gpu-expert-cache", String(4 * 2 ** 20), "--gpu-misses", "cpu", "--gpu-admit", "1", "--stats-json");
  assert.equal(admit.code, 0, admit.err);
  const ad = JSON.parse(admit.err.split("\n").find((l) => l.startsWith("{"))!).experts.decode;
  assert.ok(ad.gpuAdmits > 0 && ad.gpuHostRuns > 0, JSON.stringify(ad));
  assert.equal(ad.gpuHits + ad.gpuMisses + ad.gpuHostRuns, 7 * 4 * 4, "7 forwards x 4 layers x top-4 lookups: admissions are not lookups");
});

test("bench runs an untimed warm-up first (as llama-bench): the split tier's first fill happens there, not in the first repetition; --no-warmup skips it", async () => {
  const model = await smallVocabModel({ type: "Q8_0", seed: 5, peaked: 4, nVocab: 2048 });
  const prefill = (...extra: string[]) => {
    const r = cli(gpuEnv(), "bench", "-m", model, "-p", "16", "-n", "2", "-r", "1", "--json", "--backend", "webgpu", "--expert-io", "resident", "--gpu-expert-cache", String(4 * 2 ** 20), "--gpu-misses", "cpu", ...extra);
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out).lastRun.experts.prefill as { gpuHits: number; gpuMisses: number; gpuHostRuns: number };
  };
  const warm = prefill(), cold = prefill("--no-warmup");
  assert.equal(warm.gpuMisses, 0, `warm: ${JSON.stringify(warm)}`);
  assert.ok(cold.gpuMisses > 0, `cold: ${JSON.stringify(cold)}`);
  assert.ok(warm.gpuHits > cold.gpuHits, "the warm-up's fill serves the timed prompt");
});

test("--backend webgpu without an adapter: exit 2 and one line saying why, no JavaScript stack", async () => {
  const model = await smallVocabModel({ type: "Q8_0", seed: 5, peaked: 4, nVocab: 2048 });
  const r = cli({ ...process.env, VK_DRIVER_FILES: join(import.meta.dirname, "no-such-icd.json") }, "run", "-m", model, "-p", "Hi", "-n", "1", "--backend", "webgpu");
  assert.equal(r.code, 2, r.err);
  const line = r.err.split("\n").filter((l) => l.includes("--backend webgpu"));
  assert.equal(line.length, 1, r.err);
  assert.match(line[0], /--backend webgpu: no WebGPU adapter found/);
  // No JavaScript stack (Dawn itself prints its Vulkan warnings, with a C++ source line, before our line).
  assert.doesNotMatch(r.err, /^\s+at .*(\.js|\.ts|node:)/m);
});
