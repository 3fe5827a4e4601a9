// Routing traces: write/read round trip, acquire groups, and malformed files named by file, line and offset;
// version 2's layers without experts, and version 1 files still read.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { policyByName } from "../../src/experts/policies.js";
import { accessSequence, belady, replay, slotsForMultiple } from "../../src/experts/replay.js";
import { acquireGroups, expertLayers, readTrace, TraceFormatError, TraceWriter, type Trace, type TraceCall, type TraceHeader } from "../../src/experts/trace.js";
import { UsageError } from "../../src/util/errors.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-trace-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const header: TraceHeader = {
  model: { architecture: "qwen3moe", name: "t.gguf", nLayer: 2, nExpert: 8, k: 2, recordBytes: [4096, 4096] },
  routing: { kind: "realistic", skew: 1, locality: 0.5 },
  note: "test",
};

function writeSample(path: string): void {
  const w = TraceWriter.create(path, header);
  // Through the hook-shaped API, as the CLI does: layers of one forward, then endCall.
  w.route(0, Int32Array.of(3, 1, 1, 5, 7, 3), 3);
  w.route(1, Int32Array.of(0, 2, 2, 0, 6, 4), 3);
  w.endCall("prefill");
  w.write({ phase: "decode", nTokens: 1, routes: [Int32Array.of(4, 3), Int32Array.of(7, 0)] });
  w.close({ tokens: [42], observed: { policy: "lru", slots: 4, prefill: { hits: 0, misses: 9 }, decode: { hits: 1, misses: 3 } } });
}

test("trace round trip: header, calls in order, end line", () => {
  const p = join(dir, "rt.trace");
  writeSample(p);
  const t = readTrace(p);
  assert.deepEqual(t.header, header);
  assert.equal(t.calls.length, 2);
  // Each call keeps the line it was read from (line 1 is the header).
  assert.deepEqual(t.calls[0], { phase: "prefill", nTokens: 3, routes: [Int32Array.of(3, 1, 1, 5, 7, 3), Int32Array.of(0, 2, 2, 0, 6, 4)], line: 2 });
  assert.deepEqual(t.calls[1], { phase: "decode", nTokens: 1, routes: [Int32Array.of(4, 3), Int32Array.of(7, 0)], line: 3 });
  assert.deepEqual(t.end?.tokens, [42]);
  assert.equal(t.end?.observed?.decode.misses, 3);
  // A run cut short (no end line) still reads.
  const lines = readFileSync(p, "utf8").split("\n");
  writeFileSync(p, lines.slice(0, 3).join("\n") + "\n");
  assert.equal(readTrace(p).end, undefined);
  assert.equal(readTrace(p).calls.length, 2);
});

test("acquireGroups: distinct ids ascending, in groups of at most the capacity", () => {
  assert.deepEqual(acquireGroups(Int32Array.of(3, 1, 1, 5, 7, 3), 8), [[1, 3, 5, 7]]);
  assert.deepEqual(acquireGroups(Int32Array.of(3, 1, 1, 5, 7, 3), 3), [[1, 3, 5], [7]]);
  assert.deepEqual(acquireGroups(Int32Array.of(6, 2), 2), [[2, 6]]);
});

test("writer refuses calls that do not fit the model", () => {
  const w = TraceWriter.create(join(dir, "bad-write.trace"), header);
  try {
    assert.throws(() => w.write({ phase: "decode", nTokens: 1, routes: [Int32Array.of(1, 2)] }), UsageError); // one layer
    assert.throws(() => w.write({ phase: "decode", nTokens: 1, routes: [Int32Array.of(1, 8), Int32Array.of(1, 2)] }), /expert id 8 not in \[0, 8\)/);
    assert.throws(() => w.write({ phase: "decode", nTokens: 2, routes: [Int32Array.of(1, 2), Int32Array.of(1, 2)] }), /expected 4 expert ids/);
    w.route(0, Int32Array.of(1, 2), 1);
    assert.throws(() => w.route(0, Int32Array.of(1, 2), 1), /routed twice/);
    assert.throws(() => w.endCall("decode"), /layers 1 did not route/);
  } finally {
    w.close();
  }
  assert.throws(() => TraceWriter.create(join(dir, "x.trace"), { ...header, model: { ...header.model, recordBytes: [1] } }), /recordBytes/);
});

test("malformed traces: typed errors naming file, line and byte offset", () => {
  const good = join(dir, "good.trace");
  writeSample(good);
  const lines = readFileSync(good, "utf8").split("\n").slice(0, -1);
  const off = (i: number) => lines.slice(0, i).reduce((a, l) => a + Buffer.byteLength(l) + 1, 0);
  const cases: [string, string, number, RegExp][] = [
    ["empty", "", 1, /empty file/],
    ["not-json", lines[0] + "\n{oops\n", 2, /not JSON/],
    ["foreign", '{"format":"other","version":1}\n', 1, /not a moestream trace/],
    ["version", lines[0].replace('"version":2', '"version":99') + "\n", 1, /version 99 is not supported/],
    ["bad-model", lines[0].replace('"nExpert":8', '"nExpert":0') + "\n", 1, /nExpert/],
    ["phase", [lines[0], lines[1].replace('"prefill"', '"warmup"')].join("\n") + "\n", 2, /phase must be/],
    ["id-range", [lines[0], lines[1], lines[2].replace("[4,3]", "[4,9]")].join("\n") + "\n", 3, /layer 0: expert id 9 not in \[0, 8\)/],
    ["short", [lines[0], lines[1].replace("[3,1,1,5,7,3]", "[3,1,1,5,7]")].join("\n") + "\n", 2, /layer 0: expected 6 expert ids/],
    ["truncated", lines.slice(0, 2).join("\n") + "\n" + lines[2].slice(0, 20), 3, /not terminated by a newline/],
    ["after-end", [...lines, lines[2]].join("\n") + "\n", 5, /nothing may follow the end line/],
    ["observed", [...lines.slice(0, 3), lines[3].replace('"slots":4', '"slots":"4"')].join("\n") + "\n", 4, /end.observed must hold/],
  ];
  for (const [name, text, line, re] of cases) {
    const p = join(dir, `${name}.trace`);
    writeFileSync(p, text);
    assert.throws(() => readTrace(p), (e: unknown) => {
      assert.ok(e instanceof TraceFormatError, `${name}: ${e}`);
      assert.equal(e.file, p, name);
      assert.equal(e.line, line, name);
      assert.equal(e.offset, name === "empty" ? 0 : off(line - 1), name);
      assert.match(e.message, re, name);
      assert.ok(e.message.startsWith(`${p} at byte offset ${e.offset}: line ${line}: `), e.message);
      return true;
    });
  }
  assert.throws(() => readTrace(join(dir, "missing.trace")), (e: unknown) => e instanceof UsageError && /not found/.test(e.message));
});

// Version 2: a layer without experts (DeepSeek/GLM leading dense layers) has recordBytes 0 and null routes.
const denseFirst: TraceHeader = {
  model: { architecture: "deepseek2", name: "d.gguf", nLayer: 3, nExpert: 8, k: 2, recordBytes: [0, 4096, 8192] },
  routing: null,
};

test("v2: a dense first layer has null routes; round trip; the writer refuses routes for it", () => {
  const p = join(dir, "dense.trace");
  const w = TraceWriter.create(p, denseFirst);
  assert.throws(() => w.route(0, Int32Array.of(1, 2), 1), /layer 0 has no experts/);
  w.route(1, Int32Array.of(3, 1, 1, 5), 2);
  w.route(2, Int32Array.of(0, 2, 2, 0), 2);
  w.endCall("prefill"); // layer 0 never routes: not missing
  w.route(1, Int32Array.of(4, 3), 1);
  assert.throws(() => w.endCall("decode"), /layers 2 did not route/);
  w.route(2, Int32Array.of(7, 0), 1);
  w.endCall("decode");
  assert.throws(() => w.write({ phase: "decode", nTokens: 1, routes: [Int32Array.of(1, 2), Int32Array.of(1, 2), Int32Array.of(1, 2)] }), /layer 0 has no experts \(recordBytes 0\): its routes must be null/);
  assert.throws(() => w.write({ phase: "decode", nTokens: 1, routes: [null, null, Int32Array.of(1, 2)] }), /layer 1: expected 2 expert ids .* got none/);
  w.close();
  assert.throws(() => TraceWriter.create(join(dir, "y.trace"), { ...denseFirst, model: { ...denseFirst.model, recordBytes: [0, 0, 0] } }), /at least one not 0/);

  const lines = readFileSync(p, "utf8").split("\n");
  assert.match(lines[0], /"version":2/);
  assert.match(lines[1], /"routes":\[null,\[3,1,1,5\],\[0,2,2,0\]\]/);
  const t = readTrace(p);
  assert.deepEqual(t.header, { ...denseFirst, note: undefined });
  assert.deepEqual(expertLayers(t.header.model), [1, 2]);
  assert.deepEqual(t.calls.map((c) => c.routes), [[null, Int32Array.of(3, 1, 1, 5), Int32Array.of(0, 2, 2, 0)], [null, Int32Array.of(4, 3), Int32Array.of(7, 0)]]);

  // Malformed: an array where the header says no experts, null where it says experts.
  const bad = (name: string, text: string, re: RegExp) => {
    const q = join(dir, `${name}.trace`);
    writeFileSync(q, text);
    assert.throws(() => readTrace(q), (e: unknown) => e instanceof TraceFormatError && e.line === 2 && re.test(e.message), name);
  };
  bad("dense-routed", [lines[0], lines[1].replace("null,", "[1,2,3,4],")].join("\n") + "\n", /layer 0 has no experts/);
  bad("moe-null", [lines[0], lines[1].replace("[3,1,1,5]", "null")].join("\n") + "\n", /layer 1: expected 4 expert ids/);
});

test("v2: replay skips dense layers: same counts as the trace without them", () => {
  const calls: TraceCall[] = [
    { phase: "prefill", nTokens: 2, routes: [null, Int32Array.of(3, 1, 1, 5), Int32Array.of(0, 2, 2, 0)] },
    { phase: "decode", nTokens: 1, routes: [null, Int32Array.of(4, 3), Int32Array.of(7, 0)] },
    { phase: "decode", nTokens: 1, routes: [null, Int32Array.of(1, 5), Int32Array.of(2, 6)] },
  ];
  const withDense: Trace = { header: denseFirst, calls };
  const without: Trace = {
    header: { model: { ...denseFirst.model, nLayer: 2, recordBytes: [4096, 8192] }, routing: null },
    calls: calls.map((c) => ({ ...c, routes: c.routes.slice(1) })),
  };
  const seq = accessSequence(withDense, 3);
  assert.deepEqual(new Set(seq.layer), new Set([1, 2]), "no access in layer 0");
  assert.deepEqual([...seq.keys].slice(0, 3), [8 + 1, 8 + 3, 8 + 5], "keys are layer * nExpert + expert");
  assert.equal(slotsForMultiple(withDense, 1), 2 * 2, "k x the layers with experts");
  for (const slots of [2, 3, 4, 8]) {
    const a = replay(withDense, { slots, policy: policyByName("lru") }), b = replay(without, { slots, policy: policyByName("lru") });
    assert.deepEqual(a, b, `${slots} slots`);
    assert.deepEqual(belady(withDense, slots).total, belady(without, slots).total, `${slots} slots: belady`);
  }
});

test("v1 traces still read (every layer has experts); v1 allows no record size of 0 and no null routes", () => {
  const model = { architecture: "qwen3moe", name: "t.gguf", nLayer: 2, nExpert: 8, k: 2, recordBytes: [4096, 4096] };
  const head = (m: object) => JSON.stringify({ format: "moestream-trace", version: 1, model: m, routing: null });
  const call = '{"phase":"decode","nTokens":1,"routes":[[4,3],[7,0]]}';
  const p = join(dir, "v1.trace");
  writeFileSync(p, [head(model), call, '{"end":{"tokens":[1]}}'].join("\n") + "\n");
  const t = readTrace(p);
  assert.deepEqual(t.header, { model, routing: null, note: undefined });
  assert.deepEqual(t.calls, [{ phase: "decode", nTokens: 1, routes: [Int32Array.of(4, 3), Int32Array.of(7, 0)], line: 2 }]);
  assert.equal(replay(t, { slots: 4, policy: policyByName("lru") }).total.misses, 4);
  writeFileSync(p, [head({ ...model, recordBytes: [0, 4096] }), call].join("\n") + "\n");
  assert.throws(() => readTrace(p), (e: unknown) => e instanceof TraceFormatError && e.line === 1 && /version 1: every layer has experts/.test(e.message));
  writeFileSync(p, [head(model), call.replace("[4,3]", "null")].join("\n") + "\n");
  assert.throws(() => readTrace(p), (e: unknown) => e instanceof TraceFormatError && e.line === 2 && /layer 0: expected 2 expert ids/.test(e.message));
});
