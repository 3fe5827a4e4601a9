// The corruption suites' oracle and tools. Each corrupted input must end in a typed error (FormatError or
// ModelError: exit 3, a bad data file) whose message names the damaged file, or, where the damage is in bytes
// the model never uses, in output identical to the undamaged model's: the same greedy tokens and the same
// top logits, bit for bit. Anything else (another error, a different output) is recorded as a failure.
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { defaultEngineConfig, type EngineConfig } from "../../src/engine/config.js";
import { loadModel, type LoadedModel } from "../../src/engine/load.js";
import { Session } from "../../src/engine/session.js";
import { FormatError, ModelError, MoestreamError } from "../../src/util/errors.js";

/** Greedy tokens and each step's top logits: two runs are the same model only if all of these are equal. */
export interface RunOutput {
  tokens: number[];
  logits: number[];
}

export const PROMPT = [979, 11, 187, 0, 314, 77, 42, 600];
const STEPS = 6;
const TOP = 8;

export type RunOptions = Partial<EngineConfig>;
/** The options every corruption run loads with: small context, one thread, nothing sized by the machine. */
export const RUN_OPTIONS: RunOptions = { ctxSize: 64, threads: 1 };

/**
 * The engine in this thread (what the engine host runs in its worker, minus the messages): hundreds of loads
 * stay cheap, and what is judged is load and forward themselves. Typed errors crossing to the caller's thread
 * are the host's tests' concern.
 */
export function loadInThread(path: string, opts: RunOptions = {}): Promise<LoadedModel> {
  return loadModel(path, defaultEngineConfig({ ...RUN_OPTIONS, ...opts }));
}

async function collect(steps: AsyncIterable<{ token: number; topLogits?: [number, number][] }>): Promise<RunOutput> {
  const out: RunOutput = { tokens: [], logits: [] };
  for await (const s of steps) {
    out.tokens.push(s.token);
    for (const [id, v] of s.topLogits ?? []) out.logits.push(id, v);
  }
  return out;
}
const greedy = { maxTokens: STEPS, sampling: { temperature: 0 }, stopAtEog: false, topLogits: TOP } as const;

/** Load `path` (a GGUF or a pack), generate greedily from PROMPT, close. */
export async function runModel(path: string, opts: RunOptions = {}): Promise<RunOutput> {
  const lm = await loadInThread(path, opts);
  const s = new Session(lm);
  try {
    return await collect(s.generate(PROMPT, greedy));
  } finally {
    s.free();
    await lm.close();
  }
}

/** Continue a session greedily (it holds its own prompt). */
export function continueSession(s: Session): Promise<RunOutput> {
  return collect(s.generate([], greedy));
}

export type Outcome = "typed" | "identical";

/** Counts per corruption class, and every case that broke the oracle. */
export class CorruptionTally {
  readonly rows = new Map<string, { cases: number; typed: number; identical: number; failed: number }>();
  readonly failures: string[] = [];
  readonly codes = new Map<string, number>();

  /**
   * Run one corrupted case. `names`: strings one of which the error message must contain (the damaged file's
   * path). Returns the outcome; failures are recorded, not thrown, so one run lists them all.
   */
  async judge(cls: string, label: string, names: readonly string[], reference: RunOutput, run: () => Promise<RunOutput>): Promise<Outcome | "failed"> {
    const row = this.rows.get(cls) ?? { cases: 0, typed: 0, identical: 0, failed: 0 };
    this.rows.set(cls, row);
    row.cases++;
    const fail = (why: string): "failed" => {
      row.failed++;
      this.failures.push(`${cls} / ${label}: ${why}`);
      return "failed";
    };
    let out: RunOutput;
    try {
      out = await run();
    } catch (e) {
      if (!(e instanceof MoestreamError)) return fail(`untyped ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
      if (!(e instanceof FormatError || e instanceof ModelError)) return fail(`${e.name} (${e.code}) for a damaged data file, expected FormatError/ModelError: ${e.message}`);
      if (!names.some((n) => e.message.includes(n))) return fail(`${e.name} (${e.code}) does not name ${names.join(" or ")}: ${e.message}`);
      if (e.message.includes("\n")) return fail(`error message is not one line: ${e.message}`);
      this.codes.set(e.code, (this.codes.get(e.code) ?? 0) + 1);
      row.typed++;
      return "typed";
    }
    if (!sameOutput(out, reference)) {
      return fail(`SILENT WRONG OUTPUT: ran to the end with tokens [${out.tokens.join(", ")}], the intact model gives [${reference.tokens.join(", ")}]${sameTokens(out, reference) ? " (same tokens, different logits)" : ""}`);
    }
    row.identical++;
    return "identical";
  }

  /** One line per class and the error codes seen: for the test's diagnostics. */
  summary(): string[] {
    const lines = [...this.rows].map(([cls, r]) => `${cls}: ${r.cases} cases, ${r.typed} typed errors, ${r.identical} identical outputs, ${r.failed} failed`);
    lines.push(`error codes: ${JSON.stringify(Object.fromEntries([...this.codes].sort((a, b) => b[1] - a[1])))}`);
    return lines;
  }
}

const sameTokens = (a: RunOutput, b: RunOutput) => a.tokens.length === b.tokens.length && a.tokens.every((t, i) => t === b.tokens[i]);
const sameOutput = (a: RunOutput, b: RunOutput) => sameTokens(a, b) && a.logits.length === b.logits.length && a.logits.every((v, i) => Object.is(v, b.logits[i]));

/** Overwrite bytes of `path` at `at`, run fn, and put the original bytes back whatever happens. */
export async function withPatch<T>(path: string, at: number, bytes: Uint8Array, fn: () => Promise<T>): Promise<T> {
  const fd = openSync(path, "r+");
  const orig = new Uint8Array(bytes.byteLength);
  try {
    readSync(fd, orig, 0, orig.byteLength, at);
    writeSync(fd, bytes, 0, bytes.byteLength, at);
  } finally {
    closeSync(fd);
  }
  try {
    return await fn();
  } finally {
    const fd2 = openSync(path, "r+");
    try {
      writeSync(fd2, orig, 0, orig.byteLength, at);
    } finally {
      closeSync(fd2);
    }
  }
}

/** A u64 (or narrower) little-endian value as `width` bytes. */
export function le(v: bigint, width: number): Uint8Array {
  const out = new Uint8Array(width);
  for (let i = 0; i < width; i++) out[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** Values to put in an unsigned field holding `v`: off by one, zero, doubled, a flipped top or random bit, absurd sizes. */
export function hostileUnsigned(v: bigint, width: number, r: () => number): bigint {
  const bits = BigInt(8 * width);
  const max = (1n << bits) - 1n;
  const choices = [
    v + 1n, v - 1n, 0n, v * 2n, v ^ (1n << BigInt(Math.floor(r() * Number(bits)))), v ^ (1n << (bits - 1n)),
    max, 1n << 31n, (1n << 32n) + v, 1n << 53n,
  ];
  return choices[Math.floor(r() * choices.length)] & max;
}

/** One structural field of a GGUF header: where it is, how wide, what it holds. */
export interface GGUFField {
  /** count, length (of a key, a string, an array), type (value, array item, tensor), dims, dim, offset, or value (a scalar metadata value). */
  kind: "count" | "length" | "type" | "dims" | "dim" | "offset" | "value";
  at: number;
  width: 4 | 8;
  /** Which one, for the case label: "kv 12 key length", "tensor blk.1.attn_q.weight offset". */
  what: string;
  value: bigint;
  /** For a scalar metadata value: its key and wire type id. */
  key?: string;
  valueType?: number;
}

// Written independently of src/format/gguf: a walk over the wire format (ggml docs/gguf.md) recording where each field sits.
const SCALAR_WIDTH: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;

/** Every count, length, type, dimension, offset and scalar value of a GGUF header (string array items: the first and last length only). */
export function ggufFields(b: Uint8Array): GGUFField[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dec = new TextDecoder();
  const fields: GGUFField[] = [];
  let p = 0;
  const u32 = (kind: GGUFField["kind"], what: string) => {
    const x = v.getUint32(p, true);
    fields.push({ kind, at: p, width: 4, what, value: BigInt(x) });
    p += 4;
    return x;
  };
  const u64 = (kind: GGUFField["kind"], what: string, record = true) => {
    const x = v.getBigUint64(p, true);
    if (record) fields.push({ kind, at: p, width: 8, what, value: x });
    p += 8;
    return Number(x);
  };
  const str = (what: string, record = true) => {
    const n = u64("length", `${what} length`, record);
    const s = dec.decode(b.subarray(p, p + n));
    p += n;
    return s;
  };
  p = 8; // magic, version
  const nTensors = u64("count", "tensor count");
  const nKv = u64("count", "metadata count");
  for (let i = 0; i < nKv; i++) {
    const key = str(`key ${i}`);
    const type = u32("type", `"${key}" value type`);
    if (type === STRING) str(`"${key}"`);
    else if (type === ARRAY) {
      const item = u32("type", `"${key}" array item type`);
      const n = u64("length", `"${key}" array length`);
      if (item === STRING) for (let j = 0; j < n; j++) str(`"${key}"[${j}]`, j === 0 || j === n - 1);
      else if (SCALAR_WIDTH[item] !== undefined) p += n * SCALAR_WIDTH[item];
      else throw new Error(`walker: nested arrays are not in the test models (${key})`);
    } else {
      const w = SCALAR_WIDTH[type];
      if (w === 4 || w === 8) fields.push({ kind: "value", at: p, width: w, what: `"${key}" value`, value: w === 4 ? BigInt(v.getUint32(p, true)) : v.getBigUint64(p, true), key, valueType: type });
      p += w;
    }
  }
  for (let i = 0; i < nTensors; i++) {
    const name = str(`tensor ${i} name`);
    const nd = u32("dims", `tensor ${name} dimension count`);
    for (let d = 0; d < nd; d++) u64("dim", `tensor ${name} dim ${d}`);
    u32("type", `tensor ${name} type`);
    u64("offset", `tensor ${name} offset`);
  }
  return fields;
}
