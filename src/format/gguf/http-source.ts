// A ByteSource over HTTP range requests: the GGUF reader parses a remote file's header (metadata and tensor
// infos, usually a few MiB at its start) without downloading the tensor data.
import { UsageError } from "../../util/errors.js";
import type { ByteSource } from "./byte-source.js";

/** The header cursor asks for 1 MiB at a time; the first request takes this much and learns the size. */
const FIRST_BYTES = 1 << 20;

/** "bytes 0-1048575/17179869184" -> 17179869184. */
function totalFromContentRange(v: string | null): number | undefined {
  const m = v && /^bytes\s+\d+-\d+\/(\d+)\s*$/i.exec(v.trim());
  return m ? Number(m[1]) : undefined;
}

export class HttpRangeSource implements ByteSource {
  /** Bytes fetched so far: what reading the header cost. */
  fetchedBytes = 0;
  requests = 0;
  private constructor(readonly name: string, readonly size: number, private first: Uint8Array, private readonly headers: Record<string, string>) {}

  /** Opens `url` with one range request for its first MiB; UsageError naming the URL when the server cannot serve ranges. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<HttpRangeSource> {
    const { body, total } = await rangeFetch(url, 0, FIRST_BYTES, headers);
    const src = new HttpRangeSource(url, total, body, headers);
    src.fetchedBytes = body.byteLength;
    src.requests = 1;
    return src;
  }

  async read(offset: number, length: number, dst?: Uint8Array): Promise<Uint8Array> {
    const want = Math.max(0, Math.min(length, this.size - offset));
    const out = dst ? dst.subarray(0, want) : new Uint8Array(want);
    if (want === 0) return out;
    if (offset + want <= this.first.byteLength) {
      out.set(this.first.subarray(offset, offset + want));
      return out;
    }
    const { body } = await rangeFetch(this.name, offset, want, this.headers);
    this.fetchedBytes += body.byteLength;
    this.requests++;
    out.set(body.subarray(0, want));
    return body.byteLength >= want ? out : out.subarray(0, body.byteLength);
  }

  async close(): Promise<void> {
    this.first = new Uint8Array(0);
  }
}

async function rangeFetch(url: string, offset: number, length: number, headers: Record<string, string>): Promise<{ body: Uint8Array; total: number }> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { ...headers, range: `bytes=${offset}-${offset + length - 1}` }, redirect: "follow" });
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    throw new UsageError("fetch_failed", `${url}: cannot fetch (${cause})`);
  }
  if (res.status === 416) {
    await res.body?.cancel();
    throw new UsageError("bad_range", `${url}: range ${offset}-${offset + length - 1} is beyond the end of the file (HTTP 416)`);
  }
  if (res.status !== 206) {
    await res.body?.cancel();
    const why = res.status === 200 ? "the server ignores HTTP range requests (200 instead of 206): download the file and run doctor on it" : `HTTP ${res.status} ${res.statusText}`;
    throw new UsageError(res.status === 404 ? "model_not_found" : "fetch_failed", `${url}: ${why}`);
  }
  const total = totalFromContentRange(res.headers.get("content-range"));
  if (total === undefined) {
    await res.body?.cancel();
    throw new UsageError("fetch_failed", `${url}: a 206 answer without a usable Content-Range (${JSON.stringify(res.headers.get("content-range"))})`);
  }
  const body = new Uint8Array(await res.arrayBuffer());
  // A server may answer with less than asked only at the file's end.
  if (body.byteLength > length || (body.byteLength < length && offset + body.byteLength < total)) {
    throw new UsageError("fetch_failed", `${url}: asked bytes ${offset}-${offset + length - 1}, got ${body.byteLength} bytes of a ${total}-byte file`);
  }
  return { body, total };
}

export const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);
