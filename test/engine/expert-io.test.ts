// The resident/stream gate and cache sizing, and the standing invariant that output does not depend on
// where experts come from: resident vs streamed, packed dir vs plain GGUF, any cache size.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decideExpertIO, STREAM_THRESHOLD } from "../../src/engine/expert-io.js";
import { defaultEngineConfig, parseSize, type EngineConfig } from "../../src/engine/config.js";
import { expertLayout } from "../../src/engine/expert-layout.js";
import { loadModel } from "../../src/engine/load.js";
import { Session } from "../../src/engine/session.js";
import { packModel } from "../../src/experts/pack.js";
import { formatBytes } from "../../src/util/bytes.js";
import { UsageError } from "../../src/util/errors.js";
import { smallVocabModel, testModel } from "../helpers/models.js";

const G = 2 ** 30, M = 2 ** 20;
const x = { expertBytes: 10 * G, denseBytes: 1 * G, kvBytes: 0.5 * G, slotBytes: 4 * M, minSlots: 8 };
const cfg = (c: Partial<EngineConfig>) => ({ expertIo: "auto" as const, expertCache: 0, ...c });
/** A budget set by --mem-budget (the limit that set it only changes the reason's wording). */
const flag = (bytes: number) => ({ bytes, why: `--mem-budget ${formatBytes(bytes)}` });
const any = flag(64 * G);

test("parseSize: plain bytes and binary units", () => {
  assert.equal(parseSize("123", "--x"), 123);
  assert.equal(parseSize("512M", "--x"), 512 * M);
  assert.equal(parseSize("1.5G", "--x"), 1.5 * G);
  assert.equal(parseSize("8GiB", "--x"), 8 * G);
  assert.equal(parseSize("4gb", "--x"), 4 * G);
  assert.throws(() => parseSize("lots", "--mem-budget"), /--mem-budget must be a size like 512M or 8G, got 'lots'/);
});

test("auto streams exactly when experts exceed 0.75 x the budget, and says why, naming the limit", () => {
  const atEdge = x.expertBytes / STREAM_THRESHOLD;
  const r = decideExpertIO(cfg({}), x, flag(atEdge));
  assert.equal(r.mode, "resident");
  assert.equal(r.cacheBytes, x.expertBytes);
  assert.match(r.reason, /experts resident \(experts 10\.0 GiB <= 0\.75 x --mem-budget 13\.3 GiB/);
  const s = decideExpertIO(cfg({}), x, { bytes: atEdge - 1, why: "cgroup limit 13.3 GiB" });
  assert.equal(s.mode, "stream");
  assert.match(s.reason, /streamed from disk \(experts 10\.0 GiB > 0\.75 x cgroup limit 13\.3 GiB\)/);
});

test("auto streams when experts under the threshold would not fit beside dense, KV, what the process holds and headroom", () => {
  // 10 GiB experts <= 0.75 x 13.5 GiB, but 10 + 1 (dense) + 0.5 (KV) + 1 (held) + 1.35 (headroom) > 13.5
  const big = { ...x, heldBytes: 1 * G };
  const s = decideExpertIO(cfg({}), big, flag(13.5 * G));
  assert.equal(s.mode, "stream");
  assert.match(s.reason, /experts 10\.0 GiB \+ dense 1\.00 GiB \+ KV 512 MiB \+ held 1\.00 GiB \+ headroom > --mem-budget 13\.5 GiB/);
  // In 14 GiB it fits: 10 + 1 + 0.5 + 1 + 1.4 = 13.9
  assert.equal(decideExpertIO(cfg({}), big, flag(14 * G)).mode, "resident");
});

test("derived cache = budget - dense - KV - held - staging - headroom; an explicit cache wins; capped at all experts; too small refused", () => {
  assert.equal(decideExpertIO(cfg({}), x, flag(8 * G)).cacheBytes, 8 * G - x.denseBytes - x.kvBytes - 0.1 * 8 * G);
  const s = decideExpertIO(cfg({}), { ...x, heldBytes: 100 * M, stagingBytes: 160 * M }, flag(8 * G));
  assert.equal(s.cacheBytes, 8 * G - x.denseBytes - x.kvBytes - 100 * M - 160 * M - 0.1 * 8 * G);
  assert.match(s.reason, /budget - dense 1\.00 GiB - KV 512 MiB - held 100 MiB - prefetch staging 160 MiB - headroom/);
  // Headroom never below 256 MiB: 2 GiB - 1 - 0.5 - 0.25 = 0.25 GiB
  assert.equal(decideExpertIO(cfg({}), x, flag(2 * G)).cacheBytes, 0.25 * G);
  assert.equal(decideExpertIO(cfg({ expertIo: "stream", expertCache: 2 * G }), x, any).cacheBytes, 2 * G);
  assert.equal(decideExpertIO(cfg({ expertIo: "stream", expertCache: 64 * G }), x, any).cacheBytes, x.expertBytes, "never more than all experts");
  // A budget that leaves no headroom still gets the minimum: the fewest slots one token needs.
  const min = x.minSlots * x.slotBytes;
  assert.equal(decideExpertIO(cfg({ expertIo: "stream" }), x, flag(1.5 * G + min)).cacheBytes, min);
  // One that cannot hold dense + KV + that minimum is refused, not left to outgrow its limit (a cgroup kills it).
  assert.throws(() => decideExpertIO(cfg({ expertIo: "stream" }), x, flag(1.5 * G + min - 1)), (e: unknown) =>
    e instanceof UsageError && e.code === "memory_budget" && /^dense 1\.00 GiB \+ KV 512 MiB \+ held 0 B \+ the 8 experts one token needs \(32\.0 MiB\) = 1\.53 GiB > --mem-budget 1\.53 GiB: the model cannot run in this memory/.test(e.message));
  assert.throws(() => decideExpertIO(cfg({ expertIo: "stream", expertCache: 7 * x.slotBytes }), x, any), (e: unknown) => e instanceof UsageError && /fewer than the 8 experts one token needs/.test(e.message));
  assert.equal(decideExpertIO(cfg({ expertIo: "resident" }), x, flag(1 * G)).mode, "resident");
});

test("a backend that keeps its own copy of each cached expert (wasm) pays for both out of the budget", () => {
  const two = { ...x, copies: 2 };
  assert.equal(decideExpertIO(cfg({}), two, flag(8 * G)).cacheBytes, (8 * G - x.denseBytes - x.kvBytes - 0.1 * 8 * G) / 2);
  assert.equal(decideExpertIO(cfg({ expertIo: "stream", expertCache: 2 * G }), two, any).cacheBytes, G);
  assert.match(decideExpertIO(cfg({ expertIo: "stream", expertCache: 2 * G }), two, any).reason, /held 2x \(host \+ backend copy\)/);
  // auto streams once both copies would pass the threshold
  const budget = (x.expertBytes * 1.5) / STREAM_THRESHOLD;
  assert.equal(decideExpertIO(cfg({}), x, flag(budget)).mode, "resident");
  assert.equal(decideExpertIO(cfg({}), two, flag(budget)).mode, "stream");
});

test("identical logits and greedy tokens: resident vs stream, GGUF vs packed, prefetch on/off, cache from the minimum to full", async () => {
  // The vocabulary cut to 8192 tokens: thirteen loads of the 151k-token tokenizer and head cost most of the time.
  const gguf = await smallVocabModel({ type: "Q4_K", seed: 11, nVocab: 8192 });
  const dir = mkdtempSync(join(tmpdir(), "moestream-io-"));
  try {
    const packed = join(dir, "m.moe");
    await packModel(gguf, packed, { experts: expertLayout });
    const prompt = "Streaming experts must not change a single logit.";
    const run = async (path: string, c: Partial<EngineConfig>) => {
      const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 128, ...c }));
      try {
        const s = new Session(lm);
        const ids = lm.tokenizer.encode(prompt);
        const logits = await s.eval(ids, "all");
        s.reset();
        const toks: number[] = [];
        for await (const st of s.generate(ids, { maxTokens: 8, sampling: { temperature: 0 }, stopAtEog: false })) toks.push(st.token);
        return { logits, toks, mode: lm.expertIO.mode, slots: lm.experts.nSlots };
      } finally {
        await lm.close();
      }
    };
    const ref = await run(gguf, { expertIo: "resident" });
    assert.equal(ref.mode, "resident");
    const slot = 4096 * Math.ceil((3 * 256 * 256 * 144) / 256 / 4096); // a Q4_K expert record rounded to 4 KiB
    for (const path of [gguf, packed]) {
      const stream = (slots: number, prefetch: boolean) => ({ expertIo: "stream" as const, expertCache: slots * slot, prefetch });
      for (const c of [{ expertIo: "resident" as const }, stream(4, false), stream(4, true), stream(10, false), stream(10, true), stream(64, true)]) {
        const r = await run(path, c);
        assert.equal(r.mode, c.expertIo);
        assert.deepEqual(r.logits, ref.logits, `${path} ${JSON.stringify(c)}`);
        assert.deepEqual(r.toks, ref.toks, `${path} ${JSON.stringify(c)}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a missing layer file is refused, unless --allow-missing-experts: then its experts output zeros, with one warning", async () => {
  const gguf = await testModel({ type: "Q8_0", seed: 3 });
  const dir = mkdtempSync(join(tmpdir(), "moestream-missing-"));
  try {
    const packed = join(dir, "m.moe");
    await packModel(gguf, packed, { experts: expertLayout });
    const { unlinkSync } = await import("node:fs");
    unlinkSync(join(packed, "experts", "layer_002.bin"));
    await assert.rejects(loadModel(packed, defaultEngineConfig({ expertIo: "stream" })), /layer_002\.bin.*layer file is missing/);
    const lm = await loadModel(packed, defaultEngineConfig({ expertIo: "stream", allowMissingExperts: true, backend: "scalar" }));
    try {
      assert.equal(lm.warnings.length, 1);
      assert.match(lm.warnings[0], /1 expert layer file\(s\) missing, their experts output zeros .*layer_002\.bin/);
      // Zero experts: layer 2's MoE adds nothing, so the logits differ from the intact model's, and stay finite.
      const s = new Session(lm);
      const logits = await s.eval(lm.tokenizer.encode("Hello"), "last");
      assert.ok(logits.every(Number.isFinite));
      const w = await lm.experts.acquire(2, [0]);
      lm.experts.release(2, [0]);
      for (const m of [w[0].gate, w[0].up, w[0].down]) assert.ok((m as unknown as { bytes: Uint8Array }).bytes.every((b) => b === 0), "all-zero blocks decode to 0");
    } finally {
      await lm.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
