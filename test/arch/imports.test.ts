// Keeps the layer table of DESIGN.md ("Layout and import direction") true: who may import whom, which files
// of a lower folder a higher one may see, and who may read process.env.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dirname, "..", "..", "src");
const LAYER: Record<string, number> = {
  util: 0, format: 1, quant: 2, tokenizer: 2, sampler: 2, backends: 3, kv: 4, experts: 4, models: 5, engine: 6, gen: 6, server: 7, cli: 7, "index.ts": 8,
};
const BELOW = (n: number) => Object.keys(LAYER).filter((k) => LAYER[k] < n);
// The table's "may import" column. util (typed errors, bytes) is open to every folder above it.
const MAY: Record<string, string[]> = {
  util: [],
  format: ["util"],
  quant: ["format", "util"], tokenizer: ["format", "util"], sampler: ["format", "util"],
  backends: ["quant", "util"],
  kv: ["backends", "quant", "format", "util"], experts: ["backends", "quant", "format", "util"],
  models: ["backends", "experts", "kv", "quant", "format", "util"], // format: hyperparameters from GGUF metadata
  engine: BELOW(6), gen: BELOW(6),
  server: ["engine", "util"],
  cli: ["engine", "util", "server", "gen"], // server: the serve command; gen: the synthetic model generator
  "index.ts": BELOW(8),
};
// Beyond the one-way rule: cli starts the server (serve).
const EXTRA: [string, string][] = [["cli", "server"]];

interface Import { file: string; spec: string; target: string; typeOnly: boolean; line: number }

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const SOURCES = files(SRC).map((f) => ({ file: relative(SRC, f), text: readFileSync(f, "utf8") }));

/** Every relative import/export-from and dynamic import of src/, with its target as a path under src/. */
const IMPORTS: Import[] = SOURCES.flatMap(({ file, text }) => {
  const out: Import[] = [];
  const add = (spec: string, typeOnly: boolean, at: number) => {
    const target = relative(SRC, resolve(dirname(join(SRC, file)), spec)).replace(/\.js$/, ".ts");
    out.push({ file, spec, target, typeOnly, line: text.slice(0, at).split("\n").length });
  };
  for (const m of text.matchAll(/^[ \t]*(?:import|export)\s+(type\s+)?(?:[^;"']*?\bfrom\s*)?["'](\.[^"']+)["']/gm)) add(m[2], !!m[1], m.index!);
  for (const m of text.matchAll(/\bimport\s*\(\s*["'](\.[^"']+)["']/g)) add(m[1], false, m.index!);
  return out;
});

const top = (p: string) => p.split("/")[0];
const at = (i: Import) => `${i.file}:${i.line} imports "${i.spec}"`;
const crossing = IMPORTS.filter((i) => top(i.file) !== top(i.target));

test("the import scan sees src/", () => {
  assert.ok(IMPORTS.length > 100, `only ${IMPORTS.length} imports found`);
  assert.ok(IMPORTS.some((i) => i.file === "models/model.ts" && i.target === "backends/backend.ts" && i.typeOnly), "an `import type` is seen as one");
  assert.ok(IMPORTS.some((i) => i.file === "cli/replay.ts" && i.target === "engine/replay.ts"), "a multi-line import is seen");
});

test("src/ imports go one way (a folder imports its own layer or lower ones)", () => {
  const bad: string[] = [];
  for (const i of crossing) {
    const [from, to] = [top(i.file), top(i.target)];
    if (!(from in LAYER) || !(to in LAYER)) bad.push(`${at(i)}: unknown folder in ${from} -> ${to}`);
    else if (!(LAYER[to] < LAYER[from] || EXTRA.some(([a, b]) => a === from && b === to))) {
      bad.push(`${at(i)}: ${from} (layer ${LAYER[from]}) may not import ${to} (layer ${LAYER[to]})`);
    }
  }
  assert.deepEqual(bad, []);
});

test("each folder imports only what DESIGN.md's layer table lists", () => {
  const bad = crossing
    .filter((i) => top(i.file) in MAY && !MAY[top(i.file)].includes(top(i.target)))
    .map((i) => `${at(i)}: ${top(i.file)} may import only ${MAY[top(i.file)].join(", ") || "nothing"}`);
  assert.deepEqual(bad, []);
});

test("models/ sees the backend interface, the expert-source interface and quant types only", () => {
  const bad: string[] = [];
  for (const i of crossing.filter((i) => top(i.file) === "models")) {
    if (top(i.target) === "backends" && i.target !== "backends/backend.ts") bad.push(`${at(i)}: models may import only backends/backend.ts`);
    if (top(i.target) === "experts" && i.target !== "experts/source.ts") bad.push(`${at(i)}: models may import only experts/source.ts`);
    if (top(i.target) === "quant" && !i.typeOnly) bad.push(`${at(i)}: models may import quant with \`import type\` only`);
  }
  assert.deepEqual(bad, []);
});

test("kv/ and experts/ see only the backend interface", () => {
  const bad = crossing
    .filter((i) => ["kv", "experts"].includes(top(i.file)) && top(i.target) === "backends" && i.target !== "backends/backend.ts")
    .map((i) => `${at(i)}: ${top(i.file)} may import only backends/backend.ts`);
  assert.deepEqual(bad, []);
});

// Concrete backends, expert stores and caches: built by the engine only.
const CONCRETE = [/^backends\/(cpu|wasm)\//, /^experts\/(store|streaming-source|io-queue|prefetch)\.ts$/];

test("only engine/ imports concrete backends, stores and caches from outside their folder", () => {
  const bad = crossing
    .filter((i) => top(i.file) !== "engine" && CONCRETE.some((r) => r.test(i.target)))
    .filter((i) => !(top(i.file) === "backends" && top(i.target) === "backends"))
    .map((i) => `${at(i)}: only engine/ may import ${i.target}`);
  // Within backends/, one concrete backend may not reach into another's folder.
  for (const i of IMPORTS.filter((i) => top(i.file) === "backends" && top(i.target) === "backends")) {
    const [a, b] = [i.file.split("/"), i.target.split("/")];
    if (a.length > 2 && b.length > 2 && a[1] !== b[1]) bad.push(`${at(i)}: backends never import each other`);
  }
  assert.deepEqual(bad, []);
});

test("only cli/ reads process.env", () => {
  const bad: string[] = [];
  for (const { file, text } of SOURCES) {
    if (top(file) === "cli") continue;
    for (const m of text.matchAll(/\bprocess\.env\b|\bfrom\s*["'](?:node:)?process["']/g)) {
      bad.push(`${file}:${text.slice(0, m.index).split("\n").length} reads ${m[0]}: only cli/ reads the environment (pass values in)`);
    }
  }
  assert.deepEqual(bad, []);
});

test("gen/ is a CLI tool beside engine: only cli/ and index.ts import it; it takes architectures from the registry", () => {
  const bad = crossing
    .filter((i) => top(i.target) === "gen" && !["cli", "index.ts"].includes(top(i.file)))
    .map((i) => `${at(i)}: only cli/ and src/index.ts may import gen/`);
  for (const i of crossing.filter((i) => top(i.file) === "gen" && top(i.target) === "models")) {
    if (i.target !== "models/registry.ts" && !i.typeOnly) bad.push(`${at(i)}: gen may import models/ values only from models/registry.ts (types with \`import type\`)`);
  }
  assert.deepEqual(bad, []);
});

test("architecture files never import another", () => {
  // Shared model pieces (contract, declarations, layers, the routed MoE block, routing, the DeepSeek-style MoE block, the plain MoE decoder) are open to every architecture file; an
  // architecture file imports nothing else of models/, and only the registry imports architecture files.
  const SHARED = new Set(["models/model.ts", "models/tensors.ts", "models/layers.ts", "models/moe-block.ts", "models/routing.ts", "models/hparams.ts", "models/deepseek-moe.ts", "models/moe-decoder.ts"]);
  const bad = IMPORTS
    .filter((i) => top(i.file) === "models" && top(i.target) === "models" && i.file !== "models/registry.ts" && !SHARED.has(i.target))
    .map((i) => `${at(i)}: only models/registry.ts imports architecture files`);
  assert.deepEqual(bad, []);
});
