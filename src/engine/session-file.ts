// Session state on disk: each layer's state (its kind and bytes, as the layer saves it), the tokens it
// holds, pending tokens and the sampler's RNG. Layout (version 2): magic | version u32 | header length u32 |
// header JSON (with one {kind, bytes} per layer) | pad to 16 | each layer's bytes in order | crc32c u32 of
// header JSON + state bytes. Written to a temp file and renamed, so a crash never leaves half.
// Version 1 (KV rows only, before state kinds) is refused with a message saying so.
import { open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { crc32c } from "../util/crc32c.js";
import { processExists } from "../util/process.js";
import { FormatError, ModelError, MoestreamError, UsageError } from "../util/errors.js";
import type { Session } from "./session.js";

const MAGIC = "MOESESS\0";
const VERSION = 2;
const FORMAT = "moestream-session";

interface SessionHeader {
  format: typeof FORMAT;
  model: { arch: string; identity: string; nLayer: number; nVocab: number };
  length: number;
  /** Per layer: its state kind and the bytes saved for it. */
  states: { kind: string; bytes: number }[];
  tokens: number[];
  pending: number[];
  rng: number[] | null;
  /** The application's own state (e.g. the chat's messages), saved and restored as given. */
  meta?: unknown;
}

const pad16 = (n: number) => (16 - (n % 16)) % 16;
/** The header holds tokens, RNG state and the application's meta (a chat's messages): far below this. */
const MAX_HEADER_BYTES = 256 << 20;

async function modelKey(s: Session): Promise<SessionHeader["model"]> {
  const info = s.lm.model.info;
  return { arch: s.lm.arch, identity: await s.lm.identity(), nLayer: info.nLayer, nVocab: info.nVocab };
}

/** Write `session` to `path` atomically (temp file in the same directory, fsync, rename). */
export async function saveSession(session: Session, path: string): Promise<void> {
  const length = session.tokens.length;
  const blobs: Uint8Array[] = [];
  for (const l of session.cache.layers) blobs.push(await l.save());
  const header: SessionHeader = {
    format: FORMAT, model: await modelKey(session), length, states: session.cache.layers.map((l, i) => ({ kind: l.kind, bytes: blobs[i].byteLength })),
    tokens: session.tokens.slice(), pending: session.pending.slice(), rng: session.rngState ?? null, meta: session.meta,
  };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const pre = Buffer.alloc(16);
  pre.write(MAGIC, 0, "latin1");
  pre.writeUInt32LE(VERSION, 8);
  pre.writeUInt32LE(json.byteLength, 12);
  await removeStaleTemps(path);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  const fh = await open(tmp, "w").catch((e: NodeJS.ErrnoException) => {
    throw fsError(path, "save", e);
  });
  try {
    let crc = crc32c(json);
    await fh.write(pre);
    await fh.write(json);
    await fh.write(Buffer.alloc(pad16(16 + json.byteLength)));
    for (const b of blobs) {
      crc = crc32c(b, crc);
      await fh.write(b);
    }
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(crc >>> 0);
    await fh.write(tail);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw (e as NodeJS.ErrnoException).code && !(e instanceof MoestreamError) ? fsError(path, "save", e as NodeJS.ErrnoException) : e;
  }
}

/** A file-system failure as a one-line typed error naming the session file (a chat reports it and goes on). */
function fsError(path: string, what: "save" | "load", e: NodeJS.ErrnoException): UsageError {
  const why: Record<string, string> = { ENOENT: "no such directory", EISDIR: "it is a directory", EACCES: "permission denied", ENOSPC: "no space left on the device", EROFS: "read-only file system" };
  return new UsageError(`session_${what}_failed`, `cannot ${what} the session ${what === "save" ? "to" : "from"} ${path}: ${why[e.code ?? ""] ?? e.message}`);
}

/** Temp files of saves to `path` whose process is gone (a killed save): removed before the next save. */
async function removeStaleTemps(path: string): Promise<void> {
  const prefix = `.${basename(path)}.tmp-`;
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  for (const n of names) {
    const m = n.startsWith(prefix) ? /^(\d+)-[0-9a-f]{8}$/.exec(n.slice(prefix.length)) : null;
    if (m && Number(m[1]) !== process.pid && !processExists(Number(m[1]))) await unlink(join(dirname(path), n)).catch(() => {});
  }
}

/** Replace `session`'s state with the one saved at `path`; refuses files of another model, truncated or corrupt ones. */
export async function loadSessionInto(session: Session, path: string): Promise<void> {
  const fh = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
    throw new FormatError(e.code === "ENOENT" ? "not_found" : "unreadable", path, undefined, e.code === "ENOENT" ? "session file not found" : e.message);
  });
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new FormatError("not_a_file", path, undefined, "is a directory, not a session file");
    const size = st.size;
    const exact = async (at: number, n: number, what: string): Promise<Buffer> => {
      const b = Buffer.alloc(n);
      const { bytesRead } = await fh.read(b, 0, n, at);
      if (bytesRead !== n) throw new FormatError("truncated", path, at + bytesRead, `${what}: expected ${n} bytes, the file ends after ${bytesRead} (file is ${size} bytes; truncated?)`);
      return b;
    };
    const pre = await exact(0, 16, "session header");
    if (pre.toString("latin1", 0, 8) !== MAGIC) throw new FormatError("bad_magic", path, 0, "not a moestream session file (bad magic)");
    const version = pre.readUInt32LE(8);
    if (version === 1) throw new FormatError("bad_version", path, 8, "session format version 1 (saved before per-layer state kinds) is no longer read; this moestream reads version 2: generate the conversation again and save it");
    if (version !== VERSION) throw new FormatError("bad_version", path, 8, `session format version ${version}; this moestream reads version ${VERSION}`);
    // Bounded before it sizes an allocation: a flipped bit must give this error, not a 4 GiB read.
    const jsonLength = pre.readUInt32LE(12);
    if (jsonLength > Math.min(size - 16, MAX_HEADER_BYTES)) {
      throw new FormatError("bad_header", path, 12, `session header length ${jsonLength} exceeds ${size - 16 < MAX_HEADER_BYTES ? `the ${size - 16} bytes after it (file is ${size} bytes)` : `${MAX_HEADER_BYTES} bytes`} (corrupt)`);
    }
    const jsonBytes = await exact(16, jsonLength, "session header JSON");
    let header: SessionHeader;
    try {
      header = JSON.parse(jsonBytes.toString("utf8")) as SessionHeader;
    } catch (e) {
      throw new FormatError("bad_header", path, 16, `session header is not JSON: ${(e as Error).message}`);
    }
    if (header.format !== FORMAT || !Array.isArray(header.tokens) || header.tokens.length !== header.length || !Array.isArray(header.pending)
      || !Number.isSafeInteger(header.length) || header.length < 0 || !Array.isArray(header.states) || typeof header.model !== "object" || header.model === null) {
      throw new FormatError("bad_header", path, 16, "session header is malformed (format, model, tokens, length or states)");
    }
    const want = await modelKey(session);
    const got = header.model;
    if (got.arch !== want.arch || got.identity !== want.identity || got.nLayer !== want.nLayer || got.nVocab !== want.nVocab) {
      throw new ModelError("session_model_mismatch", `${path} was saved from another model (${String(got.arch)}, identity ${String(got.identity).slice(0, 12)}…); the loaded model is ${want.arch}, identity ${want.identity.slice(0, 12)}…`);
    }
    // Token ids index the embedding table: a hostile file (its checksum recomputed) must not reach it with a bad one.
    const badId = [...header.tokens, ...header.pending].find((t) => !Number.isInteger(t) || t < 0 || t >= want.nVocab);
    if (badId !== undefined) throw new FormatError("bad_header", path, 16, `session header holds token ${JSON.stringify(badId)}, not an id of this model's ${want.nVocab} tokens`);
    const rng = header.rng;
    if (rng !== null && !(Array.isArray(rng) && rng.length === 4 && rng.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff) && rng.some((w) => w !== 0))) {
      throw new FormatError("bad_header", path, 16, `session header's rng is ${JSON.stringify(rng)?.slice(0, 60)}, expected null or 4 uint32 words, not all zero`);
    }
    const ctx = header.length + header.pending.length;
    if (ctx > session.cache.nCtx) throw new ModelError("session_too_long", `${path} holds ${ctx} tokens; this session's context is ${session.cache.nCtx} (raise --ctx-size)`);
    // Each layer's saved state must be of the kind and size this model's layer expects at that length.
    const layers = session.cache.layers;
    if (header.states.length !== layers.length) throw new FormatError("bad_header", path, 16, `session header lists ${header.states.length} layer states, the model has ${layers.length} layers`);
    header.states.forEach((st, i) => {
      const expect = layers[i].savedBytes(header.length);
      if (st?.kind !== layers[i].kind || st.bytes !== expect) {
        throw new FormatError("bad_header", path, 16, `layer ${i}: saved state is ${JSON.stringify(st?.kind)} of ${st?.bytes} bytes, this model's layer keeps '${layers[i].kind}' state of ${expect} bytes at ${header.length} tokens`);
      }
    });
    const dataAt = 16 + jsonBytes.byteLength + pad16(16 + jsonBytes.byteLength);
    const expected = dataAt + header.states.reduce((a, st) => a + st.bytes, 0) + 4;
    if (size !== expected) throw new FormatError("truncated", path, size, `session file is ${size} bytes; its header implies ${expected} (truncated or padded)`);
    // Read and check everything before touching the session, so a bad file leaves it as it was.
    let crc = crc32c(jsonBytes);
    const blobs: Uint8Array[] = [];
    let at = dataAt;
    for (const [i, st] of header.states.entries()) {
      const b = await exact(at, st.bytes, `state of layer ${i}`);
      crc = crc32c(b, crc);
      blobs.push(b);
      at += st.bytes;
    }
    const stored = (await exact(expected - 4, 4, "checksum")).readUInt32LE(0);
    if (stored !== crc >>> 0) throw new FormatError("checksum_mismatch", path, expected - 4, `crc32c is ${(crc >>> 0).toString(16)}, the file says ${stored.toString(16)} (corrupt)`);
    session.truncate(0);
    layers.forEach((l, i) => l.load(blobs[i], header.length));
    session.tokens.push(...header.tokens);
    session.pending.push(...header.pending);
    session.rngState = header.rng ?? undefined;
    session.meta = header.meta;
  } finally {
    await fh.close();
  }
}
