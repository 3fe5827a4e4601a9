// Synthetic test models, generated once per machine into the OS temp dir and reused by every test file.
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tensorByteLength } from "../../src/format/gguf/ggml-types.js";
import { metaStringArray } from "../../src/format/gguf/accessors.js";
import { generateModel, type GenerateOptions } from "../../src/gen/generate.js";
import { fuseModel } from "../../src/gen/fuse.js";
import { rewriteGGUF } from "./rewrite.js";

const DIR = join(tmpdir(), "moestream-test-models-v4");

export async function testModel(opts: Omit<GenerateOptions, "preset" | "onProgress"> & { preset?: GenerateOptions["preset"] }): Promise<string> {
  const preset = opts.preset ?? "tiny";
  const r = opts.routing ?? { kind: "uniform" };
  const key = [preset, opts.type, opts.seed ?? 1, r.kind === "uniform" ? "u" : r.kind === "realistic" ? `r${r.skew}-${r.locality}` : `rl${r.skew}-${r.skewSpread}-${r.locality}-${r.recency}`, `p${opts.peaked ?? 0}`, opts.expertSynthesis ?? "q",
    ...(opts.expertType ? [`x${opts.expertType}`] : []), ...(opts.perLayerKeys ? ["perlayer"] : []), ...(opts.mix ? [`m${opts.mix}`] : []), ...(opts.typeOverrides ?? []).map((o) => `o${o.pattern.source.replace(/\W/g, "_")}=${o.type}`), ...Object.entries(opts.hp ?? {}).map(([k, v]) => `${k}${String(v)}`)].join("-");
  const path = join(DIR, `${key}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(DIR, { recursive: true });
  if (opts.fuse?.length) return fusedCopy(await testModel({ ...opts, fuse: undefined }), opts.fuse);
  // Unique name first: parallel test files may generate the same model at once.
  const tmp = `${path}.${process.pid}`;
  await generateModel(tmp, { ...opts, preset });
  renameSync(tmp, path);
  return path;
}

/** The split file at `split` with `fuse` applied, as a converter fuses (the generator's fuse option writes the same bytes): made once. */
async function fusedCopy(split: string, fuse: NonNullable<GenerateOptions["fuse"]>): Promise<string> {
  const path = split.replace(/\.gguf$/, `-f${fuse.join("+")}.gguf`);
  if (existsSync(path)) return path;
  await fuseModel(split, `${path}.${process.pid}`, fuse);
  renameSync(`${path}.${process.pid}`, path);
  return path;
}

/**
 * The tiny model of `type`/`seed` with its vocabulary cut to the first `nVocab` tokens: token_embd's (and
 * output's) first rows, the tokenizer's first tokens and the merges among them, special ids beyond it
 * dropped. The Qwen3 tokenizer's 151k tokens make a load take ~0.3 s; this one loads in milliseconds, for
 * tests that load a model hundreds of times.
 */
export async function smallVocabModel(opts: Parameters<typeof testModel>[0] & { nVocab: number }): Promise<string> {
  if (opts.fuse?.length) return fusedCopy(await smallVocabModel({ ...opts, fuse: undefined }), opts.fuse);
  const { nVocab: _, ...modelOpts } = opts;
  const src = await testModel(modelOpts);
  const path = src.replace(/\.gguf$/, `-v${opts.nVocab}.gguf`);
  if (existsSync(path)) return path;
  const tmp = `${path}.${process.pid}`;
  const V = opts.nVocab;
  await rewriteGGUF(src, tmp, {
    edit: (tensors, md) => {
      const tokens = metaStringArray(md, "tokenizer.ggml.tokens").slice(0, V);
      const have = new Set(tokens);
      const merges = metaStringArray(md, "tokenizer.ggml.merges").filter((m) => {
        const [a, b] = m.split(" ");
        return have.has(a) && have.has(b) && have.has(a + b);
      });
      md.set("tokenizer.ggml.tokens", { type: "array", itemType: "string", value: tokens });
      md.set("tokenizer.ggml.merges", { type: "array", itemType: "string", value: merges });
      const types = md.get("tokenizer.ggml.token_type")!;
      md.set("tokenizer.ggml.token_type", { ...types, value: (types.value as number[]).slice(0, V) } as typeof types);
      for (const k of ["bos", "eos", "padding"].map((s) => `tokenizer.ggml.${s}_token_id`)) {
        if (Number(md.get(k)?.value ?? 0) >= V) md.delete(k);
      }
      return tensors.map((t) => {
        if (t.name !== "token_embd.weight" && t.name !== "output.weight") return t;
        const rows = tensorByteLength(t.type, [t.shape[0], V]);
        return { ...t, shape: [t.shape[0], V], data: t.data.subarray(0, rows) };
      });
    },
  });
  renameSync(tmp, path);
  return path;
}

/**
 * The model of `opts` carrying the real Mistral / Mixtral SentencePiece vocabulary (test/tokenizer/llama2.ts) cut to
 * its first `nVocab` tokens (byte tokens included, so any text tokenizes): token_embd's and output's first rows.
 */
export async function spmVocabModel(opts: Parameters<typeof testModel>[0] & { nVocab: number }): Promise<string> {
  const { nVocab: V, ...modelOpts } = opts;
  const src = await testModel(modelOpts);
  const path = src.replace(/\.gguf$/, `-spm${V}.gguf`);
  if (existsSync(path)) return path;
  const tmp = `${path}.${process.pid}`;
  const { llama2Metadata } = await import("../tokenizer/llama2.js"); // on demand: it loads two tokenizer packages
  await rewriteGGUF(src, tmp, {
    edit: (tensors, md) => {
      for (const k of [...md.keys()]) if (k.startsWith("tokenizer.")) md.delete(k);
      for (const [k, v] of llama2Metadata(V)) md.set(k, v);
      return tensors.map((t) => {
        if (t.name !== "token_embd.weight" && t.name !== "output.weight") return t;
        return { ...t, shape: [t.shape[0], V], data: t.data.subarray(0, tensorByteLength(t.type, [t.shape[0], V])) };
      });
    },
  });
  renameSync(tmp, path);
  return path;
}
