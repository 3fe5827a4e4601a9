// Constrained decoding over Qwen3's real 151k-token vocabulary: a text is fed token by token (its own
// tokenization) through mask() and accept(); the expected verdicts are JSON Schema's semantics, written by
// hand. Unsupported keywords are refused by path; bad grammars give XGrammar's reason and leave it usable.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkConstraint, ConstraintError, TokenConstraint, type OutputConstraint } from "../../src/engine/constraint.js";
import { schemaProblem } from "../../src/engine/json-schema-subset.js";
import { qwen3TokenizerMetadata } from "../../src/tokenizer/qwen3-vocab.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { EngineSession, defaultEngineConfig, loadEngineModel } from "../../src/index.js";
import { testModel } from "../helpers/models.js";

const tok = Tokenizer.fromMetadata(qwen3TokenizerMetadata());
const N = tok.vocabSize;
const zeros = new Float32Array(N);
const eos = tok.eosId!;

/** Whether `text` (then end-of-generation) gets through the constraint's masks. */
async function passes(c: OutputConstraint, text: string): Promise<boolean> {
  const tc = await TokenConstraint.create(tok, N, c);
  try {
    for (const t of tok.encode(text)) {
      if ((await tc.mask(zeros))[t] === -Infinity) return false;
      tc.accept(t);
    }
    return (await tc.mask(zeros))[eos] === 0;
  } finally {
    tc.dispose();
  }
}

const schema = (s: Record<string, unknown>): OutputConstraint => ({ type: "json_schema", schema: s });

/** Every supported keyword in one schema (one compile); the texts vary one property from a valid base. */
const ALL = schema({
  $defs: { p: { type: "integer" } },
  type: "object",
  properties: {
    i: { type: "integer", minimum: -3, maximum: 12 },
    x: { type: "integer", exclusiveMinimum: 0 },
    f: { type: "number", minimum: 0, maximum: 1 },
    s: { type: "string", minLength: 2, maxLength: 3 },
    a: { type: "array", items: { type: "integer" }, minItems: 1, maxItems: 2 },
    n: { anyOf: [{ type: "null" }, { const: "x" }] },
    e: { enum: [1, "a", null, true] },
    t: { type: ["string", "null"] },
    b: { type: "boolean" },
    r: { $ref: "#/$defs/p" },
    p: { type: "string", pattern: "^a+$" },
    o: { type: "object", properties: { q: { type: "string" } } },
  },
  required: ["i", "x", "f", "s", "a", "n", "e", "t", "b", "r", "p"],
});
const BASE: Record<string, string> = { i: "0", x: "1", f: "0.5", s: '"ab"', a: "[1]", n: "null", e: "1", t: "null", b: "true", r: "1", p: '"aa"' };
const text = (over: Record<string, string | undefined>) => {
  const v: Record<string, string | undefined> = { ...BASE, ...over };
  return "{" + Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `"${k}": ${x}`).join(", ") + "}";
};

const tag = (name: string, s: Record<string, unknown>) => ({ begin: `<tool_call>\n{"name": "${name}", "arguments": `, schema: s, end: "}\n</tool_call>" });
const CALL: OutputConstraint = { type: "tagged_json", tags: [tag("f", { type: "object", properties: { a: { type: "integer" } }, required: ["a"] }), tag("g", { type: "object", additionalProperties: false })] };
const call = (name: string, args: string) => `<tool_call>\n{"name": "${name}", "arguments": ${args}}\n</tool_call>`;

test("each supported keyword is honoured: texts pass or are masked as JSON Schema says", async () => {
  const cases: [OutputConstraint, [string, boolean][]][] = [
    [ALL, [
      [text({}), true], [text({ i: "-3" }), true], [text({ i: "12" }), true], [text({ i: "13" }), false], [text({ i: "-4" }), false], [text({ i: "1.5" }), false],
      [text({ x: "0" }), false], [text({ f: "1" }), true], [text({ f: "2" }), false], [text({ f: "-1" }), false],
      [text({ s: '"abc"' }), true], [text({ s: '"a"' }), false], [text({ s: '"abcd"' }), false],
      [text({ a: "[1, 2]" }), true], [text({ a: "[]" }), false], [text({ a: "[1, 2, 3]" }), false], [text({ a: '["1"]' }), false],
      [text({ n: '"x"' }), true], [text({ n: '"y"' }), false],
      [text({ e: '"a"' }), true], [text({ e: "true" }), true], [text({ e: "false" }), false],
      [text({ t: '"a"' }), true], [text({ t: "1" }), false], [text({ b: "false" }), true], [text({ b: '"true"' }), false],
      [text({ r: '"a"' }), false], [text({ p: '"ab"' }), false],
      // Optional properties may be left out; nothing unlisted beside listed properties, at any depth.
      [text({ o: '{"q": "z"}' }), true], [text({ o: "{}" }), true], [text({ o: '{"z": 1}' }), false], [text({ i: undefined }), false], [text({ z: "1" }), false],
    ]],
    // An object that lists no properties takes any (additionalProperties unset) or none (false); a listed
    // property's schema holds wherever it sits (an extra key may not repeat its name with another value).
    [schema({ type: "object", properties: { b: { type: "string" }, c: { type: "object", additionalProperties: false }, d: { type: "object" } } }), [
      ["{}", true], ['{"c": {}}', true], ['{"c": {"z": 1}}', false], ['{"d": {"z": [1]}}', true], ['{"b": "x", "z": 1}', false], ['{"b": "x", "b": 1}', false]]],
    // Length-bounded strings admit no raw control character (JSON forbids them; XGrammar's own bounded-string
    // rule let a tab through, so a tool call's argument did not parse).
    [schema({ type: "object", properties: { s: { type: "string", maxLength: 3 }, t: { type: "string", minLength: 2 } }, required: ["s", "t"] }), [
      ['{"s": "abc", "t": "ab"}', true], ['{"s": "", "t": "abcdef"}', true], ['{"s": "a\tb", "t": "ab"}', false], ['{"s": "abcd", "t": "ab"}', false],
      ['{"s": "a", "t": "a"}', false], ['{"s": "a", "t": "a\u0001"}', false], ['{"s": "a", "t": "\tq"}', false],
      // Lengths count code points, as JSON Schema says: an emoji is one character (two UTF-16 units).
      ['{"s": "😀😀😀", "t": "😀😀"}', true], ['{"s": "😀😀😀😀", "t": "ab"}', false], ['{"s": "a", "t": "😀"}', false]]],
    // Non-ASCII text crosses token boundaries inside characters: the vocabulary is matched byte by byte.
    [schema({ enum: ["héllo wörld 日本語"] }), [['"héllo wörld 日本語"', true], ['"hello"', false]]],
    [{ type: "json_object" }, [["{}", true], ['{"a": [1, {"b": null}], "c": "d"}', true], ["[1]", false], ["1", false]]],
    [{ type: "grammar", grammar: 'root ::= ("yes" | "no") " sir"' }, [["yes sir", true], ["no sir", true], ["yes", false], ["maybe sir", false]]],
    // A forced tool call: one of the tags, its JSON compact and valid against that tag's schema.
    [CALL, [[call("f", '{"a": 1}'), true], [call("g", "{}"), true], [call("g", '{"a": 1}'), false], [call("f", '{"a": "1"}'), false], [call("f", '{"a": 1, "b": 2}'), false],
      [call("f", '{ "a": 1}'), false], [call("h", '{"a": 1}'), false], ["x" + call("f", '{"a": 1}'), false], [call("f", '{"a": 1}') + call("g", "{}"), false]]],
  ];
  for (const [c, texts] of cases) {
    for (const [t, want] of texts) assert.equal(await passes(c, t), want, `${JSON.stringify(c).slice(0, 80)} on ${t}`);
  }
});

test("the mask: special tokens never, end-of-generation only when complete, every allowed first token fits", async () => {
  const tc = await TokenConstraint.create(tok, N, { type: "json_object" });
  try {
    const m = await tc.mask(zeros);
    const allowed = [...m.keys()].filter((i) => m[i] === 0);
    assert.ok(allowed.length > 1, "more than one way to open an object");
    assert.ok(allowed.includes(tok.tokenId("{")!));
    // An object's first token: "{" then what may follow it in compact JSON.
    for (const id of allowed) assert.match(tok.decode([id]), /^\{("|\}|$)/, `token ${id} ${JSON.stringify(tok.decode([id]))}`);
    for (const id of tok.eogIds) assert.equal(m[id], -Infinity, "not complete yet");
    assert.equal(m[tok.tokenId("<|im_start|>")!], -Infinity);
    // Tokens holding a byte UTF-8 never uses (C0 A3 would pass XGrammar's classes as "#") are never allowed.
    const byteToken = (b: number) => [...Array(N).keys()].find((id) => { const p = tok.pieceBytes(id, false); return p.length === 1 && p[0] === b; })!;
    const afterQuote = await TokenConstraint.create(tok, N, { type: "json_schema", schema: { type: "string" } });
    try {
      afterQuote.accept(tok.encode('"')[0]);
      const inString = await afterQuote.mask(zeros);
      for (const b of [0xc0, 0xc1, 0xf5, 0xff]) assert.equal(inString[byteToken(b)], -Infinity, `byte ${b.toString(16)}`);
      assert.equal(inString[byteToken(0xc3)], 0, "a real two-byte lead is allowed");
    } finally {
      afterQuote.dispose();
    }
    // The logits are copied, never changed.
    const logits = new Float32Array(N).fill(1);
    await tc.mask(logits);
    assert.ok(logits.every((v) => v === 1));
  } finally {
    tc.dispose();
  }
});

test("a forced tool call may open with the vocabulary's own <tool_call> token (not special) or spell it out", async () => {
  const tc = await TokenConstraint.create(tok, N, CALL);
  try {
    const m = await tc.mask(zeros);
    const one = tok.encode("<tool_call>", { parseSpecial: true });
    assert.equal(one.length, 1);
    assert.equal(m[one[0]], 0);
    assert.equal(m[tok.tokenId("<")!], 0);
    assert.equal(m[tok.tokenId("{")!], -Infinity);
  } finally {
    tc.dispose();
  }
  await assert.rejects(checkConstraint({ type: "tagged_json", tags: [tag("f", { type: "object", properties: { u: { type: "string", format: "uri" } } })] }), (e: ConstraintError) => e.field === "tags[0].schema.properties.u.format");
  await assert.rejects(checkConstraint({ type: "tagged_json", tags: [] }), (e: ConstraintError) => e.field === "tags");
});

test("keywords constrained decoding cannot honour are refused by path, never ignored", () => {
  assert.deepEqual(schemaProblem({ type: "object", properties: { e: { type: "string", format: "email" } } }), { path: "properties.e.format", message: "the keyword 'format' is not supported by constrained decoding" });
  assert.equal(schemaProblem({ oneOf: [{ type: "string" }] })?.path, "oneOf");
  assert.equal(schemaProblem({ type: "array", items: { type: "integer", multipleOf: 2 } })?.path, "items.multipleOf");
  assert.equal(schemaProblem({ anyOf: [{ type: "string" }, { not: {} }] })?.path, "anyOf[1].not");
  assert.equal(schemaProblem({ type: "foo" })?.path, "type");
  assert.equal(schemaProblem({ $ref: "#/$defs/missing" })?.path, "$ref");
  assert.equal(schemaProblem({ type: "string", pattern: "((" })?.path, "pattern");
  assert.equal(schemaProblem({ type: "string", maxLength: -1 })?.path, "maxLength");
  assert.equal(schemaProblem([1])?.message, "a schema must be an object");
  let deep: Record<string, unknown> = { type: "integer" };
  for (let i = 0; i < 100; i++) deep = { type: "array", items: deep };
  assert.match(schemaProblem(deep)!.message, /nested deeper/);
  // What would take the compiler a minute is refused (maxLength 200 took 55 s at 152k tokens).
  assert.match(schemaProblem({ type: "string", maxLength: 200 })!.message, /length bounds above 64/);
  assert.equal(schemaProblem({ type: "object", properties: { a: { type: "string", maxLength: 40 }, b: { type: "string", minLength: 10, maxLength: 20 } } })?.path, "properties.b.maxLength");
  assert.match(schemaProblem({ type: "object", properties: Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`p${i}`, { type: "integer" }])) })!.message, /more than 512 subschemas/);
  assert.equal(schemaProblem({ enum: Array.from({ length: 5000 }, (_, i) => i) })?.path, "enum");
  // Annotations are fine: they only describe.
  assert.equal(schemaProblem({ $schema: "http://json-schema.org/draft-07/schema#", title: "t", description: "d", type: "object", properties: {} }), undefined);
});

test("a grammar that does not parse: XGrammar's reason, and the next good one still compiles", async () => {
  for (let i = 0; i < 3; i++) {
    await assert.rejects(checkConstraint({ type: "grammar", grammar: 'root ::= "a" |' }), (e: unknown) => {
      assert.ok(e instanceof ConstraintError);
      assert.equal(e.field, "grammar");
      assert.match(e.reason, /EBNF parser error at line 1/);
      return true;
    });
  }
  // At once: a failure replaces the checking instance only when no other check is using it.
  const mixed = await Promise.allSettled(["(", '"x"', "[", '"y"'].map((g) => checkConstraint({ type: "grammar", grammar: `root ::= ${g}` })));
  assert.deepEqual(mixed.map((r) => r.status), ["rejected", "fulfilled", "rejected", "fulfilled"]);
  await assert.rejects(checkConstraint({ type: "grammar", grammar: "rot ::= \"a\"" }), ConstraintError); // no root rule
  await checkConstraint({ type: "grammar", grammar: 'root ::= "a"' });
  assert.equal(await passes({ type: "grammar", grammar: 'root ::= [0-9]+ "!"' }, "2026!"), true);
  await assert.rejects(checkConstraint({ type: "json_schema", schema: { type: "string", format: "date" } }), /constraint\.schema\.format: the keyword 'format'/);
  await assert.rejects(checkConstraint({ type: "xml" }), /constraint\.type: must be one of/);
  await assert.rejects(checkConstraint({ type: "grammar", grammar: 'root ::= [a-z]{1,100} [0-9]{2}' }), /counted repetitions \(\{m,n\}\) above 64/);
});

test("a generation on the full vocabulary: masked sampling gives valid JSON that ends with the end-of-generation token", async () => {
  const lm = await loadEngineModel(await testModel({ type: "Q8_0", seed: 5, peaked: 2 }), defaultEngineConfig({ ctxSize: 256 }));
  try {
    const s = new EngineSession(lm);
    const c = schema({ type: "object", properties: { ok: { type: "boolean" }, n: { type: "integer", minimum: 0, maximum: 99 } }, required: ["ok", "n"] });
    const prompt = lm.tokenizer.encode("The answer is", { parseSpecial: true });
    const steps = [];
    const gen = s.generate(prompt, { maxTokens: 40, sampling: { temperature: 1, seed: 3 }, constraint: c });
    let r = await gen.next();
    for (; !r.done; r = await gen.next()) steps.push(r.value);
    assert.equal(r.value.finishReason, "stop");
    assert.ok(lm.tokenizer.eogIds.has(steps[steps.length - 1].token), "the last token ends the generation");
    const v = JSON.parse(steps.map((x) => x.text).join(""));
    assert.deepEqual(Object.keys(v), ["ok", "n"]);
    assert.ok(typeof v.ok === "boolean" && Number.isInteger(v.n) && v.n >= 0 && v.n <= 99, JSON.stringify(v));
    // Bad constraints are refused when the generation starts, naming the field.
    await assert.rejects(s.generate(prompt, { maxTokens: 4, constraint: schema({ type: "string", format: "uri" }) }).next(), /constraint\.schema\.format/);
  } finally {
    await lm.close();
  }
});
