// Keeps the import direction of DESIGN.md true: format -> quant -> backends -> experts/kv -> models ->
// engine -> server/cli. A folder may import its own layer or lower ones only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dirname, "..", "..", "src");
const LAYER: Record<string, number> = {
  util: 0, format: 1, quant: 2, tokenizer: 2, sampler: 2, backends: 3, kv: 4, experts: 4, models: 5, engine: 6, gen: 6, server: 7, cli: 7, "index.ts": 8,
};
// Allowed beyond the table: architectures read their hyperparameters from GGUF metadata (practice 1).
const EXTRA: [string, string][] = [["models", "format"], ["cli", "server"]]; // the serve command starts the server

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

test("src/ imports go one way", () => {
  const bad: string[] = [];
  for (const f of files(SRC)) {
    const from = relative(SRC, f).split("/")[0];
    for (const m of readFileSync(f, "utf8").matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.[^"']+)["']/g)) {
      const target = relative(SRC, resolve(dirname(f), m[1])).split("/")[0];
      if (target === from) continue;
      if (!(from in LAYER) || !(target in LAYER)) {
        bad.push(`${relative(SRC, f)}: unknown folder in ${from} -> ${target}`);
        continue;
      }
      const ok = LAYER[target] < LAYER[from] || EXTRA.some(([a, b]) => a === from && b === target);
      if (!ok) bad.push(`${relative(SRC, f)} imports ${m[1]} (${from} -> ${target})`);
    }
  }
  assert.deepEqual(bad, []);
});

test("backends never import each other; architecture files never import another", () => {
  const bad: string[] = [];
  for (const f of files(join(SRC, "backends"))) {
    const own = relative(join(SRC, "backends"), f).split("/");
    if (own.length < 2) continue;
    for (const m of readFileSync(f, "utf8").matchAll(/from\s+["'](\.[^"']+)["']/g)) {
      const t = relative(join(SRC, "backends"), resolve(dirname(f), m[1])).split("/");
      if (t.length > 1 && t[0] !== own[0] && !t[0].startsWith("..")) bad.push(`${relative(SRC, f)} imports ${m[1]}`);
    }
  }
  // Shared model pieces (contract, declarations, layers, routing) are open to every architecture file; an
  // architecture file imports nothing else of models/, and only the registry imports architecture files.
  const SHARED = new Set(["model.ts", "tensors.ts", "layers.ts", "routing.ts", "registry.ts"]);
  for (const f of files(join(SRC, "models"))) {
    const own = relative(join(SRC, "models"), f);
    for (const m of readFileSync(f, "utf8").matchAll(/from\s+["']\.\/([^"']+)\.js["']/g)) {
      const target = `${m[1]}.ts`;
      if (SHARED.has(target) && target !== "registry.ts") continue;
      if (own === "registry.ts") continue;
      bad.push(`models/${own} imports ./${m[1]}.js`);
    }
  }
  assert.deepEqual(bad, []);
});
