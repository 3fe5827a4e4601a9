// Session state on disk: the KV cache rows in use, the tokens they hold, pending tokens and the sampler's
// RNG. Layout: magic | version u32 | header length u32 | header JSON | pad to 16 | per layer K rows, V rows
// (f32) | crc32c u32 of header JSON + rows. Written to a temp file and renamed, so a crash never leaves half.
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { crc32c } from "../util/crc32c.js";
import { FormatError, ModelError } from "../util/errors.js";
import type { Session } from "./session.js";

const MAGIC = "MOESESS\0";
const VERSION = 1;
const FORMAT = "moestream-session";

interface SessionHeader {
  format: typeof FORMAT;
  model: { arch: string; identity: string; nLayer: number; kvDim: number; nVocab: number };
  length: number;
  tokens: number[];
  pending: number[];
  rng: number[] | null;
  /** The application's own state (e.g. the chat's messages), saved and restored as given. */
  meta?: unknown;
}

const pad16 = (n: number) => (16 - (n % 16)) % 16;

async function modelKey(s: Session): Promise<SessionHeader["model"]> {
  const hp = s.lm.model.hp;
  return { arch: s.lm.arch, identity: await s.lm.identity(), nLayer: hp.nLayer, kvDim: s.kv.kvDim, nVocab: hp.nVocab };
}

/** Write `session` to `path` atomically (temp file in the same directory, fsync, rename). */
export async function saveSession(session: Session, path: string): Promise<void> {
  const length = session.tokens.length;
  const header: SessionHeader = {
    format: FORMAT, model: await modelKey(session), length, tokens: session.tokens.slice(), pending: session.pending.slice(), rng: session.rngState ?? null,
    meta: session.meta,
  };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const pre = Buffer.alloc(16);
  pre.write(MAGIC, 0, "latin1");
  pre.writeUInt32LE(VERSION, 8);
  pre.writeUInt32LE(json.byteLength, 12);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  const fh = await open(tmp, "w");
  try {
    let crc = crc32c(json);
    await fh.write(pre);
    await fh.write(json);
    await fh.write(Buffer.alloc(pad16(16 + json.byteLength)));
    const rowFloats = length * session.kv.kvDim;
    for (const layer of session.kv.layers) {
      for (const buf of [layer.k, layer.v]) {
        const all = await session.lm.backend.read(buf);
        const rows = new Uint8Array(all.buffer, all.byteOffset, rowFloats * 4);
        crc = crc32c(rows, crc);
        await fh.write(rows);
      }
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
    throw e;
  }
}

/** Replace `session`'s state with the one saved at `path`; refuses files of another model, truncated or corrupt ones. */
export async function loadSessionInto(session: Session, path: string): Promise<void> {
  const fh = await open(path, "r").catch((e: NodeJS.ErrnoException) => {
    throw new FormatError(e.code === "ENOENT" ? "not_found" : "unreadable", path, undefined, e.code === "ENOENT" ? "session file not found" : e.message);
  });
  try {
    const size = (await fh.stat()).size;
    const exact = async (at: number, n: number, what: string): Promise<Buffer> => {
      const b = Buffer.alloc(n);
      const { bytesRead } = await fh.read(b, 0, n, at);
      if (bytesRead !== n) throw new FormatError("truncated", path, at + bytesRead, `${what}: expected ${n} bytes, the file ends after ${bytesRead} (file is ${size} bytes; truncated?)`);
      return b;
    };
    const pre = await exact(0, 16, "session header");
    if (pre.toString("latin1", 0, 8) !== MAGIC) throw new FormatError("bad_magic", path, 0, "not a moestream session file (bad magic)");
    const version = pre.readUInt32LE(8);
    if (version !== VERSION) throw new FormatError("bad_version", path, 8, `session format version ${version}; this moestream reads version ${VERSION}`);
    const jsonBytes = await exact(16, pre.readUInt32LE(12), "session header JSON");
    let header: SessionHeader;
    try {
      header = JSON.parse(jsonBytes.toString("utf8")) as SessionHeader;
    } catch (e) {
      throw new FormatError("bad_header", path, 16, `session header is not JSON: ${(e as Error).message}`);
    }
    if (header.format !== FORMAT || !Array.isArray(header.tokens) || header.tokens.length !== header.length || !Array.isArray(header.pending)) {
      throw new FormatError("bad_header", path, 16, "session header is malformed (format, tokens or length)");
    }
    const want = await modelKey(session);
    const got = header.model;
    if (got.arch !== want.arch || got.identity !== want.identity || got.nLayer !== want.nLayer || got.kvDim !== want.kvDim || got.nVocab !== want.nVocab) {
      throw new ModelError("session_model_mismatch", `${path} was saved from another model (${got.arch}, identity ${got.identity.slice(0, 12)}…); the loaded model is ${want.arch}, identity ${want.identity.slice(0, 12)}…`);
    }
    const ctx = header.length + header.pending.length;
    if (ctx > session.kv.nCtx) throw new ModelError("session_too_long", `${path} holds ${ctx} tokens; this session's context is ${session.kv.nCtx} (raise --ctx-size)`);
    const rowBytes = header.length * want.kvDim * 4;
    const dataAt = 16 + jsonBytes.byteLength + pad16(16 + jsonBytes.byteLength);
    const expected = dataAt + 2 * want.nLayer * rowBytes + 4;
    if (size !== expected) throw new FormatError("truncated", path, size, `session file is ${size} bytes; its header implies ${expected} (truncated or padded)`);
    // Read and check everything before touching the session, so a bad file leaves it as it was.
    let crc = crc32c(jsonBytes);
    const rows: Float32Array[] = [];
    for (let i = 0; i < 2 * want.nLayer; i++) {
      const b = await exact(dataAt + i * rowBytes, rowBytes, `KV rows of layer ${i >> 1}`);
      crc = crc32c(b, crc);
      rows.push(new Float32Array(b.buffer, b.byteOffset, rowBytes / 4));
    }
    const stored = (await exact(expected - 4, 4, "checksum")).readUInt32LE(0);
    if (stored !== crc >>> 0) throw new FormatError("checksum_mismatch", path, expected - 4, `crc32c is ${(crc >>> 0).toString(16)}, the file says ${stored.toString(16)} (corrupt)`);
    session.truncate(0);
    session.kv.layers.forEach((l, i) => {
      if (rowBytes === 0) return;
      session.lm.backend.write(l.k, rows[2 * i], 0);
      session.lm.backend.write(l.v, rows[2 * i + 1], 0);
    });
    session.kv.length = header.length;
    session.tokens.push(...header.tokens);
    session.pending.push(...header.pending);
    session.rngState = header.rng ?? undefined;
    session.meta = header.meta;
  } finally {
    await fh.close();
  }
}
