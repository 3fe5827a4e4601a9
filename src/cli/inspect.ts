// moestream inspect: metadata, tensor table, and how the bytes split between experts and dense weights.
import type { Command } from "commander";
import { inspectGGUF, type GGUFMetaValue } from "../engine/inspect.js";
import { formatExpertBytes } from "../engine/expert-bytes.js";

function show(v: GGUFMetaValue): string {
  if (v.type !== "array") return typeof v.value === "string" ? JSON.stringify(v.value.length > 80 ? v.value.slice(0, 77) + "..." : v.value) : String(v.value);
  const head = (v.value as unknown[]).slice(0, 4).map((x) => (typeof x === "string" ? JSON.stringify(x) : typeof x === "object" ? "[..]" : String(x)));
  return `[${v.itemType} x ${v.value.length}] ${head.join(", ")}${v.value.length > 4 ? ", ..." : ""}`;
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(3)} GiB`;

export function registerInspect(program: Command): void {
  program
    .command("inspect <file>")
    .description("print a GGUF's metadata, tensors, and expert vs dense bytes")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExamples:\n  moestream inspect model.gguf\n  moestream inspect model.gguf --json | jq .tensors[0]")
    .action(async (path: string, opts) => {
      const f = await inspectGGUF(path);
      const { expertBytes, denseBytes } = f;
      if (opts.json) {
        const md = Object.fromEntries([...f.metadata].map(([k, v]) => [k, v.type === "array" ? { type: `array<${v.itemType}>`, length: v.value.length } : v.value]));
        const tensors = f.tensors.map((t) => ({ name: t.name, type: t.type, shape: t.shape, offset: t.offset, bytes: t.byteLength }));
        process.stdout.write(JSON.stringify({ version: f.version, alignment: f.alignment, metadata: md, tensors, expertBytes, denseBytes, perExpert: f.perExpert }, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) + "\n");
        return;
      }
      const out: string[] = [`${path}: GGUF v${f.version}, alignment ${f.alignment}, ${f.metadata.size} metadata keys, ${f.tensors.length} tensors`, "", "metadata:"];
      for (const [k, v] of f.metadata) out.push(`  ${k} = ${show(v)}`);
      out.push("", "tensors:");
      for (const t of f.tensors) out.push(`  ${t.name.padEnd(34)} ${t.type.padEnd(5)} [${t.shape.join(", ")}]`.padEnd(80) + ` ${(t.byteLength / 2 ** 20).toFixed(2)} MiB @ ${t.offset}`);
      out.push("", `expert tensors: ${gib(expertBytes)}   dense tensors: ${gib(denseBytes)}   experts share: ${((100 * expertBytes) / Math.max(1, expertBytes + denseBytes)).toFixed(1)}%`);
      if (f.perExpert.length) out.push(`routed expert, ${f.expertLayers} layers: ${formatExpertBytes(f.perExpert, f.expertLayers)}`);
      process.stdout.write(out.join("\n") + "\n");
    });
}
