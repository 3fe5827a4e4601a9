// doctor: sizes from the header against hand-computed values, remote headers through HTTP range requests, the
// machine probe, and the bandwidth forecast's arithmetic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createReadStream, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { doctor, readModelSource } from "../../src/engine/doctor.js";
import { CALIBRATION, forecastDecode, forecastPrefill, hitRate } from "../../src/engine/forecast.js";
import { expertKey, probeAttention, probeExpertFfn, probeMatmul } from "../../src/engine/compute-probe.js";
import { NativeBackend } from "../../src/backends/cpu/native.js";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import { probeDisk, probeMemoryBandwidth } from "../../src/engine/probe.js";
import { FormatError, UsageError } from "../../src/util/errors.js";
import { smallVocabModel } from "../helpers/models.js";

// ggml block sizes, by hand: Q8_0 34 bytes per 32 values, Q5_K 176 per 256, F32 4 per value.
const q8 = (values: number) => (values / 32) * 34;
const q5k = (values: number) => (values / 256) * 176;
const f32 = (values: number) => values * 4;

// tiny: 4 layers, 256 wide, 4 q heads and 2 kv heads of 64, 16 experts of 256, 4 used, embeddings tied; vocabulary cut to 8192.
const tiny = () => smallVocabModel({ type: "Q8_0", seed: 11, expertType: "Q5_K", nVocab: 8192 });
// mixtral-tiny: 3 layers, 256 wide, same heads (no q/k norms), 8 experts of 256, 2 used, an output head of its own.
const mixtral = () => smallVocabModel({ preset: "mixtral-tiny", type: "Q8_0", seed: 11, nVocab: 8192 });

test("tiny (tied embeddings, Q5_K experts): dense, record, expert and per-token bytes by type, as computed by hand", async () => {
  const { shape } = await readModelSource(await tiny());
  const attn = q8(256 * 256) * 2 + q8(256 * 128) * 2; // q, output; k, v
  const small = f32(256) * 2 + f32(64) * 2 + f32(256 * 16); // attn/ffn norms, q/k norms, router
  assert.equal(shape.denseBytes, q8(256 * 8192) + 4 * (attn + small) + f32(256));
  const record = 3 * q5k(256 * 256); // gate, up, down: 135168 = 33 x 4096, no padding
  assert.equal(shape.slotBytes, record);
  assert.equal(shape.expertBytes, 4 * 16 * record);
  assert.deepEqual(shape.layers.map((l) => [l.layer, l.experts, l.recordBytes]), [0, 1, 2, 3].map((l) => [l, 16, record]));
  // Tied: the whole embedding table is read per token as the output head.
  assert.deepEqual(shape.tokenBytes, { Q8_0: q8(256 * 8192) + 4 * attn, F32: 4 * small + f32(256), Q5_K: 4 * 4 * record });
  assert.equal(shape.tokenExpertBytes, 4 * 4 * record);
  assert.deepEqual([shape.info.nLayer, shape.info.nExpert, shape.info.nExpertUsed], [4, 16, 4]);
});

test("mixtral-tiny (own output head): one embedding row per token, the head in full; records padded to 4 KiB", async () => {
  const { shape } = await readModelSource(await mixtral());
  const attn = q8(256 * 256) * 2 + q8(256 * 128) * 2;
  const small = f32(256) * 2 + f32(256 * 8);
  assert.equal(shape.denseBytes, 2 * q8(256 * 8192) + 3 * (attn + small) + f32(256));
  const parts = 3 * q8(256 * 256); // 208896 = 51 x 4096
  assert.equal(shape.slotBytes, Math.ceil(parts / 4096) * 4096);
  assert.equal(shape.expertBytes, 3 * 8 * shape.slotBytes);
  assert.deepEqual(shape.tokenBytes, { Q8_0: q8(256) + q8(256 * 8192) + 3 * attn + 3 * 2 * parts, F32: 3 * small + f32(256) });
});

/** Serves `file` with Range support (or without, or 404), counting the bytes sent. */
function serve(file: string, mode: "range" | "no-range" | "404"): Promise<{ url: string; sent: () => number; close(): Promise<void> }> {
  const size = statSync(file).size;
  let sent = 0;
  const server: Server = createServer((req, res) => {
    if (mode === "404") return void res.writeHead(404).end("not found");
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (mode === "no-range" || !m) {
      res.writeHead(200, { "content-length": size });
      return void createReadStream(file).on("data", (d) => (sent += d.length)).pipe(res);
    }
    const start = Number(m[1]), end = Math.min(Number(m[2]), size - 1);
    if (start >= size) return void res.writeHead(416, { "content-range": `bytes */${size}` }).end();
    res.writeHead(206, { "content-range": `bytes ${start}-${end}/${size}`, "content-length": end - start + 1 });
    createReadStream(file, { start, end }).on("data", (d) => (sent += d.length)).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo;
    resolve({ url: `http://127.0.0.1:${port}/models/tiny.gguf`, sent: () => sent, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) });
  }));
}

test("a remote header read through HTTP range requests gives the local file's figures, fetching only the header", async () => {
  const path = await mixtral();
  const srv = await serve(path, "range");
  try {
    const cfg = { ...defaultEngineConfig(), memBudget: 2 ** 30 };
    const opts = { memGBps: 10, diskGBps: 1, promptTokens: 0 }; // probes are checked apart: here the same numbers feed both
    const remote = await doctor(srv.url, cfg, opts);
    const local = await doctor(path, cfg, opts);
    assert.equal(remote.source.kind, "url");
    assert.deepEqual(remote.model, local.model);
    assert.equal(remote.source.fileBytes, statSync(path).size);
    assert.deepEqual(remote.forecast, local.forecast);
    assert.ok(remote.source.headerBytesFetched! < statSync(path).size / 2, `fetched ${remote.source.headerBytesFetched} of ${statSync(path).size}`);
    assert.equal(srv.sent(), remote.source.headerBytesFetched);
  } finally {
    await srv.close();
  }
});

test("a server that ignores ranges, a 404 and a file that is not GGUF are refused by name", async () => {
  const path = await mixtral();
  const cfg = defaultEngineConfig();
  for (const [mode, re] of [["no-range", /ignores HTTP range requests/], ["404", /HTTP 404/]] as const) {
    const srv = await serve(path, mode);
    try {
      await assert.rejects(doctor(srv.url, cfg, { memGBps: 10, diskGBps: 1, promptTokens: 0 }), (e: unknown) => e instanceof UsageError && re.test(e.message) && e.message.includes(srv.url));
    } finally {
      await srv.close();
    }
  }
  const junk = join(tmpdir(), `doctor-junk-${process.pid}.gguf`);
  writeFileSync(junk, Buffer.alloc(4096, 7));
  try {
    await assert.rejects(doctor(junk, cfg, { memGBps: 10, diskGBps: 1 }), (e: unknown) => e instanceof FormatError && /not a GGUF/.test(e.message));
  } finally {
    rmSync(junk, { force: true });
  }
  await assert.rejects(doctor(join(tmpdir(), "no-such-model.gguf"), cfg), (e: unknown) => e instanceof UsageError && /not found/.test(e.message));
});

test("the probe returns positive, finite figures: memory bandwidth, and record reads of the model file", async () => {
  const m = probeMemoryBandwidth(2, 32 * 2 ** 20, 3);
  assert.ok(Number.isFinite(m.gbps) && m.gbps > 0 && m.best >= m.gbps, JSON.stringify(m));
  const path = await tiny();
  const d = await probeDisk([path], 135168, 4, 4 * 2 ** 20);
  assert.ok(Number.isFinite(d.gbps) && d.gbps > 0 && d.p99Ms >= d.p50Ms && d.p50Ms > 0, JSON.stringify(d));
  assert.equal(d.reads, Math.ceil((4 * 2 ** 20) / 135168));
});

test("forecast: resident is bytes over the calibrated bandwidth plus fixed costs; streamed adds misses over the disk", async () => {
  const { shape } = await readModelSource(await tiny());
  const C = CALIBRATION;
  const bytes = Object.values(shape.tokenBytes).reduce((a, b) => a + b, 0);
  const r = forecastDecode({ shape, decision: { mode: "resident", cacheBytes: shape.expertBytes }, memGBps: 20 });
  const ms = ((bytes / C.memEfficiency + 4 * C.layerBytes + C.tokenBytes) / 20e9) * 1000;
  assert.ok(Math.abs(r.decode.mid - 1000 / ms) < 1e-9 * r.decode.mid, `${r.decode.mid} vs ${1000 / ms}`);
  assert.equal(r.bytesPerToken, bytes);
  // Streamed with 32 slots: 8 per layer = 2x a token's 4 experts; 16 experts = 4x, all cached.
  const s = forecastDecode({ shape, decision: { mode: "stream", cacheBytes: 32 * shape.slotBytes }, memGBps: 20, diskGBps: 0.5 });
  assert.equal(s.cacheMultiple, 2);
  assert.equal(s.hitRate.mid, 0.556); // the Qwen3 trace at 2x (docs/cache-policy.md)
  const disk = 4 * 4 * (1 - 0.556) * shape.slotBytes;
  assert.ok(Math.abs(s.diskBytesPerToken.mid - disk) < 1e-6);
  assert.ok(Math.abs(s.decode.mid - 1000 / (ms + (disk / 0.5e9) * 1000)) < 1e-9 * s.decode.mid);
  assert.ok(s.decode.low < s.decode.mid && s.decode.mid <= s.decode.high);
});

test("hit rate: the table's points, rising between them, 1 once every expert fits", () => {
  assert.equal(hitRate(1, 16, "mid"), 0.375);
  assert.equal(hitRate(4, 16, "mid"), 0.732);
  assert.equal(hitRate(16, 16, "mid"), 1);
  assert.ok(Math.abs(hitRate(10, 16, "mid") - (0.732 + (0.268 * 6) / 12)) < 1e-12);
  assert.ok(Math.abs(hitRate(3, 4, "mid") - (0.556 + 0.444 / 2)) < 1e-12); // Mixtral-like: 4x is every expert
  let prev = 0;
  for (let m = 1; m <= 32; m += 0.5) {
    const h = hitRate(m, 32, "low");
    assert.ok(h >= prev && h <= hitRate(m, 32, "mid") && hitRate(m, 32, "mid") <= hitRate(m, 32, "high"), `at ${m}`);
    prev = h;
  }
});

test("prefill shape: the dense matrices a prompt token multiplies by (no embedding, no head), the head, the attention width", async () => {
  const { shape } = await readModelSource(await tiny());
  const attn = q8(256 * 256) * 2 + q8(256 * 128) * 2;
  assert.deepEqual(shape.matmulBytes, { Q8_0: 4 * attn, F32: 4 * f32(256 * 16) }); // attention, router: norms are not matrices
  assert.deepEqual(shape.head, { type: "Q8_0", bytes: q8(256 * 8192) }); // tied: the embedding table
  assert.deepEqual(shape.attention, { layers: 4, width: 4 * 64, nHead: 4, nHeadKv: 2, headDim: 64 });
});

test("prefill forecast: matmuls at the probed GFLOP/s or their weight read, whichever is longer; experts at their share of the batch", async () => {
  const { shape } = await readModelSource(await tiny());
  const C = CALIBRATION;
  const mem = 20e9 * C.memEfficiency;
  const dense = { Q8_0: 100, F32: 50 };
  const base = { shape, decision: { mode: "resident" as const, cacheBytes: shape.expertBytes }, memGBps: 20, denseGflops: dense, batch: 512 };
  // By hand for a 16-token prompt: 16 tokens x 4 picks of 16 experts leave each out with probability (3/4)^16.
  const T = 16;
  const touched = 16 * (1 - 0.75 ** 16);
  const width = (T * 4) / touched;
  const qParams = 4 * (256 * 256 * 2 + 256 * 128 * 2), fParams = 4 * 256 * 16;
  const denseS = Math.max((2 * qParams * T) / 100e9, (4 * (q8(256 * 256) * 2 + q8(256 * 128) * 2)) / mem) + Math.max((2 * fParams * T) / 50e9, (4 * f32(256 * 16)) / mem);
  const partS = Math.max((2 * 256 * 256 * width) / 80e9, q5k(256 * 256) / mem);
  const expertsS = 4 * touched * 3 * partS;
  const attentionS = (4 * 4 * 256 * ((T * (T + 1)) / 2)) / 50e9;
  const fixedS = q8(256 * 8192) / mem + (4 * C.layerBytes + C.tokenBytes) / 20e9;
  const r = forecastPrefill({ ...base, expertGflops: { Q5_K: 80 }, promptTokens: T });
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-9 * Math.abs(b), `${what}: ${a} vs ${b}`);
  close(r.ms.dense, denseS * 1000, "dense");
  close(r.ms.experts, expertsS * 1000, "experts");
  close(r.ms.attention, attentionS * 1000, "attention");
  close(r.ms.fixed, fixedS * 1000, "fixed");
  close(r.tokPerSec.mid, T / (denseS + expertsS + attentionS + fixedS), "tok/s");
  assert.equal(r.ms.disk, 0);
  assert.ok(r.tokPerSec.low < r.tokPerSec.mid);
  close(r.expertsTouched, touched, "touched");
  // The fused layout's rate, where all three parts share a type, gives the same figure as the parts' own.
  const fused = forecastPrefill({ ...base, expertGflops: { "Q5_K+Q5_K+Q5_K": 80 }, promptTokens: T });
  close(fused.ms.experts, r.ms.experts, "fused experts");
  // 1024 tokens: two batches of 512, the second attending to the first's 512 positions too.
  const two = forecastPrefill({ ...base, expertGflops: { Q5_K: 80 }, promptTokens: 1024 });
  close(two.ms.attention, ((4 * 4 * 256 * ((512 * 513) / 2 + (512 * 512 + (512 * 513) / 2))) / 50e9) * 1000, "two batches' attention");
  // A probed attention time (one layer, first batch) scales by each batch's query-key pairs: the second batch has 3x the first's.
  const probed = forecastPrefill({ ...base, expertGflops: { Q5_K: 80 }, promptTokens: 1024, attentionMs: 2 });
  close(probed.ms.attention, 4 * 2 * (1 + (512 * 512 + (512 * 513) / 2) / ((512 * 513) / 2)), "probed attention");
  // Streamed with a quarter of the experts cached: each batch reads the touched experts' misses.
  const s = forecastPrefill({ ...base, decision: { mode: "stream", cacheBytes: 16 * shape.slotBytes }, diskGBps: 0.5, expertGflops: { Q5_K: 80 }, promptTokens: T });
  close(s.ms.disk, ((4 * touched * 0.75 * shape.slotBytes) / 0.5e9) * 1000, "disk");
});

test("the compute probe: the native backend's matmul, fused expert FFN and attention give positive, finite figures; scalar has no fused FFN", async () => {
  const be = new NativeBackend({ threads: 2 });
  const m = await probeMatmul(be, ["Q4_K", "Q8_0", "F32", "IQ2_XXS"], 256, 8, 2);
  for (const t of ["Q4_K", "Q8_0", "F32", "IQ2_XXS"]) assert.ok(Number.isFinite(m.gflops[t]) && m.gflops[t] > 0, `${t}: ${m.gflops[t]}`);
  assert.equal((await probeMatmul(be, ["Q4_K"], 32, 8, 1)).gflops.Q4_K, undefined); // 32 values do not fill a 256-value block
  const { shape } = await readModelSource(await tiny());
  const g = await probeExpertFfn(be, shape.layers[0].parts, 2, 4, 2);
  assert.ok(g !== undefined && Number.isFinite(g) && g > 0, `${g}`);
  assert.equal(await probeExpertFfn(new ScalarBackend(), shape.layers[0].parts, 2, 4, 1), undefined);
  assert.equal(expertKey(shape.layers[0].parts), "Q5_K+Q5_K+Q5_K");
  const a = await probeAttention(be, shape.attention, 16, 1);
  assert.ok(a !== undefined && Number.isFinite(a) && a > 0, `${a}`);
  assert.equal(await probeAttention(be, { nHead: 3, nHeadKv: 2, headDim: 64 }, 16), undefined); // heads do not group
});
