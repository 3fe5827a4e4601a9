// One file downloaded into `dest.part`, resumed from the bytes already there (an HTTP Range from that
// offset), hashed as it arrives and renamed into place only when its size and digest are the Hub's.
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, rm, stat, truncate } from "node:fs/promises";
import { FormatError, MoestreamError, NetworkError } from "../../util/errors.js";
import type { RepoFile } from "./select.js";

export interface DownloadOptions {
  file: RepoFile;
  dest: string;
  /** The file's bytes from `start` to its end (a Range request). */
  open(start: number): Promise<ReadableStream<Uint8Array>>;
  /** Bytes of this file on disk so far, after every chunk. */
  onBytes?(done: number): void;
  /** Connection cuts survived before giving up (each retry resumes where the last stopped). */
  retries?: number;
}

/** What the Hub's digest of a file is computed over: LFS files by sha256, plain git files by the blob's sha1. */
function hasher(file: RepoFile): { hash: Hash; want: string; algo: string } {
  if (file.sha256) return { hash: createHash("sha256"), want: file.sha256.toLowerCase(), algo: "sha256" };
  if (file.gitSha1) {
    const hash = createHash("sha1").update(`blob ${file.size}\0`);
    return { hash, want: file.gitSha1.toLowerCase(), algo: "git sha1" };
  }
  throw new FormatError("no_checksum", file.path, undefined, "the Hub lists no sha256 or git oid for it, so a download could not be checked");
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Download (or finish downloading) one file; returns the bytes fetched over the network now. */
export async function downloadVerified(o: DownloadOptions): Promise<number> {
  const { file, dest } = o;
  const part = dest + ".part";
  const { hash, want, algo } = hasher(file);
  let have = await sizeOf(part);
  if (have > file.size) {
    await truncate(part, 0);
    have = 0;
  }
  // The bytes kept from an earlier try are hashed again: the digest covers the whole file.
  if (have > 0) for await (const chunk of createReadStream(part, { end: have - 1 })) hash.update(chunk as Buffer);
  o.onBytes?.(have);
  let fetched = 0;
  for (let attempt = 0; have < file.size; attempt++) {
    const fh = await open(part, "a");
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      reader = (await o.open(have)).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (have + value.byteLength > file.size) {
          await rm(part, { force: true });
          throw new FormatError("too_long", file.path, have, `the server sent more than the ${file.size} bytes the Hub lists; the download was deleted`);
        }
        await fh.write(value);
        hash.update(value);
        have += value.byteLength;
        fetched += value.byteLength;
        o.onBytes?.(have);
      }
      if (have < file.size) throw new Error(`the response ended at byte ${have} of ${file.size}`);
    } catch (e) {
      // A refusal (bad bytes, no access) is not a cut: only network failures are retried.
      if (e instanceof MoestreamError && !(e instanceof NetworkError)) throw e;
      if (attempt >= (o.retries ?? 3)) {
        throw new NetworkError("download_cut", `${file.path}: download stopped at byte ${have} of ${file.size} (${causeOf(e)}); run pull again to resume from there`, { cause: e });
      }
    } finally {
      // A response given up on is cancelled, so its connection does not linger.
      reader?.cancel().catch(() => {});
      await fh.close();
    }
  }
  const got = hash.digest("hex");
  if (got !== want) {
    await rm(part, { force: true });
    throw new FormatError("checksum_mismatch", file.path, undefined, `${algo} of the downloaded bytes is ${got}, the Hub lists ${want}; the download was deleted (run pull again)`);
  }
  await rename(part, dest);
  return fetched;
}

/** The innermost message of a fetch failure ("fetch failed" hides ECONNRESET in its cause). */
export function causeOf(e: unknown): string {
  let err = e as { message?: string; code?: string; cause?: unknown } | undefined;
  let msg = String(err?.message ?? e);
  for (let i = 0; err?.cause && i < 4; i++) {
    err = err.cause as typeof err;
    msg = err?.code ?? err?.message ?? msg;
  }
  return msg;
}
