// `moestream pull` as a user runs it (bin/moestream.cjs over dist/), against a local stand-in for the Hub named
// by HF_ENDPOINT: the path alone on stdout (so `chat -m $(moestream pull ...)` works), exit codes 2/3/4 as
// src/util/errors.ts and main.ts give them, resume across runs, HF_HUB_OFFLINE, and --pack.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { smallVocabModel } from "../helpers/models.js";
import { startHubStandIn } from "../helpers/hub-server.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "moestream.cjs");
const tmp = mkdtempSync(join(tmpdir(), "moestream-pull-e2e-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const model = readFileSync(await smallVocabModel({ type: "Q4_K", seed: 11, nVocab: 8192 }));
const REPO = "test-org/Tiny-MoE-GGUF";
const hub = await startHubStandIn({ [REPO]: { files: { "Tiny-MoE-Q4_K_M.gguf": model, "Tiny-MoE-Q8_0.gguf": model.subarray(0, 100_000) }, xet: true } });
test.after(() => hub.close());

/** The CLI, asynchronously: the stand-in Hub answers from this process while the child runs. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  const cacheEnv = { MOESTREAM_CACHE_DIR: join(tmp, "cache"), HF_HUB_CACHE: join(tmp, "hf-hub"), HF_ENDPOINT: hub.url, HF_TOKEN: "", HF_HUB_OFFLINE: "" };
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...cacheEnv, ...env } });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, out, err })));
}

const dest = join(tmp, "cache", "test-org", "Tiny-MoE-GGUF", "Tiny-MoE-Q4_K_M.gguf");

test("a cut download exits 4 saying how to resume; the next run resumes there and prints only the path; the model runs", async () => {
  hub.cutAt.set("Tiny-MoE-Q4_K_M.gguf", 2_000_000);
  const cut = await cli(["pull", `${REPO}:Q4_K_M`, "--retries", "0"]);
  assert.equal(cut.code, 4, cut.err);
  const at = /download stopped at byte (\d+) of (\d+) .*run pull again to resume/.exec(cut.err);
  assert.ok(at && Number(at[1]) > 0 && Number(at[2]) === model.length, cut.err);
  assert.equal(cut.out, "");
  const from = hub.log.length;
  const r = await cli(["pull", `${REPO}:q4_k_m`]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, dest + "\n");
  assert.ok(readFileSync(dest).equals(model));
  const ranges = hub.log.slice(from).filter((l) => l.origin === "cdn" && l.range !== "bytes=0-0").map((l) => l.range);
  assert.deepEqual(ranges, [`bytes=${at[1]}-${model.length - 1}`]);
  assert.match(r.err, /MiB downloaded, sha256 verified/);
  // What `moestream chat -m $(moestream pull ...)` does with the path.
  const run = await cli(["run", "-m", r.out.trim(), "-p", "Hello", "-n", "2", "--temp", "0", "--backend", "scalar"]);
  assert.equal(run.code, 0, run.err);
});

test("HF_HUB_OFFLINE answers from the cache without a request; --pack prints the packed directory", async () => {
  await cli(["pull", `${REPO}:Q4_K_M`]); // in the cache (a no-op when the test above ran)
  const from = hub.log.length;
  const off = await cli(["pull", `${REPO}:Q4_K_M`], { HF_HUB_OFFLINE: "1" });
  assert.equal(off.code, 0, off.err);
  assert.equal(off.out, dest + "\n");
  assert.match(off.err, /from the cache \(offline\)/);
  assert.equal(hub.log.length, from);
  const packed = await cli(["pull", `${REPO}:Q4_K_M`, "--offline", "--pack"]);
  assert.equal(packed.code, 0, packed.err);
  assert.equal(packed.out, dest.replace(/\.gguf$/, ".moe") + "\n");
  assert.ok(existsSync(join(packed.out.trim(), "dense.gguf")));
});

test("exit 2 for an unknown quant (listing the quants) or repo, 3 for bytes that fail the sha256, naming the file", async () => {
  const q = await cli(["pull", `${REPO}:IQ2_XXS`]);
  assert.equal(q.code, 2);
  assert.match(q.err, /^moestream: error: test-org\/Tiny-MoE-GGUF: no IQ2_XXS GGUF; available: Q4_K_M \(8\.\d MiB\), Q8_0 \(0\.1 MiB\)\n$/);
  const repo = await cli(["pull", "test-org/Nope:Q4_K_M"]);
  assert.equal(repo.code, 2);
  assert.match(repo.err, /test-org\/Nope: not found/);
  hub.corrupt.add("Tiny-MoE-Q8_0.gguf");
  try {
    const bad = await cli(["pull", `${REPO}:Q8_0`]);
    assert.equal(bad.code, 3, bad.err);
    assert.match(bad.err, /^moestream: error: Tiny-MoE-Q8_0\.gguf: sha256 of the downloaded bytes is [0-9a-f]{64}, the Hub lists [0-9a-f]{64}/);
  } finally {
    hub.corrupt.clear();
  }
});
