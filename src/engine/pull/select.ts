// Which GGUF a `pull REPO[:QUANT|FILE]` means: the spec parsed, a repo's files grouped into models (a split
// GGUF's parts are one model) and labelled by quant, then one picked by tag (case-insensitive, as llama.cpp's
// `-hf REPO:QUANT` and ollama's `hf.co/REPO:QUANT` take it) or by exact file name.
import { UsageError } from "../../util/errors.js";
import { didYouMean } from "../../util/suggest.js";

export interface PullSpec {
  /** owner/name */
  repo: string;
  /** A quant tag (Q4_K_M), a file path in the repo (ends in .gguf), or neither: Q4_K_M if there is one, else the only model. */
  select: { kind: "quant"; tag: string } | { kind: "file"; path: string } | { kind: "default" };
}

/** One file of a repo as the Hub lists it: sha256 for LFS files, else the git blob's sha1. */
export interface RepoFile {
  path: string;
  size: number;
  sha256?: string;
  gitSha1?: string;
}

/** One model: a single GGUF, or every part of a split one in order. */
export interface ModelChoice {
  label: string;
  files: RepoFile[];
}

export const DEFAULT_QUANT = "Q4_K_M";
const REPO = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SPLIT = /-(\d{5})-of-(\d{5})\.gguf$/i;
// The quant at the end of a file's stem: Q4_K_M, UD-Q2_K_XL, IQ2_XXS, Q8_0, F16, BF16, MXFP4(_MOE), TQ1_0.
const QUANT = /(?:^|[-_.])((?:UD-)?(?:I?Q\d+(?:_[A-Z0-9]+)*|TQ\d_\d|B?F16|F32|MXFP4(?:_MOE)?))$/i;

export function parsePullSpec(raw: string): PullSpec {
  const s = raw.trim().replace(/^(?:https?:\/\/)?(?:hf\.co|huggingface\.co)\//i, "");
  const colon = s.indexOf(":");
  const repo = colon < 0 ? s : s.slice(0, colon);
  const rest = colon < 0 ? "" : s.slice(colon + 1);
  if (!REPO.test(repo)) throw new UsageError("bad_repo", `'${raw}' is not REPO[:QUANT|FILE]: REPO is owner/name, e.g. unsloth/Qwen3-30B-A3B-GGUF:Q4_K_M`);
  if (colon >= 0 && rest === "") throw new UsageError("bad_repo", `'${raw}': nothing after ':' (a quant such as Q4_K_M, or a .gguf file name)`);
  if (/\.gguf$/i.test(rest)) {
    if (rest.split("/").some((p) => p === "" || p === "." || p === "..")) throw new UsageError("bad_repo", `'${raw}': '${rest}' is not a file path inside the repo`);
    return { repo, select: { kind: "file", path: rest } };
  }
  if (rest && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(rest)) throw new UsageError("bad_repo", `'${raw}': '${rest}' is neither a quant tag (Q4_K_M) nor a .gguf file`);
  return { repo, select: rest ? { kind: "quant", tag: rest } : { kind: "default" } };
}

/**
 * Whether `s` names a Hub model rather than a local path (doctor takes either): a hf.co/ prefix, or owner/name with
 * an optional :QUANT or :FILE. "dir/model.gguf" reads as a path (a repo named so would need a hf.co/ prefix).
 */
export function isHubSpec(s: string): boolean {
  const prefixed = /^(?:https?:\/\/)?(?:hf\.co|huggingface\.co)\//i.test(s.trim());
  if (!prefixed && !s.includes(":") && /\.gguf$/i.test(s)) return false;
  try {
    parsePullSpec(s);
    return true;
  } catch {
    return false;
  }
}

/** Where a split model's parts merge to: the first part's path without its -0000N-of-0000M suffix. */
export function mergedPath(firstPart: string): string {
  return firstPart.replace(SPLIT, ".gguf");
}

/** The file's stem without .gguf and a split suffix: what a model's parts share. */
function stemOf(path: string): string {
  return path.replace(SPLIT, "").replace(/\.gguf$/i, "");
}

/** A model's quant label from its file name (the name itself when none is recognised). */
export function quantLabel(path: string): string {
  const base = stemOf(path).split("/").pop()!;
  return QUANT.exec(base)?.[1] ?? base;
}

/** The repo's models: GGUF files (projector files left out), a split GGUF's parts grouped in part order. */
export function groupModels(files: readonly RepoFile[]): ModelChoice[] {
  const groups = new Map<string, RepoFile[]>();
  for (const f of files) {
    const base = f.path.split("/").pop()!;
    if (!/\.gguf$/i.test(base) || /^mmproj/i.test(base)) continue;
    const key = stemOf(f.path) + (SPLIT.test(f.path) ? "\0split" : "");
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.values()].map((fs) => ({ label: quantLabel(fs[0].path), files: fs.sort((a, b) => a.path.localeCompare(b.path)) }));
}

/** A split model's parts must all be listed: 1..N of N, once each. */
function checkParts(m: ModelChoice, repo: string): void {
  const first = SPLIT.exec(m.files[0].path);
  if (!first) return;
  const n = Number(first[2]);
  const got = m.files.map((f) => Number(SPLIT.exec(f.path)?.[1]));
  if (got.length !== n || got.some((p, i) => p !== i + 1)) {
    throw new UsageError("incomplete_split", `${repo}: ${m.files[0].path} is part of a ${n}-part GGUF but the repo lists parts ${got.join(", ")}`);
  }
}

/** "Q4_K_M (17.3 GiB), Q8_0 (30.2 GiB, 2 parts)": what a user can name. */
export function describeChoices(models: readonly ModelChoice[]): string {
  return models
    .map((m) => {
      const bytes = m.files.reduce((a, f) => a + f.size, 0);
      const size = bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
      return `${m.label} (${size}${m.files.length > 1 ? `, ${m.files.length} parts` : ""})`;
    })
    .join(", ");
}

/** The model the spec names among the repo's files; a UsageError listing what there is when none or several match. */
export function pickModel(spec: PullSpec, files: readonly RepoFile[]): ModelChoice {
  const models = groupModels(files);
  if (models.length === 0) throw new UsageError("no_gguf", `${spec.repo} has no .gguf files (moestream runs GGUF models; look for a repo named ...-GGUF)`);
  const avail = `; available: ${describeChoices(models)}`;
  const one = (ms: ModelChoice[], what: string): ModelChoice => {
    if (ms.length > 1) throw new UsageError("ambiguous_quant", `${spec.repo}: ${what} matches ${ms.map((m) => m.files[0].path).join(", ")}; name the file instead`);
    checkParts(ms[0], spec.repo);
    return ms[0];
  };
  const sel = spec.select;
  if (sel.kind === "file") {
    const want = sel.path.toLowerCase();
    const byPath = models.filter((m) => m.files.some((f) => f.path.toLowerCase() === want));
    const byBase = byPath.length ? byPath : models.filter((m) => m.files.some((f) => f.path.split("/").pop()!.toLowerCase() === want));
    if (byBase.length === 0) {
      const names = models.flatMap((m) => m.files.map((f) => f.path));
      throw new UsageError("file_not_found", `${spec.repo}: no file '${sel.path}'${didYouMean(sel.path, names)}${avail}`);
    }
    return one(byBase, `'${sel.path}'`);
  }
  const tag = sel.kind === "quant" ? sel.tag : DEFAULT_QUANT;
  const exact = models.filter((m) => m.label.toLowerCase() === tag.toLowerCase());
  if (exact.length) return one(exact, `quant ${tag}`);
  // A tag the label ends with (Q2_K_XL for UD-Q2_K_XL), at a separator.
  const tail = new RegExp(`(?:^|[-_.])${tag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "i");
  const suffix = models.filter((m) => tail.test(m.label));
  if (suffix.length) return one(suffix, `quant ${tag}`);
  if (sel.kind === "default" && models.length === 1) return one(models, "the only model");
  if (sel.kind === "default") {
    throw new UsageError("quant_required", `${spec.repo} has no ${DEFAULT_QUANT} and ${models.length} other models: name one as ${spec.repo}:QUANT${avail}`);
  }
  throw new UsageError("quant_not_found", `${spec.repo}: no ${tag} GGUF${didYouMean(tag, models.map((m) => m.label))}${avail}`);
}
