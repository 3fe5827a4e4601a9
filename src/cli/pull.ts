// moestream pull: a GGUF from the Hugging Face Hub into the local cache; the path on stdout, all else on stderr,
// so `moestream chat -m $(moestream pull REPO:Q4_K_M)` works.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { HUB_URL, pull, type HubAccess } from "../engine/pull/index.js";
import { UsageError } from "../util/errors.js";
import { intOption } from "./common.js";
import { defaultPackDir, packWithProgress } from "./pack.js";
import { progressBar } from "./progress.js";

/** The default cache: MOESTREAM_CACHE_DIR, else XDG_CACHE_HOME/moestream/models, else ~/.cache/moestream/models. */
function defaultCacheDir(): string {
  const env = process.env;
  if (env.MOESTREAM_CACHE_DIR) return env.MOESTREAM_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "moestream", "models");
}

/** The Hugging Face hub cache as huggingface_hub finds it: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub. */
function hfHubCache(): string {
  const env = process.env;
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  return join(env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface"), "hub");
}

/** --endpoint (else HF_ENDPOINT) and --token (else HF_TOKEN) as `pull` and `doctor` take them. */
export function hubAccess(opts: { endpoint?: string; token?: string; revision?: string }): HubAccess {
  const endpoint = String(opts.endpoint ?? (process.env.HF_ENDPOINT || HUB_URL)).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/\s]+(\/\S*)?$/.test(endpoint)) throw new UsageError("bad_option", `--endpoint must be an http(s) URL, got '${endpoint}'`);
  const token: string | undefined = opts.token ?? (process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined);
  return { hubUrl: endpoint, token, revision: opts.revision };
}

/** The options naming the Hub, a token and a revision, shared by `pull` and `doctor`. */
export function addHubOptions(cmd: Command): Command {
  return cmd
    .option("--token <hf_...>", "access token for gated or private repos (default: env HF_TOKEN)")
    .option("--revision <rev>", "branch, tag or commit of the repo", "main")
    .option("--endpoint <url>", `the Hub's address (default: ${HUB_URL}, env HF_ENDPOINT)`);
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v);

export function registerPull(program: Command): void {
  const cmd = program
    .command("pull <spec>")
    .description("download a GGUF from the Hugging Face Hub (REPO[:QUANT|FILE]) into the cache and print its local path")
    .option("--cache-dir <dir>", "where models are kept, as DIR/owner/name/FILE (default: ~/.cache/moestream/models, env MOESTREAM_CACHE_DIR; XDG_CACHE_HOME moves it)")
    .option("--no-hf-cache", "do not link files already in the Hugging Face hub cache (default: linked when their sha256 matches; HF_HUB_CACHE, HF_HOME)")
    .option("--offline", "use only the cache, never the network (default: off, env HF_HUB_OFFLINE=1); without it the cache still answers when the Hub is unreachable")
    .option("--retries <n>", "connection cuts survived per file; each retry resumes where the last stopped", "3")
    .option("--merge", "merge a split GGUF's parts into one file (moestream loads one file) and delete the parts; needs room for both meanwhile")
    .option("--pack", "pack the model after the download (as `moestream pack`; a split GGUF is merged first) and print the packed directory instead")
    .addHelpText("after", [
      "\nQUANT is matched case-insensitively against the files' quant (Q4_K_M, UD-Q2_K_XL, IQ4_XS, MXFP4, ...); FILE is a",
      "path in the repo ending in .gguf. Without either: Q4_K_M if the repo has it, else its only GGUF. Every part",
      "of a split GGUF (-00001-of-00003.gguf) is downloaded; --merge makes them one file. Partial downloads resume;",
      "each file is checked against the Hub's sha256 before it is used.",
      "\nExamples:",
      "  moestream pull unsloth/Qwen3-30B-A3B-GGUF:Q4_K_M",
      "  moestream chat -m $(moestream pull ggml-org/gpt-oss-20b-GGUF:MXFP4)",
      "  moestream pull unsloth/Qwen3-30B-A3B-GGUF:Qwen3-30B-A3B-Q8_0.gguf --pack",
    ].join("\n"));
  addHubOptions(cmd).action(async (spec: string, opts) => {
    const retries = intOption(opts.retries, "--retries", 0, 100);
    const { hubUrl: endpoint, token } = hubAccess(opts);
    const bar = progressBar("downloading");
    const mergeBar = progressBar("merging");
    let r;
    try {
      r = await pull(spec, {
        cacheDir: opts.cacheDir ?? defaultCacheDir(), hfCache: opts.hfCache === false ? undefined : hfHubCache(), hubUrl: endpoint, token, revision: opts.revision, retries,
        offline: opts.offline || truthy(process.env.HF_HUB_OFFLINE),
        merge: opts.merge || opts.pack,
        onProgress: (d, t) => bar.update(d, t),
        onMergeProgress: (d, t) => (bar.stop(), mergeBar.update(d, t)),
        onNote: (line) => process.stderr.write(`moestream: ${line}\n`),
      });
    } finally {
      bar.stop();
      mergeBar.stop();
    }
    const mib = (r.downloaded / 2 ** 20).toFixed(1);
    process.stderr.write(`moestream: ${r.repo}@${r.commit.slice(0, 12)}: ${r.offline ? "from the cache (offline)" : r.downloaded ? `${mib} MiB downloaded, sha256 verified` : "already in the cache"}\n`);
    if (r.files.length > 1) {
      process.stderr.write(`moestream: a split GGUF of ${r.files.length} parts; moestream loads one file: pull again with --merge (or run llama.cpp's \`llama-gguf-split --merge ${r.files[0]} OUT.gguf\`)\n`);
    }
    let out = r.files[0];
    if (opts.pack) {
      const dir = defaultPackDir(out);
      // Packing writes the directory last, so one that exists is whole; a fresh download replaces it.
      out = existsSync(dir) && r.downloaded === 0 ? dir : await packWithProgress(out, dir, { overwrite: true });
    }
    process.stdout.write(out + "\n");
  });
}
