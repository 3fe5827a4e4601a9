// pull against a local stand-in for the Hugging Face Hub, through the real @huggingface/hub client: choice by
// quant tag or file, split GGUFs, resume, checksum refusal, offline use, and the errors that list what exists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pull, type PullOptions } from "../../src/engine/pull/index.js";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { FormatError, ModelError, NetworkError, UsageError } from "../../src/util/errors.js";
import { smallVocabModel } from "../helpers/models.js";
import { splitGGUF } from "../helpers/split-gguf.js";
import { mergeSplitGGUF } from "../../src/format/gguf/split.js";
import { llamaLogitsAll } from "../helpers/llama.js";
import { startHubStandIn } from "../helpers/hub-server.js";

const tmp = mkdtempSync(join(tmpdir(), "moestream-pull-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const A = readFileSync(await smallVocabModel({ type: "Q4_K", seed: 11, nVocab: 8192 }));
const B = readFileSync(await smallVocabModel({ type: "Q8_0", expertType: "MXFP4", seed: 11, nVocab: 8192 }));
const splitParts = [join(tmp, "a-00001-of-00002.gguf"), join(tmp, "a-00002-of-00002.gguf")];
writeFileSync(join(tmp, "a.gguf"), A);
await splitGGUF(join(tmp, "a.gguf"), splitParts);
const [S1, S2] = splitParts.map((p) => readFileSync(p));
const REPO = "test-org/Tiny-MoE-GGUF";
const files = {
  "README.md": new TextEncoder().encode("# Tiny-MoE\n"),
  "Tiny-MoE-Q4_K_S.gguf": A,
  "Tiny-MoE-UD-Q8_K_XL.gguf": B,
  "Q4_K_M/Tiny-MoE-Q4_K_M-00001-of-00002.gguf": S1,
  "Q4_K_M/Tiny-MoE-Q4_K_M-00002-of-00002.gguf": S2,
  "mmproj-F16.gguf": randomBytes(4096),
};
const TOKEN = "hf_standin0123";
const hub = await startHubStandIn({ [REPO]: { files, xet: true }, "test-org/Gated-GGUF": { files: { "Gated-Q4_0.gguf": randomBytes(70_000) }, token: TOKEN },
  "test-org/Tiny-MoE": { files: { "README.md": new TextEncoder().encode("safetensors only\n"), "config.json": new TextEncoder().encode("{}") } },
});
test.after(() => hub.close());

let n = 0;
/** A fresh cache per test unless one is given: tests stay independent. */
function opts(o: Partial<PullOptions> = {}): PullOptions {
  return { cacheDir: join(tmp, `cache-${n++}`), hubUrl: hub.url, ...o };
}
/** The CDN's file reads since log entry `from` (the client's one-byte size probes left out). */
const cdnGets = (from: number) => hub.log.slice(from).filter((l) => l.origin === "cdn" && l.method === "GET" && l.range !== "bytes=0-0");

test("a quant tag picks its file case-insensitively; the bytes are the Hub's; a second pull is answered by the cache", async () => {
  const o = opts();
  const seen: [number, number][] = [];
  const r = await pull(`${REPO}:q4_k_s`, { ...o, onProgress: (d, t) => seen.push([d, t]) });
  assert.deepEqual(r.files, [join(o.cacheDir, "test-org", "Tiny-MoE-GGUF", "Tiny-MoE-Q4_K_S.gguf")]);
  assert.ok(readFileSync(r.files[0]).equals(A));
  assert.equal(r.downloaded, A.length);
  // The size probe got the Hub's xet file info (as for most files on the Hub); the bytes came by the plain URL.
  assert.ok(!hub.log.some((l) => l.origin === "cdn" && l.range === "bytes=0-0") && cdnGets(0).length === 1);
  assert.equal(seen.at(-1)![0], A.length);
  assert.ok(seen.every(([d, t], i) => t === A.length && (i === 0 || d >= seen[i - 1][0])), "progress rises to the file's size");
  const at = hub.log.length;
  const again = await pull(`${REPO}:Q4_K_S`, o);
  assert.deepEqual(again.files, r.files);
  assert.equal(again.downloaded, 0);
  assert.equal(cdnGets(at).length, 0, "no file bytes fetched again");
});

test("a tag matches the end of a longer quant (Q8_K_XL -> UD-Q8_K_XL); an exact file name or a hf.co/ prefix works too", async () => {
  const o = opts();
  const byTail = await pull(`${REPO}:Q8_K_XL`, o);
  assert.ok(byTail.files[0].endsWith("Tiny-MoE-UD-Q8_K_XL.gguf"));
  assert.ok(readFileSync(byTail.files[0]).equals(B));
  const byFile = await pull(`hf.co/${REPO}:Tiny-MoE-UD-Q8_K_XL.gguf`, o);
  assert.deepEqual(byFile.files, byTail.files);
});

test("no tag takes Q4_K_M: every part of the split GGUF, in order; the engine refuses a part by name", async () => {
  const o = opts();
  const r = await pull(REPO, o);
  assert.equal(r.files.length, 2);
  assert.ok(readFileSync(r.files[0]).equals(S1) && readFileSync(r.files[1]).equals(S2));
  assert.ok(r.files[0].endsWith(join("Q4_K_M", "Tiny-MoE-Q4_K_M-00001-of-00002.gguf")));
  await assert.rejects(loadModel(r.files[0], defaultEngineConfig({ backend: "scalar" })), (e: unknown) => {
    assert.ok(e instanceof ModelError && e.code === "split_gguf", String(e));
    assert.match(e.message, /part 1 of a 2-part split GGUF.*llama-gguf-split --merge/);
    return true;
  });
  // Naming one part by file fetches the whole model.
  const byPart = await pull(`${REPO}:Q4_K_M/Tiny-MoE-Q4_K_M-00002-of-00002.gguf`, o);
  assert.deepEqual(byPart.files, r.files);
});

test("merge: the parts become one GGUF byte-identical to the file they were split from; the parts go; later pulls reuse it", async () => {
  // The stand-in's parts are split GGUFs as llama.cpp reads them: it loads them to the unsplit file's logits.
  const tokens = [1, 2, 3, 4];
  assert.deepEqual(await llamaLogitsAll(splitParts[0], tokens, "batch"), await llamaLogitsAll(join(tmp, "a.gguf"), tokens, "batch"));
  const o = opts();
  let last = 0;
  const r = await pull(REPO, { ...o, merge: true, onMergeProgress: (d) => (last = d) });
  const merged = join(o.cacheDir, "test-org", "Tiny-MoE-GGUF", "Q4_K_M", "Tiny-MoE-Q4_K_M.gguf");
  assert.deepEqual(r.files, [merged]);
  assert.ok(readFileSync(merged).equals(A), "llama-gguf-split --merge's output is the unsplit file");
  assert.ok(last > 0);
  assert.ok(!existsSync(merged.replace(/\.gguf$/, "-00001-of-00002.gguf")) && !existsSync(merged.replace(/\.gguf$/, "-00002-of-00002.gguf")));
  const at = hub.log.length;
  assert.deepEqual((await pull(`${REPO}:Q4_K_M`, o)).files, [merged], "found again without --merge");
  assert.equal(cdnGets(at).length, 0);
  assert.deepEqual((await pull(`${REPO}:Q4_K_M`, { ...o, offline: true })).files, [merged]);
  // Parts out of order, or one missing, are refused by name, leaving nothing behind.
  const out = join(tmp, "bad-merge.gguf");
  await assert.rejects(mergeSplitGGUF([splitParts[1], splitParts[0]], out), (e: unknown) => e instanceof FormatError && e.code === "bad_split" && e.file === splitParts[1] && /part 2 of 2 .*expected part 1 of 2/.test(e.message));
  await assert.rejects(mergeSplitGGUF([splitParts[0]], out), (e: unknown) => e instanceof FormatError && /part 1 of 2 .*expected part 1 of 1/.test(e.message));
  assert.ok(!existsSync(out) && !existsSync(out + ".tmp"));
});

test("a file in a Hugging Face hub cache with the listed sha256 is linked, not downloaded; one with another digest is not used", async () => {
  const { createHash } = await import("node:crypto");
  const { symlinkSync } = await import("node:fs");
  const hf = join(tmp, "hf-hub");
  const repoDirHf = join(hf, "models--test-org--Tiny-MoE-GGUF");
  const put = (path: string, data: Uint8Array, blobName: string) => {
    mkdirSync(join(repoDirHf, "blobs"), { recursive: true });
    writeFileSync(join(repoDirHf, "blobs", blobName), data);
    mkdirSync(dirname(join(repoDirHf, "snapshots", "c0ffee", path)), { recursive: true });
    symlinkSync(join("..", "..", "blobs", blobName), join(repoDirHf, "snapshots", "c0ffee", path));
  };
  put("Tiny-MoE-Q4_K_S.gguf", A, createHash("sha256").update(A).digest("hex"));
  put("Tiny-MoE-UD-Q8_K_XL.gguf", B.subarray(0, 1000), "0".repeat(64)); // an older upload: another digest
  const o = opts({ hfCache: hf });
  const at = hub.log.length;
  const notes: string[] = [];
  const r = await pull(`${REPO}:Q4_K_S`, { ...o, onNote: (l) => notes.push(l) });
  assert.ok(readFileSync(r.files[0]).equals(A));
  assert.equal(r.downloaded, 0);
  assert.equal(cdnGets(at).length, 0);
  assert.match(notes.join("\n"), /linked from the Hugging Face cache/);
  const other = await pull(`${REPO}:UD-Q8_K_XL`, o);
  assert.equal(other.downloaded, B.length);
  assert.ok(readFileSync(other.files[0]).equals(B));
});

test("a connection cut mid-file resumes from the bytes received, with a Range request, and the file verifies", async () => {
  const at = hub.log.length;
  hub.cutAt.set("Tiny-MoE-Q4_K_S.gguf", 3_000_000);
  const r = await pull(`${REPO}:Q4_K_S`, opts());
  assert.ok(readFileSync(r.files[0]).equals(A));
  const gets = cdnGets(at);
  assert.equal(gets.length, 2, JSON.stringify(gets));
  const start = Number(/^bytes=(\d+)-/.exec(gets[1].range ?? "")?.[1]);
  assert.ok(start > 0 && start <= 3_000_000, `resumed at ${gets[1].range}`);
  assert.equal(r.downloaded, A.length, "each byte fetched once");
});

test("a partial download left by an earlier run resumes at its exact length", async () => {
  const o = opts({ retries: 0 });
  const dest = join(o.cacheDir, "test-org", "Tiny-MoE-GGUF", "Tiny-MoE-UD-Q8_K_XL.gguf");
  mkdirSync(dirname(dest), { recursive: true });
  writeFileSync(dest + ".part", B.subarray(0, 1_234_567));
  const at = hub.log.length;
  const r = await pull(`${REPO}:UD-Q8_K_XL`, o);
  assert.ok(readFileSync(r.files[0]).equals(B));
  assert.deepEqual(cdnGets(at).map((g) => g.range), [`bytes=1234567-${B.length - 1}`]);
  assert.equal(r.downloaded, B.length - 1_234_567);
  assert.ok(!existsSync(dest + ".part"));
});

test("bytes that do not hash to the Hub's sha256 are refused, naming the file, and deleted", async () => {
  hub.corrupt.add("Tiny-MoE-UD-Q8_K_XL.gguf");
  const o = opts();
  try {
    await assert.rejects(pull(`${REPO}:UD-Q8_K_XL`, o), (e: unknown) => {
      assert.ok(e instanceof FormatError && e.code === "checksum_mismatch", String(e));
      assert.match(e.message, /^Tiny-MoE-UD-Q8_K_XL\.gguf: sha256 of the downloaded bytes is [0-9a-f]{64}, the Hub lists [0-9a-f]{64}/);
      return true;
    });
  } finally {
    hub.corrupt.clear();
  }
  const dest = join(o.cacheDir, "test-org", "Tiny-MoE-GGUF", "Tiny-MoE-UD-Q8_K_XL.gguf");
  assert.ok(!existsSync(dest) && !existsSync(dest + ".part"));
});

test("offline: the cache answers without a request; an unreachable Hub falls back to it with a note", async () => {
  const o = opts();
  const first = await pull(`${REPO}:Q4_K_S`, o);
  const at = hub.log.length;
  const off = await pull(`${REPO}:q4_k_s`, { ...o, offline: true });
  assert.deepEqual(off.files, first.files);
  assert.ok(off.offline);
  assert.equal(hub.log.length, at, "offline asks nothing of the network");
  // A closed port: connection refused.
  const dead = await startHubStandIn({});
  const deadUrl = dead.url;
  await dead.close();
  const notes: string[] = [];
  const fallback = await pull(`${REPO}:Q4_K_S`, { ...o, hubUrl: deadUrl, onNote: (l) => notes.push(l) });
  assert.deepEqual(fallback.files, first.files);
  assert.match(notes.join("\n"), /cannot reach .*ECONNREFUSED.*using the cache/);
  // What the cache lacks is refused: a model not downloaded, a repo never pulled.
  await assert.rejects(pull(`${REPO}:UD-Q8_K_XL`, { ...o, offline: true }), (e: unknown) => e instanceof UsageError && /Tiny-MoE-UD-Q8_K_XL\.gguf not in the cache/.test(e.message));
  await assert.rejects(pull(`${REPO}:Q4_K_S`, opts({ hubUrl: deadUrl })), (e: unknown) => e instanceof NetworkError && /cannot reach .*ECONNREFUSED.*not in the cache/.test(e.message));
});

test("an unknown repo or quant is a usage error that says what exists; a gated repo needs its token", async () => {
  await assert.rejects(pull("test-org/Nope-GGUF:Q4_K_M", opts()), (e: unknown) => {
    assert.ok(e instanceof UsageError && e.code === "repo_not_found", String(e));
    assert.match(e.message, /test-org\/Nope-GGUF: not found .*HTTP 401.*--token or HF_TOKEN/);
    return true;
  });
  await assert.rejects(pull(`${REPO}:Q5_K_M`, opts()), (e: unknown) => {
    assert.ok(e instanceof UsageError && e.code === "quant_not_found", String(e));
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    assert.equal(e.message, `${REPO}: no Q5_K_M GGUF (did you mean Q4_K_M?); available: Q4_K_M (${mib(S1.length + S2.length)} MiB, 2 parts), Q4_K_S (${mib(A.length)} MiB), UD-Q8_K_XL (${mib(B.length)} MiB)`);
    return true;
  });
  await assert.rejects(pull("not a repo", opts()), (e: unknown) => e instanceof UsageError && e.code === "bad_repo");
  await assert.rejects(pull("test-org/Tiny-MoE", opts()), (e: unknown) => e instanceof UsageError && e.code === "no_gguf" && /test-org\/Tiny-MoE has no \.gguf files/.test(e.message));
  await assert.rejects(pull("test-org/Gated-GGUF:Q4_0", opts()), (e: unknown) => e instanceof UsageError && /HTTP 401.*restricted.*--token or HF_TOKEN/.test(e.message));
  await assert.rejects(pull("test-org/Gated-GGUF:Q4_0", opts({ token: "hf_wrong" })), (e: unknown) => e instanceof UsageError && e.code === "repo_forbidden");
  const at = hub.log.length;
  const r = await pull("test-org/Gated-GGUF:Q4_0", opts({ token: TOKEN }));
  assert.equal(readFileSync(r.files[0]).length, 70_000);
  assert.ok(hub.log.slice(at).filter((l) => l.origin === "hub").every((l) => l.auth === `Bearer ${TOKEN}`), "every Hub request carries the token");
});
