// moestream gen: write a synthetic GGUF of a preset (qwen3moe, glm4moe, deepseek2, qwen3next, qwen35moe, gpt-oss, Mixtral or OLMoE) (seeded random weights, real Qwen3 tokenizer).
import type { Command } from "commander";
import { GEN_TYPES, generateModel } from "../gen/generate.js";
import { PRESETS, isPresetName } from "../gen/presets.js";
import { FUSIONS, type Fusion } from "../gen/fuse.js";
import { REAL_LIKE, type RoutingProfile } from "../gen/weights.js";
import { MIX_NAMES, isMixName, type MixName } from "../gen/mixes.js";
import { UsageError } from "../util/errors.js";
import { progressBar } from "./progress.js";

export function parseRouting(kind: string, skew: string, locality: string): RoutingProfile {
  if (kind === "uniform") return { kind };
  if (kind === "real-like") return REAL_LIKE; // calibrated to real traces: its knobs are fixed, --skew/--locality do not apply
  if (kind !== "realistic") throw new UsageError("bad_option", `--routing must be uniform, realistic or real-like, got '${kind}'`);
  const s = Number(skew), l = Number(locality);
  if (!(s >= 0) || !(l >= 0)) throw new UsageError("bad_option", `--skew and --locality must be numbers >= 0, got '${skew}', '${locality}'`);
  return { kind, skew: s, locality: l };
}

const collect = (v: string, prev: string[]) => [...prev, v];

/** --tensor-type values "regex=TYPE" as generateModel's typeOverrides. */
export function parseTensorTypes(specs: string[]): { pattern: RegExp; type: string }[] {
  return specs.map((spec) => {
    const at = spec.lastIndexOf("=");
    if (at <= 0 || at === spec.length - 1) throw new UsageError("bad_option", `--tensor-type takes regex=TYPE (e.g. ffn_down_exps=Q4_K), got '${spec}'`);
    try {
      return { pattern: new RegExp(spec.slice(0, at)), type: spec.slice(at + 1) };
    } catch (e) {
      throw new UsageError("bad_option", `--tensor-type '${spec}': ${(e as Error).message}`);
    }
  });
}

/** --fuse qkv,gate_up: the fused layouts to write. */
export function parseFuse(s: string | undefined): Fusion[] | undefined {
  if (s === undefined) return undefined;
  const out = s.split(",").map((x) => x.trim());
  const bad = out.find((x) => !(FUSIONS as readonly string[]).includes(x));
  if (bad !== undefined) throw new UsageError("bad_option", `--fuse takes a comma-separated list of ${FUSIONS.join(", ")}, got '${bad}'`);
  return out as Fusion[];
}

function parseMix(s: string | undefined, expertType: string | undefined): MixName | undefined {
  if (s === undefined) return undefined;
  if (!isMixName(s)) throw new UsageError("bad_option", `--mix must be one of ${MIX_NAMES.join(", ")}, got '${s}'`);
  if (expertType !== undefined) throw new UsageError("bad_option", "--mix sets the expert types itself: leave out --expert-type (--tensor-type still overrides)");
  return s;
}

function parseSynthesis(s: string): "quantize" | "direct" {
  if (s !== "quantize" && s !== "direct") throw new UsageError("bad_option", `--expert-synthesis must be quantize or direct, got '${s}'`);
  return s;
}

export function registerGen(program: Command): void {
  program
    .command("gen")
    .description("generate a synthetic model file (qwen3moe, glm4moe, deepseek2, qwen3next, qwen35moe, gpt-oss, mixtral or olmoe presets)")
    .requiredOption("-o, --output <file>", "where to write the GGUF")
    .option("--preset <name>", `model shape: ${Object.keys(PRESETS).join(" | ")}`, "tiny")
    .option("--type <type>", `quant type of weight matrices: ${GEN_TYPES.join(" ")}`, "Q8_0")
    .option("--expert-type <type>", "quant type of the routed expert tensors (default: --type)")
    .option("--mix <name>", `a named per-tensor mix instead of --type: ${MIX_NAMES.join(" | ")} (llama.cpp's Q4_K_M, Q2_K with IQ3_XXS expert downs, IQ2_XXS; ud: a UD-like dynamic mix; README)`)
    .option("--tensor-type <regex=type>", "quant type of the tensors whose name matches regex (repeatable; first match wins)", collect, [])
    .option("--seed <n>", "weights seed", "1")
    .option("--routing <kind>", "uniform | realistic (skewed expert popularity, token-to-token locality) | real-like (calibrated to real routing traces)", "realistic")
    .option("--skew <x>", "realistic routing: popularity skew (0 = none)", "1")
    .option("--locality <x>", "realistic routing: context locality (0 = none)", "0.5")
    .option("--expert-synthesis <how>", "quantize (ggml's quantiser, exact) | direct (sample Q8_0/Q2_K/Q4_K/Q6_K/MXFP4 blocks directly; fast, for a3b-scale; i-quants always are)", "quantize")
    .option("--peaked <x>", "successor strength of the output projection, for clear top-1 margins (0 = off)", "0")
    .option("--fuse <list>", `write fused layouts where the architecture takes them, as llama.cpp's converter does: ${FUSIONS.join(",")} (attn_qkv, ffn_gate_up_exps)`)
    .option("--per-layer-keys", "write head counts, FFN widths and experts used as arrays of one value per layer (llama.cpp's get_key_or_arr)")
    .addHelpText("after", "\nExamples:\n  moestream gen --preset tiny --type Q4_K -o tiny.gguf\n  moestream gen --preset tiny --type Q6_K --expert-type Q3_K --tensor-type ffn_down_exps=Q4_K -o tiny-q3km.gguf\n  moestream gen --preset a3b-8L --mix ud --expert-synthesis direct -o a3b-8L-ud.gguf\n  moestream gen --preset a3b-8L --type Q8_0 --routing realistic -o a3b-8L.gguf")
    .action(async (opts) => {
      if (!isPresetName(opts.preset)) throw new UsageError("bad_option", `--preset must be one of ${Object.keys(PRESETS).join(", ")}, got '${opts.preset}'`);
      const bar = progressBar("generating", "values");
      const t0 = performance.now();
      try {
        const m = await generateModel(opts.output, {
          preset: opts.preset, type: opts.type, expertType: opts.expertType, mix: parseMix(opts.mix, opts.expertType), typeOverrides: parseTensorTypes(opts.tensorType), seed: Number(opts.seed), peaked: Number(opts.peaked),
          expertSynthesis: parseSynthesis(opts.expertSynthesis), fuse: parseFuse(opts.fuse), perLayerKeys: opts.perLayerKeys === true,
          routing: parseRouting(opts.routing, opts.skew, opts.locality),
          onProgress: (d, t) => bar.update(d, t),
        });
        bar.stop();
        process.stderr.write(`wrote ${m.path}: ${(m.bytes / 2 ** 20).toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      } finally {
        bar.stop();
      }
    });
}
