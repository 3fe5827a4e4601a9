// `pull`: a GGUF from the Hugging Face Hub into the local cache, through the Hub's own client
// (@huggingface/hub: model info for the commit, the tree listing with each file's LFS sha256, resolve URLs).
// Every part of a split GGUF is fetched; partial files resume; offline, the cache answers alone.
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { mergeSplitGGUF } from "../../format/gguf/split.js";
import { MoestreamError, NetworkError, UsageError } from "../../util/errors.js";
import { digestOf, inHfCache, isCached, linkInto, localPath, readManifest, repoDir, writeManifest, type Manifest } from "./cache.js";
import { causeOf, downloadVerified } from "./download.js";
import { mergedPath, parsePullSpec, pickModel, type ModelChoice, type PullSpec, type RepoFile } from "./select.js";

export { isHubSpec, parsePullSpec, pickModel, quantLabel, type PullSpec, type RepoFile } from "./select.js";

export const HUB_URL = "https://huggingface.co";

export interface PullOptions {
  /** Where models are kept: CACHE/owner/name/FILE. */
  cacheDir: string;
  /** A Hugging Face hub cache (HF_HUB_CACHE) whose verified files are linked instead of downloaded again. */
  hfCache?: string;
  /** The Hub (or a mirror); default https://huggingface.co. */
  hubUrl?: string;
  /** An access token (hf_...) for gated and private repos. */
  token?: string;
  /** Ask nothing of the network: answer from the cache or fail. */
  offline?: boolean;
  /** Branch, tag or commit; default main. */
  revision?: string;
  /** Connection cuts survived per file (each retry resumes). */
  retries?: number;
  onProgress?(done: number, total: number): void;
  /** Merge a split GGUF's parts into one file (the engine loads one file) and delete the parts. */
  merge?: boolean;
  onMergeProgress?(done: number, total: number): void;
  /** One line for the user (stderr in the CLI). */
  onNote?(line: string): void;
}

export interface PullResult {
  repo: string;
  /** Local paths of the model's files: one, or a split GGUF's parts in order (unless merged). */
  files: string[];
  /** The commit they came from. */
  commit: string;
  /** Bytes fetched over the network by this call. */
  downloaded: number;
  /** Answered from the cache without the network (asked to, or the Hub unreachable). */
  offline: boolean;
}

type Hub = typeof import("@huggingface/hub");

/** A fetch that never reached an HTTP answer (refused, reset, DNS, TLS), as opposed to an HTTP error status. */
function unreachable(e: unknown): boolean {
  return e instanceof TypeError && /fetch failed|network|terminated/i.test(e.message);
}

/** The Hub's HTTP errors as our typed ones: no such repo or no access is the user's to fix (exit 2). */
function hubError(e: unknown, repo: string, o: HubAccess, hub: Hub): unknown {
  if (e instanceof hub.InvalidApiResponseFormatError) return new NetworkError("hub_error", `${repo}: ${o.hubUrl ?? HUB_URL} gave an answer the Hub's client cannot read (${e.message}); a proxy in the way?`, { cause: e });
  if (!(e instanceof hub.HubApiError)) return unreachable(e) ? new NetworkError("hub_unreachable", `cannot reach ${o.hubUrl ?? HUB_URL} (${causeOf(e)})`, { cause: e }) : e;
  const msg = e.message.replace(/\. URL: .*$/, "");
  const tokenHint = o.token ? "" : "; a gated or private repo needs a token (--token or HF_TOKEN)";
  if (e.statusCode === 401 || e.statusCode === 404) return new UsageError("repo_not_found", `${repo}: not found on ${o.hubUrl ?? HUB_URL} (HTTP ${e.statusCode}: ${msg})${tokenHint}`);
  if (e.statusCode === 403) return new UsageError("repo_forbidden", `${repo}: access denied (HTTP 403: ${msg}); for a gated repo, accept its terms on its page with the token's account`);
  return new NetworkError("hub_error", `${repo}: ${o.hubUrl ?? HUB_URL} answered HTTP ${e.statusCode} (${msg})`, { cause: e });
}

function checkToken(token: string | undefined): void {
  if (token !== undefined && !/^hf_[A-Za-z0-9]+$/.test(token)) throw new UsageError("bad_token", "the access token must look like hf_... (letters and digits)");
}

/** What reading a repo needs: the Hub's address, a token, a revision (PullOptions' fields of the same names). */
export type HubAccess = Pick<PullOptions, "hubUrl" | "token" | "revision">;

/** A model on the Hub as `pull` would choose it, with each file's resolve URL at the listed commit; no file bytes fetched. */
export interface RemoteModel {
  repo: string;
  commit: string;
  label: string;
  files: (RepoFile & { url: string })[];
}

/** The model `spec` names in the repo (the same listing and choice as `pull`), located for range requests (doctor). */
export async function locate(spec: string | PullSpec, o: HubAccess): Promise<RemoteModel> {
  const s = typeof spec === "string" ? parsePullSpec(spec) : spec;
  checkToken(o.token);
  const hub: Hub = await import("@huggingface/hub");
  let listed: { commit: string; files: RepoFile[] };
  try {
    listed = await listRepo(hub, s.repo, o);
  } catch (e) {
    throw hubError(e, s.repo, o, hub);
  }
  const choice = pickModel(s, listed.files);
  const base = `${(o.hubUrl ?? HUB_URL).replace(/\/+$/, "")}/${s.repo}/resolve/${encodeURIComponent(listed.commit)}/`;
  return {
    repo: s.repo, commit: listed.commit, label: choice.label,
    files: choice.files.map((f) => ({ ...f, url: base + f.path.split("/").map(encodeURIComponent).join("/") })),
  };
}

export async function pull(spec: string | PullSpec, o: PullOptions): Promise<PullResult> {
  const s = typeof spec === "string" ? parsePullSpec(spec) : spec;
  checkToken(o.token);
  const dir = repoDir(o.cacheDir, s.repo);
  const cached = await readManifest(dir);
  if (o.offline) return fromCache(s, dir, cached, "offline");
  const hub: Hub = await import("@huggingface/hub");
  let listed: { commit: string; files: RepoFile[] };
  try {
    listed = await listRepo(hub, s.repo, o);
  } catch (e) {
    const err = hubError(e, s.repo, o, hub);
    // Only a network failure falls back to the cache: a missing repo or a refused token is an answer.
    if (!(err instanceof NetworkError)) throw err;
    if (!cached) throw new NetworkError(err.code, `${err.message}, and ${s.repo} is not in the cache (${dir})`, { cause: e });
    o.onNote?.(`${err.message}; using the cache`);
    return fromCache(s, dir, cached, "unreachable");
  }
  const choice = pickModel(s, listed.files);
  const m: Manifest = { repo: s.repo, commit: listed.commit, files: listed.files, verified: cached?.commit === listed.commit ? cached.verified : keepSame(cached, listed.files), merged: cached?.merged };
  await writeManifest(dir, m);
  const merged = mergedFile(dir, m, choice);
  if (merged) return { repo: s.repo, files: [merged], commit: listed.commit, downloaded: 0, offline: false };
  const total = choice.files.reduce((a, f) => a + f.size, 0);
  let before = 0;
  let downloaded = 0;
  for (const f of choice.files) {
    const dest = localPath(dir, f.path);
    const elsewhere = isCached(dir, m, f) || !o.hfCache ? undefined : inHfCache(o.hfCache, s.repo, f);
    if (elsewhere) {
      await linkInto(elsewhere, dest);
      o.onNote?.(`${f.path}: linked from the Hugging Face cache (${elsewhere})`);
      m.verified[f.path] = digestOf(f);
      await writeManifest(dir, m);
    } else if (!isCached(dir, m, f)) {
      let blob: Blob | undefined;
      await mkdir(dirname(dest), { recursive: true });
      downloaded += await downloadVerified({
        file: f, dest, retries: o.retries,
        // One size probe per file; retries reuse its blob for their Range requests.
        open: async (start) => (blob ??= await fileBlob(hub, s.repo, listed.commit, f, o)).slice(start).stream() as ReadableStream<Uint8Array>,
        onBytes: (d) => o.onProgress?.(before + d, total),
      });
      m.verified[f.path] = digestOf(f);
      await writeManifest(dir, m);
    }
    before += f.size;
    o.onProgress?.(before, total);
  }
  const files = o.merge && choice.files.length > 1 ? [await merge(dir, m, choice, o)] : choice.files.map((f) => localPath(dir, f.path));
  return { repo: s.repo, files, commit: listed.commit, downloaded, offline: false };
}

/** A split model merged by an earlier pull from these very parts (by digest), if still there. */
function mergedFile(dir: string, m: Manifest, choice: ModelChoice): string | undefined {
  if (choice.files.length < 2) return undefined;
  const rel = mergedPath(choice.files[0].path);
  const out = localPath(dir, rel);
  return m.merged?.[rel] === choice.files.map(digestOf).join(",") && existsSync(out) ? out : undefined;
}

/** Merge verified parts into one GGUF, record it, then delete the parts (the record stands for them). */
async function merge(dir: string, m: Manifest, choice: ModelChoice, o: PullOptions): Promise<string> {
  const rel = mergedPath(choice.files[0].path);
  const out = localPath(dir, rel);
  const parts = choice.files.map((f) => localPath(dir, f.path));
  await mergeSplitGGUF(parts, out, o.onMergeProgress);
  m.merged = { ...m.merged, [rel]: choice.files.map(digestOf).join(",") };
  for (const f of choice.files) delete m.verified[f.path];
  await writeManifest(dir, m);
  for (const p of parts) await rm(p, { force: true });
  return out;
}

/** Verified files whose digest the new listing still has stay verified across commits (an unchanged file). */
function keepSame(cached: Manifest | undefined, files: RepoFile[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of files) if (cached?.verified[f.path] === digestOf(f)) out[f.path] = digestOf(f);
  return out;
}

/** The commit `revision` points at and every GGUF in the repo there, with sizes and digests. */
async function listRepo(hub: Hub, repo: string, o: HubAccess): Promise<{ commit: string; files: RepoFile[] }> {
  const common = { hubUrl: o.hubUrl ?? HUB_URL, accessToken: o.token };
  const info = await hub.modelInfo({ name: repo, revision: o.revision ?? "main", additionalFields: ["sha"], ...common });
  const commit = info.sha;
  if (typeof commit !== "string" || !commit) throw new NetworkError("hub_error", `${repo}: the Hub's model info has no commit sha`);
  const files: RepoFile[] = [];
  for await (const e of hub.listFiles({ repo, recursive: true, revision: commit, ...common })) {
    if (e.type !== "file" || !/\.gguf$/i.test(e.path)) continue;
    files.push({ path: e.path, size: e.lfs?.size ?? e.size, sha256: e.lfs?.oid, gitSha1: e.lfs ? undefined : e.oid });
  }
  return { commit, files };
}

/** The file behind the Hub's resolve URL (which redirects to its CDN), read with Range requests. */
async function fileBlob(hub: Hub, repo: string, commit: string, f: RepoFile, o: PullOptions): Promise<Blob> {
  let blob: Blob | null;
  try {
    // xet off: the plain resolve URL serves Range requests, which is what resuming needs.
    blob = await hub.downloadFile({ repo, path: f.path, revision: commit, hubUrl: o.hubUrl ?? HUB_URL, accessToken: o.token, xet: false });
  } catch (e) {
    throw hubError(e, repo, o, hub);
  }
  if (!blob) throw new UsageError("file_not_found", `${repo}: ${f.path} is listed at ${commit} but the Hub does not serve it`);
  if (blob.size !== f.size) throw new NetworkError("size_changed", `${repo}: ${f.path} is ${blob.size} bytes at its URL, the listing says ${f.size}`);
  return blob;
}

/** Answer from the cache alone: the model the spec picks among the files listed when last online, each verified. */
function fromCache(s: PullSpec, dir: string, m: Manifest | undefined, why: "offline" | "unreachable"): PullResult {
  const how = why === "offline" ? "offline" : "the Hub is unreachable";
  if (!m) throw (why === "offline" ? usage : network)("not_cached", `${s.repo} is not in the cache (${dir}) and ${how}: pull it once online`);
  let choice: ModelChoice;
  try {
    choice = pickModel(s, m.files);
  } catch (e) {
    if (e instanceof MoestreamError) throw new UsageError(e.code, `${e.message} (as listed when last online, ${how})`);
    throw e;
  }
  const merged = mergedFile(dir, m, choice);
  if (merged) return { repo: s.repo, files: [merged], commit: m.commit, downloaded: 0, offline: true };
  const missing = choice.files.filter((f) => !isCached(dir, m, f));
  if (missing.length) {
    const what = missing.map((f) => `${f.path}${existsSync(localPath(dir, f.path) + ".part") ? " (partly downloaded)" : ""}`).join(", ");
    throw (why === "offline" ? usage : network)("not_cached", `${s.repo}: ${what} not in the cache (${dir}) and ${how}`);
  }
  return { repo: s.repo, files: choice.files.map((f) => localPath(dir, f.path)), commit: m.commit, downloaded: 0, offline: true };
}

const usage = (code: string, msg: string) => new UsageError(code, msg);
const network = (code: string, msg: string) => new NetworkError(code, msg);
