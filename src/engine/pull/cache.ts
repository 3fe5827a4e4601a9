// The pull cache: CACHE/owner/name/<path in repo>, beside a manifest of what the Hub listed (for offline
// choices and their error messages) and which files were verified against their digest when downloaded.
import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { mkdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import { FormatError } from "../../util/errors.js";
import type { RepoFile } from "./select.js";

export const MANIFEST = ".moestream-pull.json";

export interface Manifest {
  repo: string;
  /** The commit the listing and downloads came from. */
  commit: string;
  /** Every GGUF the repo listed at that commit. */
  files: RepoFile[];
  /** path -> the digest its bytes were verified against. */
  verified: Record<string, string>;
  /** A merged split model's path -> its parts' digests (the parts are deleted once merged). */
  merged?: Record<string, string>;
}

export function repoDir(cacheDir: string, repo: string): string {
  return join(cacheDir, ...repo.split("/"));
}

/** Where a repo file lives in the cache; a listed path that would leave the repo's folder is refused. */
export function localPath(dir: string, path: string): string {
  const p = resolve(dir, path);
  if (!p.startsWith(resolve(dir) + sep)) throw new FormatError("bad_listing", path, undefined, "the Hub listed a file path outside the repo");
  return p;
}

export async function readManifest(dir: string): Promise<Manifest | undefined> {
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) return undefined;
  try {
    const m = JSON.parse(await readFile(path, "utf8")) as Manifest;
    if (typeof m.commit !== "string" || !Array.isArray(m.files) || typeof m.verified !== "object" || m.verified === null) throw new Error("missing fields");
    return m;
  } catch (e) {
    throw new FormatError("bad_manifest", path, undefined, `not a pull manifest (${(e as Error).message}); delete it and pull again`);
  }
}

export async function writeManifest(dir: string, m: Manifest): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, MANIFEST);
  await writeFile(path + ".tmp", JSON.stringify(m, null, 1));
  await rename(path + ".tmp", path);
}

/** A file's digest as the manifest records it (sha256, or the git blob sha1 of a non-LFS file). */
export function digestOf(f: RepoFile): string {
  return (f.sha256 ?? f.gitSha1 ?? "").toLowerCase();
}

/** The file is in the cache, whole, and was verified against this digest. */
export function isCached(dir: string, m: Manifest | undefined, f: RepoFile): boolean {
  if (!m || m.verified[f.path] !== digestOf(f) || digestOf(f) === "") return false;
  const p = localPath(dir, f.path);
  return existsSync(p) && statSync(p).size === f.size;
}

/**
 * The file in a Hugging Face hub cache (huggingface-cli, huggingface_hub, llama.cpp's -hf): a snapshot's
 * `path` whose blob is named by the LFS sha256 the Hub lists now and has its size. The blob's name is its
 * digest there (as huggingface_hub trusts it), so nothing is hashed again.
 */
export function inHfCache(hfCache: string, repo: string, f: RepoFile): string | undefined {
  if (!f.sha256) return undefined;
  const snapshots = join(hfCache, `models--${repo.replace("/", "--")}`, "snapshots");
  if (!existsSync(snapshots)) return undefined;
  for (const commit of readdirSync(snapshots)) {
    const p = join(snapshots, commit, f.path);
    try {
      const real = realpathSync(p);
      if (basename(real) === f.sha256.toLowerCase() && statSync(real).size === f.size) return real;
    } catch {
      // not in this snapshot
    }
  }
  return undefined;
}

/** Put a link to a file already on disk where the cache keeps `dest` (a stale link or part is replaced). */
export async function linkInto(target: string, dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  await rm(dest + ".link", { force: true });
  await symlink(target, dest + ".link");
  await rename(dest + ".link", dest);
}
