// A local stand-in for the Hugging Face Hub, answering the requests @huggingface/hub makes the way the Hub does:
// model info (/api/models/R/revision/REV), the paginated tree listing (Link: rel="next") with each LFS file's
// sha256, and resolve URLs that 302-redirect LFS files to a separate CDN origin serving Range requests.
// Repos may be gated (a bearer token required); files can be cut mid-response or served corrupted.
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface StandInRepo {
  /** path in the repo -> bytes; names ending in .gguf are LFS files, others plain git files. */
  files: Record<string, Uint8Array>;
  /** A token every request must carry (as a gated repo after its terms are accepted). */
  token?: string;
  /** Xet-backed LFS files (most on the Hub now): a resolve asking for xet file info gets it instead of a redirect. */
  xet?: boolean;
}

export interface Logged {
  origin: "hub" | "cdn";
  method: string;
  url: string;
  range?: string;
  auth?: string;
}

export interface HubStandIn {
  url: string;
  /** Every request, in arrival order. */
  log: Logged[];
  /** path -> byte offset: the next CDN response of that file that reaches the offset stops there, connection dropped (once). */
  cutAt: Map<string, number>;
  /** Paths whose CDN bytes have one byte flipped (every response). */
  corrupt: Set<string>;
  close(): Promise<void>;
}

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const PAGE = 3; // tree entries per page, so listings take several requests as large repos do on the Hub

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const gitSha1 = (b: Uint8Array) => createHash("sha1").update(`blob ${b.byteLength}\0`).update(b).digest("hex");
const isLfs = (path: string) => path.endsWith(".gguf");

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

async function listen(s: Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

export async function startHubStandIn(repos: Record<string, StandInRepo>): Promise<HubStandIn> {
  const log: Logged[] = [];
  const cutAt = new Map<string, number>();
  const corrupt = new Set<string>();
  const blobs = new Map<string, { path: string; data: Uint8Array }>();
  for (const r of Object.values(repos)) for (const [path, data] of Object.entries(r.files)) if (isLfs(path)) blobs.set(sha256(data), { path, data });

  const note = (origin: Logged["origin"], req: IncomingMessage) =>
    log.push({ origin, method: req.method ?? "", url: req.url ?? "", range: req.headers.range, auth: req.headers.authorization });

  const cdn = createServer((req, res) => {
    note("cdn", req);
    const blob = blobs.get(new URL(req.url!, "http://x").pathname.replace(/^\/blobs\//, ""));
    if (!blob) return json(res, 404, { error: "no such blob" });
    let data = blob.data;
    if (corrupt.has(blob.path)) {
      data = new Uint8Array(data); // a copy: Buffer.slice would share (and flip) the repo's bytes
      data[data.length >> 1] ^= 0xff;
    }
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
    if (m && start >= data.length) {
      res.writeHead(416, { "content-range": `bytes */${data.length}` });
      return res.end();
    }
    const headers = { etag: `"${sha256(blob.data)}"`, "accept-ranges": "bytes", "content-type": "application/octet-stream", "content-length": String(end - start + 1) };
    res.writeHead(m ? 206 : 200, m ? { ...headers, "content-range": `bytes ${start}-${end}/${data.length}` } : headers);
    const body = data.subarray(start, end + 1);
    const cut = cutAt.get(blob.path);
    if (cut !== undefined && cut > start && cut <= end) {
      cutAt.delete(blob.path);
      // The bytes up to the cut arrive, then the connection drops, as a reset mid-download does.
      res.write(body.subarray(0, cut - start), () => res.socket?.destroy());
      return;
    }
    res.end(req.method === "HEAD" ? undefined : body);
  });
  const cdnUrl = await listen(cdn);

  const hub = createServer((req, res) => {
    note("hub", req);
    const u = new URL(req.url!, "http://x");
    const parts = u.pathname.split("/").map(decodeURIComponent);
    // /api/models/OWNER/NAME/(revision|tree)/REV[/...], or /OWNER/NAME/resolve/REV/PATH...
    const api = parts[1] === "api" && parts[2] === "models";
    const [owner, name, verb, rev] = api ? parts.slice(3, 7) : parts.slice(1, 5);
    const id = `${owner}/${name}`;
    const repo = repos[id];
    if (!repo) return json(res, 401, { error: "Repository not found" }, { "x-error-code": "RepoNotFound" });
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      const status = req.headers.authorization ? 403 : 401;
      return json(res, status, { error: `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.` }, { "x-error-code": "GatedRepo" });
    }
    if (rev !== "main" && rev !== "HEAD" && rev !== COMMIT) return json(res, 404, { error: `Invalid rev id: ${rev}` }, { "x-error-code": "RevisionNotFound" });
    const paths = Object.keys(repo.files).sort();
    if (api && verb === "revision") {
      return json(res, 200, {
        _id: "0".repeat(24), id, sha: COMMIT, private: false, gated: repo.token ? "manual" : false, downloads: 0, likes: 0,
        lastModified: "2026-01-01T00:00:00.000Z", pipeline_tag: "text-generation",
        siblings: paths.map((rfilename) => ({ rfilename })),
      });
    }
    if (api && verb === "tree") {
      const entries = treeEntries(repo);
      const from = Number(u.searchParams.get("cursor") ?? 0);
      const next = from + PAGE < entries.length ? `<${hubUrl}${u.pathname}?recursive=true&expand=false&cursor=${from + PAGE}>; rel="next"` : undefined;
      return json(res, 200, entries.slice(from, from + PAGE), next ? { link: next } : {});
    }
    if (!api && verb === "resolve") {
      const path = parts.slice(5).join("/");
      const data = repo.files[path];
      if (!data) return json(res, 404, { error: "Entry not found" }, { "x-error-code": "EntryNotFound" });
      const common = { "x-repo-commit": COMMIT };
      if (!isLfs(path)) {
        res.writeHead(200, { ...common, etag: `"${gitSha1(data)}"`, "content-length": String(data.length) });
        return res.end(req.method === "HEAD" ? undefined : data);
      }
      if (repo.xet && req.headers.accept?.includes("application/vnd.xet-fileinfo+json")) {
        // What the Hub answers a xet-aware client; one that does not speak xet follows the plain resolve URL.
        const hash = sha256(data); // stands in for the xet merkle hash: only a xet client would use it
        return json(res, 200, { casUrl: `${cdnUrl}/xet`, hash, refreshUrl: `${hubUrl}/api/models/${id}/xet-read-token/${COMMIT}`, size: data.length }, {
          "content-type": "application/vnd.xet-fileinfo+json", "x-xet-hash": hash, "x-linked-size": String(data.length), "x-linked-etag": `"${sha256(data)}"`,
          link: `<${hubUrl}/api/models/${id}/xet-read-token/${COMMIT}>; rel="xet-auth", <${cdnUrl}/xet/reconstructions/${hash}>; rel="xet-reconstruction-info"`,
          ...common,
        });
      }
      res.writeHead(302, {
        ...common, location: `${cdnUrl}/blobs/${sha256(data)}?expires=9999999999`, "x-linked-etag": `"${sha256(data)}"`, "x-linked-size": String(data.length),
      });
      return res.end();
    }
    json(res, 404, { error: "not found" });
  });
  const hubUrl = await listen(hub);

  return {
    url: hubUrl, log, cutAt, corrupt,
    close: async () => {
      for (const s of [hub, cdn]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };
}

/** The tree as the Hub lists it recursively: folders, then files; LFS files with their sha256 and size. */
function treeEntries(repo: StandInRepo): unknown[] {
  const paths = Object.keys(repo.files).sort();
  const dirs = [...new Set(paths.flatMap((p) => p.split("/").slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join("/"))))];
  return [
    ...dirs.map((path) => ({ type: "directory", oid: gitSha1(new TextEncoder().encode(path)), size: 0, path })),
    ...paths.map((path) => {
      const data = repo.files[path];
      if (!isLfs(path)) return { type: "file", oid: gitSha1(data), size: data.length, path };
      const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(data)}\nsize ${data.length}\n`;
      return { type: "file", oid: gitSha1(new TextEncoder().encode(pointer)), size: data.length, path, lfs: { oid: sha256(data), size: data.length, pointerSize: pointer.length } };
    }),
  ];
}
