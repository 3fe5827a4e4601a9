// doctor on a Hugging Face REPO[:QUANT|FILE], against the local Hub stand-in through the real @huggingface/hub
// client: the file `pull` would choose, its header read by range requests (every part of a split GGUF), the same
// figures as doctor on the local file, nothing else fetched; bad specs, non-GGUF and truncated files refused by name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { doctor } from "../../src/engine/doctor.js";
import { isHubSpec } from "../../src/engine/pull/index.js";
import { FormatError, UsageError } from "../../src/util/errors.js";
import { smallVocabModel } from "../helpers/models.js";
import { splitGGUF } from "../helpers/split-gguf.js";
import { startHubStandIn } from "../helpers/hub-server.js";

const tmp = mkdtempSync(join(tmpdir(), "moestream-doctor-hub-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const mixtralPath = await smallVocabModel({ preset: "mixtral-tiny", type: "Q8_0", seed: 11, nVocab: 8192 });
const tinyPath = await smallVocabModel({ type: "Q4_K", seed: 11, nVocab: 8192 });
const M = readFileSync(mixtralPath);
const parts = [1, 2, 3].map((i) => join(tmp, `t-0000${i}-of-00003.gguf`));
await splitGGUF(tinyPath, parts);
const REPO = "test-org/Tiny-MoE-GGUF";
const files: Record<string, Uint8Array> = {
  "Tiny-MoE-Q8_0.gguf": M,
  ...Object.fromEntries(parts.map((p, i) => [`Q4_K_M/Tiny-MoE-Q4_K_M-0000${i + 1}-of-00003.gguf`, readFileSync(p)])),
  "Tiny-MoE-Q4_0.gguf": randomBytes(300_000), // not a GGUF
  "Tiny-MoE-Q6_K.gguf": M.subarray(0, 100_000), // the header (264 KB) cut short
  "Tiny-MoE-Q5_K_M.gguf": M.subarray(0, 270_000), // the header whole, the tensor data cut short
};
const TOKEN = "hf_standin0123";
const hub = await startHubStandIn({ [REPO]: { files, xet: true }, "test-org/Gated-GGUF": { files: { "G-Q8_0.gguf": M }, token: TOKEN } });
test.after(() => hub.close());

const cfg = { ...defaultEngineConfig(), memBudget: 2 ** 30 };
const fixed = { memGBps: 10, diskGBps: 1, promptTokens: 0 }; // the probes are tested apart: the same figures feed both sides here
const at = (hubUrl: string, token?: string) => ({ ...fixed, hub: { hubUrl, ...(token ? { token } : {}) } });
/** Bytes the CDN sent for requests logged from `from` on: each range's length, clipped to the file. */
const cdnBytes = (from: number, size: number) =>
  hub.log.slice(from).filter((l) => l.origin === "cdn" && l.method === "GET").reduce((a, l) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(l.range ?? "");
    assert.ok(m, `every CDN read is a range request, got ${l.range}`);
    return a + Math.min(Number(m[2]), size - 1) - Number(m[1]) + 1;
  }, 0);

test("REPO:QUANT: the file pull picks, read by range requests, gives the local file's figures and fetches only its header", async () => {
  const from = hub.log.length;
  const remote = await doctor(`${REPO}:q8_0`, cfg, at(hub.url));
  const local = await doctor(mixtralPath, cfg, fixed);
  assert.equal(remote.source.kind, "hub");
  assert.deepEqual(remote.source.hub, { repo: REPO, commit: "0123456789abcdef0123456789abcdef01234567", quant: "Q8_0", files: ["Tiny-MoE-Q8_0.gguf"] });
  assert.equal(remote.source.fileBytes, M.length);
  assert.deepEqual(remote.model, local.model);
  assert.deepEqual(remote.plan, local.plan);
  assert.deepEqual(remote.forecast, local.forecast);
  assert.equal(cdnBytes(from, M.length), remote.source.headerBytesFetched);
  assert.ok(remote.source.headerBytesFetched! < M.length / 2, `fetched ${remote.source.headerBytesFetched} of ${M.length}`);
});

test("a split GGUF: every part's header is read and the tensors joined: the figures of the unsplit file", async () => {
  const remote = await doctor(REPO, cfg, at(hub.url)); // no tag: Q4_K_M, as pull takes it
  const local = await doctor(tinyPath, cfg, fixed);
  assert.deepEqual(remote.source.hub!.files, [1, 2, 3].map((i) => `Q4_K_M/Tiny-MoE-Q4_K_M-0000${i}-of-00003.gguf`));
  assert.equal(remote.source.fileBytes, parts.reduce((a, p) => a + readFileSync(p).length, 0));
  assert.deepEqual(remote.model, local.model);
  assert.deepEqual(remote.forecast, local.forecast);
});

test("a gated repo: the token reaches the Hub; without it, a usage error saying so", async () => {
  const r = await doctor("test-org/Gated-GGUF", cfg, at(hub.url, TOKEN));
  assert.equal(r.source.hub!.files[0], "G-Q8_0.gguf");
  await assert.rejects(doctor("test-org/Gated-GGUF", cfg, at(hub.url)), (e: unknown) => e instanceof UsageError && /HTTP 401.*--token or HF_TOKEN/.test(e.message));
});

test("an unknown repo, an unknown quant, a non-GGUF file and truncated files: typed errors naming them", async () => {
  await assert.rejects(doctor("test-org/No-Such-GGUF:Q4_K_M", cfg, at(hub.url)), (e: unknown) =>
    e instanceof UsageError && e.code === "repo_not_found" && /test-org\/No-Such-GGUF: not found on .*nor is there a local file/.test(e.message));
  await assert.rejects(doctor(`${REPO}:IQ2_XXS`, cfg, at(hub.url)), (e: unknown) =>
    e instanceof UsageError && e.code === "quant_not_found" && /no IQ2_XXS GGUF.*available: .*Q8_0/.test(e.message));
  await assert.rejects(doctor(`${REPO}:Q4_0`, cfg, at(hub.url)), (e: unknown) =>
    e instanceof FormatError && e.code === "bad_magic" && e.file.endsWith("/Tiny-MoE-Q4_0.gguf") && /not a GGUF/.test(e.message));
  await assert.rejects(doctor(`${REPO}:Q6_K`, cfg, at(hub.url)), (e: unknown) => e instanceof FormatError && e.file.endsWith("/Tiny-MoE-Q6_K.gguf") && e.code === "truncated" && /at byte offset 99998: file ends after 2 bytes while reading "tokenizer.ggml.tokens"/.test(e.message));
  await assert.rejects(doctor(`${REPO}:Q5_K_M`, cfg, at(hub.url)), (e: unknown) =>
    e instanceof FormatError && e.code === "tensor_out_of_bounds" && e.file.endsWith("/Tiny-MoE-Q5_K_M.gguf") && /ends past the end of the file \(270000 bytes\)/.test(e.message));
});

test("a target is a Hub spec unless it exists here or reads as a path", () => {
  const local = join(tmp, "here.gguf");
  writeFileSync(local, "x");
  for (const s of ["org/Repo-GGUF", "org/Repo-GGUF:Q4_K_M", "org/Repo-GGUF:dir/File-Q8_0.gguf", "hf.co/org/Repo-GGUF", "https://huggingface.co/org/Repo-GGUF"]) assert.equal(isHubSpec(s), true, s);
  for (const s of ["models/x.gguf", "./org/Repo", "/abs/org/Repo", "a/b/c", "model.gguf", "https://example.com/x.gguf"]) assert.equal(isHubSpec(s), false, s);
});
