// Routing JSON-lines captures (header line, then {"t", "layers"} per token) read as decode-only traces,
// and malformed ones named by file and line. Every file here is small and synthetic, written by the test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { policyByName } from "../../src/experts/policies.js";
import { accessSequence, belady, replay } from "../../src/experts/replay.js";
import { readTrace, TraceFormatError } from "../../src/experts/trace.js";
import { NOMINAL_RECORD_BYTES } from "../../src/experts/trace-jsonl.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-jsonl-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const HEADER = { model: "toy-moe", arch: "toy", nLayer: 2, nExpert: 4, topK: 2, nTokens: 4 };
// Layer 1 has no routing on token 0 (a prefill token whose last layer was not run).
const TOKENS = [
  { t: 0, phase: 0, layers: [[0, 1], []] },
  { t: 1, phase: 1, layers: [[1, 2], [3, 0]] },
  { t: 2, phase: 1, layers: [[0, 1], [3, 2]] },
  { t: 3, phase: 1, layers: [[2, 0], [0, 3]] },
];
function write(name: string, lines: unknown[]): string {
  const p = join(dir, name);
  writeFileSync(p, lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l)) + "\n").join(""));
  return p;
}

test("a routing JSON-lines capture reads as a decode-only trace with nominal record sizes", () => {
  const t = readTrace(write("ok.jsonl", [HEADER, ...TOKENS]));
  assert.deepEqual(t.header.model, { architecture: "toy", name: "toy-moe", nLayer: 2, nExpert: 4, k: 2, recordBytes: [NOMINAL_RECORD_BYTES, NOMINAL_RECORD_BYTES] });
  assert.equal(t.calls.length, 4);
  assert.ok(t.calls.every((c) => c.phase === "decode" && c.nTokens === 1));
  assert.deepEqual(t.calls[0].routes.map((r) => [...r!]), [[0, 1], []]);
  assert.match(t.header.note!, /decode-only/);
  assert.match(t.header.note!, /1 of them prefill/);
  assert.match(t.header.note!, /nominal 1 MiB/);
  assert.match(t.header.note!, /1 layer-token entries empty/);
  // The empty entry acquires nothing: 7 acquires of 2 experts. Keys are layer * 4 + id.
  const seq = accessSequence(t, 4);
  assert.equal(seq.groups.length - 1, 7);
  assert.deepEqual([...seq.keys], [0, 1, 1, 2, 4, 7, 0, 1, 6, 7, 0, 2, 4, 7]);
  // LRU at 4 slots, by hand (group pins): 0 1 cold; 1 hits, 2 fills; 4 fills, 7 evicts 0; 0 evicts 2 (1 is
  // pinned with it), 1 hits; 6 evicts 4, 7 hits; 0 hits, 2 evicts 1; 4 evicts 6, 7 hits. 5 hits, 9 misses.
  const lru = replay(t, { slots: 4, policy: policyByName("lru") }, seq);
  assert.deepEqual([lru.decode.accesses, lru.decode.hits, lru.prefill.accesses], [14, 5, 0]);
  assert.equal(lru.decode.bytesRead, 9 * NOMINAL_RECORD_BYTES);
  assert.ok(belady(t, 4, seq).total.hits >= lru.total.hits);
});

test("malformed captures are named by file and line", () => {
  const cases: [string, unknown[], number, RegExp][] = [
    ["bad header", [{ nLayer: 2, nExpert: 0, topK: 2 }, TOKENS[0]], 1, /nLayer, nExpert and topK must be positive integers/],
    ["topK > nExpert", [{ ...HEADER, topK: 5 }], 1, /topK 5 exceeds nExpert 4/],
    ["not JSON", [HEADER, TOKENS[0], "{\"t\": 1, "], 3, /not JSON/],
    ["wrong layer count", [HEADER, TOKENS[0], { t: 1, layers: [[1, 2]] }], 3, /layers must be an array of 2 lists/],
    ["wrong k", [HEADER, TOKENS[0], { t: 1, layers: [[1, 2, 3], [0, 1]] }], 3, /layer 0: expected 2 expert ids \(header topK\) or \[\]/],
    ["id out of range", [HEADER, { t: 0, layers: [[1, 4], [0, 1]] }], 2, /layer 0: expert id 4 not in \[0, 4\)/],
    ["repeated id", [HEADER, { t: 0, layers: [[1, 2], [3, 3]] }], 2, /layer 1: repeated expert id/],
    ["token out of order", [HEADER, TOKENS[0], TOKENS[2]], 3, /t is 2, expected 1/],
    ["bad phase", [HEADER, { ...TOKENS[0], phase: 2 }], 2, /phase must be 0 \(prefill\) or 1 \(decode\)/],
    ["truncated", [HEADER, ...TOKENS.slice(0, 3)], 4, /nTokens 4, the file holds 3 token lines/],
    ["neither format", [{ nLayer: 2 }], 1, /not a moestream trace.*or a routing JSON-lines header/],
  ];
  for (const [name, lines, line, re] of cases) {
    const p = write(`${name.replace(/\W/g, "-")}.jsonl`, lines);
    assert.throws(() => readTrace(p), (e: unknown) => {
      assert.ok(e instanceof TraceFormatError, `${name}: ${e}`);
      assert.equal(e.line, line, `${name}: ${e.message}`);
      assert.ok(e.message.includes(p), `${name}: names the file`);
      assert.match(e.message, re, name);
      return true;
    });
  }
});

test("CLI: moestream replay reads a capture and says how it was read", () => {
  const p = write("cli.jsonl", [HEADER, ...TOKENS]);
  const root = resolve(import.meta.dirname, "..", "..");
  const r = spawnSync(process.execPath, ["--import", "tsx", join(root, "src", "cli", "main.ts"), "replay", p, "--slots", "4", "--policy", "lru"], { encoding: "utf8", cwd: root });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /note: imported routing JSON lines \(cli\.jsonl\): decode-only/);
  assert.match(r.stdout, /^\S+\s+4\s+decode\s+35\.7\s+\d/m); // LRU 5 of 14, as worked above
});
