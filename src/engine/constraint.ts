// Constrained decoding: a JSON Schema, "any JSON object" or a GBNF grammar turned into a per-step token mask,
// so the output parses (and validates) by construction. The grammar engine is XGrammar (xgrammar.ts): it
// compiles a grammar against the model's byte-level vocabulary once, then gives each step's allowed tokens
// as a bitmask (about 1 ms at 152k tokens). Disallowed tokens get -Infinity before the sampler chain runs,
// so top-k/top-p/temperature act on the allowed tokens only.
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { bytesToUnicode } from "../tokenizer/byte-level.js";
import { UsageError } from "../util/errors.js";
import { grammarSchema, LIMITS, schemaProblem } from "./json-schema-subset.js";
import { loadXGrammar, xgrammarReason, type XGrammarCompiler, type XGrammarHandle, type XGrammarInstance } from "./xgrammar.js";

/** What the output must be; plain data, so it crosses to the engine host as it is. */
export type OutputConstraint =
  | { type: "json_object" }
  /** Keywords: json-schema-subset.ts. Unlisted properties are never generated beside listed ones (grammarSchema). */
  | { type: "json_schema"; schema: Record<string, unknown> }
  /** A GBNF grammar (llama.cpp's dialect, as XGrammar reads it), starting at `root`. */
  | { type: "grammar"; grammar: string }
  /**
   * One of several JSON values, each between its own fixed texts: a forced tool call is
   * `<tool_call>\n{"name": "f", "arguments": ` + f's parameters + `}\n</tool_call>`.
   */
  | { type: "tagged_json"; tags: TaggedJson[] };

export interface TaggedJson {
  begin: string;
  schema: Record<string, unknown>;
  end: string;
}

const TYPES = ["json_object", "json_schema", "grammar", "tagged_json"];
const MAX_TAGS = 128;
const MAX_GRAMMAR_CHARS = 65536;

/** A constraint that cannot be honoured; `field` is where in it ("schema.properties.x.format", "grammar", "" = the whole). */
export class ConstraintError extends UsageError {
  constructor(readonly field: string, readonly reason: string) {
    super("bad_constraint", `constraint${field ? "." + field : ""}: ${reason}`);
  }
}

/** The shape check of a constraint: a message naming the field, or undefined. The grammar itself is checked by checkConstraint. */
export function constraintShapeProblem(c: unknown): { field: string; message: string } | undefined {
  if (typeof c !== "object" || c === null || Array.isArray(c)) return { field: "", message: "must be an object" };
  const o = c as Record<string, unknown>;
  if (!TYPES.includes(o.type as string)) return { field: "type", message: `must be one of ${TYPES.join(", ")}` };
  if (o.type === "grammar") {
    if (typeof o.grammar !== "string" || !o.grammar.trim()) return { field: "grammar", message: "must be a non-empty GBNF grammar" };
    if (o.grammar.length > MAX_GRAMMAR_CHARS) return { field: "grammar", message: `grammars longer than ${MAX_GRAMMAR_CHARS} characters are not supported` };
    // Counted repetitions cost the compiler like a string's length bounds (json-schema-subset.ts LIMITS).
    const counts = [...o.grammar.matchAll(/\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}/g)].reduce((a, m) => a + Number(m[2] || m[1]), 0);
    if (counts > LIMITS.lengthBounds) return { field: "grammar", message: `counted repetitions ({m,n}) above ${LIMITS.lengthBounds} in total are not supported: each unit costs the grammar compiler a pass over the vocabulary` };
  }
  if (o.type === "json_schema") {
    const p = schemaProblem(o.schema);
    if (p) return { field: p.path ? `schema.${p.path}` : "schema", message: p.message };
  }
  if (o.type === "tagged_json") {
    if (!Array.isArray(o.tags) || !o.tags.length || o.tags.length > MAX_TAGS) return { field: "tags", message: `must be a list of 1 to ${MAX_TAGS} tags` };
    for (const [i, t] of (o.tags as Partial<TaggedJson>[]).entries()) {
      if (typeof t?.begin !== "string" || typeof t.end !== "string") return { field: `tags[${i}]`, message: "begin and end must be strings" };
      const p = schemaProblem(t.schema);
      if (p) return { field: `tags[${i}].schema${p.path ? "." + p.path : ""}`, message: p.message };
    }
  }
  return undefined;
}

/** The grammar text handed to XGrammar, and a key for caches. */
async function grammarOf(inst: XGrammarInstance, c: OutputConstraint): Promise<XGrammarHandle> {
  const g = inst.xgr.Grammar;
  // Compact JSON (", " and ": " separators, no free whitespace): a model cannot wander off into endless blanks.
  if (c.type === "json_object") return g.fromJSONSchema(JSON.stringify({ type: "object" }), false, -1, undefined, false);
  if (c.type === "json_schema") return g.fromJSONSchema(JSON.stringify(grammarSchema(c.schema)), false, -1, undefined, false);
  if (c.type === "grammar") return g.fromEBNF(c.grammar, "root");
  // A structural tag's own json_schema element allows free whitespace: embed the compact grammar instead.
  const elements = [];
  for (const t of c.tags) {
    const ebnf = await inst.xgr.Testings._jsonSchemaToEBNF(JSON.stringify(grammarSchema(t.schema)), false, -1, undefined, false);
    elements.push({ type: "tag", begin: t.begin, content: { type: "grammar", grammar: ebnf }, end: t.end });
  }
  return g.fromStructuralTag({ type: "structural_tag", format: elements.length === 1 ? elements[0] : { type: "or", elements } });
}

const keyOf = (c: OutputConstraint) => JSON.stringify(c);

/** This thread's instance for checks; a failed call leaves it unusable, so it is dropped then. */
let checker: XGrammarInstance | undefined;
/** Checks run one at a time: a failing one replaces the instance, which another must not be using then. */
let checking: Promise<unknown> = Promise.resolve();

/** Run `fn` on `inst`; a failure becomes a ConstraintError with XGrammar's reason, and `onFail` drops the instance. */
async function guarded<T>(inst: XGrammarInstance, field: string, onFail: () => void, fn: () => Promise<T>): Promise<T> {
  inst.takeMessages();
  try {
    return await fn();
  } catch (e) {
    onFail();
    throw new ConstraintError(field, xgrammarReason(inst.takeMessages(), (e as Error).message));
  }
}

/**
 * Check a constraint as a generation would use it: shape, supported schema keywords, and that XGrammar
 * compiles it. Throws a ConstraintError naming the field (`constraint.schema.properties.x.format: ...`).
 */
export async function checkConstraint(c: unknown): Promise<void> {
  const shape = constraintShapeProblem(c);
  if (shape) throw new ConstraintError(shape.field, shape.message);
  const oc = c as OutputConstraint;
  const field = oc.type === "grammar" ? "grammar" : oc.type === "json_schema" ? "schema" : oc.type === "tagged_json" ? "tags" : "";
  const run = checking.then(async () => {
    const inst = (checker ??= loadXGrammar());
    const g = await guarded(inst, field, () => (checker = undefined), () => grammarOf(inst, oc));
    g.dispose();
  });
  checking = run.catch(() => {});
  await run;
}

interface VocabState {
  inst: XGrammarInstance;
  compiler: XGrammarCompiler;
  nVocab: number;
  hasStop: boolean;
  /** Compiled grammars by constraint, most recently used last; a few kept (compiling costs ~0.5 s at 152k tokens). */
  compiled: Map<string, XGrammarHandle>;
}

const COMPILED_KEPT = 8;
const vocabs = new WeakMap<Tokenizer, Promise<VocabState>>();

/**
 * Bytes that never occur in UTF-8: C0 and C1 (overlong two-byte leads) and F5-FF. XGrammar's character classes
 * read C0 A3 as "#", so a token holding one would let invalid UTF-8 into a string that the grammar counts as valid.
 */
const notUtf8 = (bytes: Uint8Array) => bytes.some((b) => b === 0xc0 || b === 0xc1 || b >= 0xf5);

/** The vocabulary as XGrammar reads it: each token's bytes in byte-level form; special tokens and tokens that cannot be UTF-8 empty (never allowed). */
function encodedVocab(tok: Tokenizer, nVocab: number): string[] {
  const out = new Array<string>(nVocab).fill("");
  for (let id = 0; id < Math.min(nVocab, tok.vocabSize); id++) {
    const bytes = tok.isSpecial(id) ? undefined : tok.pieceBytes(id, false);
    if (bytes && !notUtf8(bytes)) out[id] = bytesToUnicode(bytes);
  }
  return out;
}

async function vocabState(tok: Tokenizer, nVocab: number): Promise<VocabState> {
  let p = vocabs.get(tok);
  if (!p) {
    p = (async () => {
      const inst = loadXGrammar();
      const stops = [...tok.eogIds].filter((id) => id < nVocab);
      const info = await inst.xgr.TokenizerInfo.createTokenizerInfo(encodedVocab(tok, nVocab), "byte_level", false, nVocab, stops);
      const compiler = await inst.xgr.GrammarCompiler.createGrammarCompiler(info, false);
      return { inst, compiler, nVocab, hasStop: stops.length > 0, compiled: new Map() };
    })();
    vocabs.set(tok, p);
    p.catch(() => vocabs.delete(tok));
  }
  const v = await p;
  if (v.nVocab !== nVocab) throw new UsageError("bad_constraint", `constraint: the logits have ${nVocab} entries, the vocabulary state ${v.nVocab}`);
  return v;
}

/** One generation's token mask: mask() before each sample, accept() after it. */
export class TokenConstraint {
  private buf: Float32Array;

  private constructor(private readonly matcher: import("./xgrammar.js").XGrammarMatcher, nVocab: number) {
    this.buf = new Float32Array(nVocab);
  }

  /** A matcher for `c` over `tok`'s vocabulary (nVocab = the logits' length); the constraint is checked first. */
  static async create(tok: Tokenizer, nVocab: number, c: OutputConstraint): Promise<TokenConstraint> {
    await checkConstraint(c);
    const v = await vocabState(tok, nVocab);
    const key = keyOf(c);
    let compiled = v.compiled.get(key);
    if (compiled) v.compiled.delete(key);
    else {
      // Checked above, so a failure here is XGrammar's own: the vocabulary state goes with its instance.
      compiled = await guarded(v.inst, "", () => vocabs.delete(tok), async () => {
        const g = await grammarOf(v.inst, c);
        try {
          return await v.compiler.compileGrammar(g);
        } finally {
          g.dispose();
        }
      });
    }
    v.compiled.set(key, compiled);
    if (v.compiled.size > COMPILED_KEPT) {
      const [oldest, h] = v.compiled.entries().next().value!;
      v.compiled.delete(oldest);
      h.dispose();
    }
    // Without a stop token in the vocabulary the grammar ends the generation by itself when complete.
    const matcher = await v.inst.xgr.GrammarMatcher.createGrammarMatcher(compiled, undefined, !v.hasStop);
    return new TokenConstraint(matcher, nVocab);
  }

  /** A copy of `logits` with every token the grammar forbids next at -Infinity. */
  async mask(logits: Float32Array): Promise<Float32Array> {
    const bits = await this.matcher.getNextTokenBitmask();
    const out = this.buf;
    out.set(logits);
    const n = out.length;
    for (let w = 0; w < bits.length; w++) {
      const b = bits[w];
      if (b === -1) continue;
      const base = w << 5;
      const end = Math.min(32, n - base);
      for (let j = 0; j < end; j++) if (((b >>> j) & 1) === 0) out[base + j] = -Infinity;
    }
    return out;
  }

  /** Advance past the sampled token (one the mask allowed). */
  accept(token: number): void {
    if (!this.matcher.acceptToken(token)) throw new Error(`internal: the grammar refused token ${token} that its mask allowed`);
  }

  /** The grammar is complete and nothing may follow. */
  get done(): boolean {
    return this.matcher.isTerminated();
  }

  dispose(): void {
    this.matcher.dispose();
  }
}
