// Structured output through the official openai client against a real `moestream serve` on a tiny peaked
// model (its vocabulary cut to 8192 tokens, so no end-of-generation token: the completed grammar ends each
// reply; test/engine/constraint.test.ts covers the full vocabulary and its end token): json_schema output parses and validates against the zod schema it came from (zod is the reference),
// `.parse()` works, json_object gives an object, llama.cpp's grammar field is honoured, and what cannot be
// honoured is a 400 naming the field, after which the server still answers. Reasoning (<think> blocks as
// reasoning_content) is checked here too, on a think block a grammar makes the model write.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { zodResponseFormat } from "openai/helpers/zod";
import { smallVocabModel } from "../helpers/models.js";
import { BIN, post, startServer, type RunningServer } from "./server.js";

const modelPath = await smallVocabModel({ type: "Q8_0", seed: 5, peaked: 2, nVocab: 8192 });
let srv: RunningServer;
test.before(async () => {
  srv = await startServer(modelPath, "--ctx-size", "512");
});
test.after(async () => {
  assert.equal(await srv.stop(), 0, srv.stderr());
});

const Person = z.object({
  name: z.string().max(12),
  age: z.number().int().min(0).max(150),
  mood: z.enum(["happy", "sad", "calm"]),
  tags: z.array(z.enum(["a", "b", "c"])).max(3),
  nickname: z.string().max(8).nullable(),
});
const messages = [{ role: "user" as const, content: "Describe a person as JSON." }];

test("json_schema: 20 seeded sampled requests parse and validate against the schema; seeds give different objects", async () => {
  const format = zodResponseFormat(Person, "person");
  const seen = new Set<string>();
  for (let seed = 1; seed <= 20; seed++) {
    const res = await srv.client.chat.completions.create({ model: srv.model, messages, max_tokens: 150, temperature: 1, seed, response_format: format });
    const content = res.choices[0].message.content!;
    assert.equal(res.choices[0].finish_reason, "stop", `seed ${seed}: ${content}`);
    const parsed = Person.safeParse(JSON.parse(content));
    assert.ok(parsed.success, `seed ${seed}: ${content}: ${parsed.error?.message}`);
    seen.add(content);
  }
  assert.ok(seen.size >= 10, `only ${seen.size} distinct outputs over 20 seeds`);
});

test("`.parse()` returns the typed object; streamed json_schema deltas join to valid JSON", async () => {
  const res = await srv.client.chat.completions.parse({ model: srv.model, messages, max_tokens: 150, temperature: 0.8, seed: 7, response_format: zodResponseFormat(Person, "person") });
  const msg = res.choices[0].message;
  assert.ok(msg.parsed, msg.content ?? "");
  assert.deepEqual(msg.parsed, JSON.parse(msg.content!));
  assert.equal(Person.parse(msg.parsed).age, msg.parsed.age);

  const stream = await srv.client.chat.completions.create({ model: srv.model, messages, max_tokens: 150, temperature: 0.8, seed: 7, response_format: zodResponseFormat(Person, "person"), stream: true });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
  assert.equal(text, msg.content, "the same seed streams the same object");
});

test("json_object gives a JSON object; llama.cpp's grammar (GBNF) and json_schema fields are honoured", async () => {
  for (const seed of [1, 2, 3]) {
    const res = await srv.client.chat.completions.create({ model: srv.model, messages, max_tokens: 150, temperature: 1, seed, response_format: { type: "json_object" } });
    const v = JSON.parse(res.choices[0].message.content!);
    assert.ok(typeof v === "object" && v !== null && !Array.isArray(v), res.choices[0].message.content!);
  }
  const grammar = 'root ::= ("yes" | "no") ", " [0-9] [0-9]? " apples"';
  const g = await post(`${srv.url}/v1/chat/completions`, JSON.stringify({ model: srv.model, messages, max_tokens: 20, temperature: 1, seed: 4, grammar }));
  assert.equal(g.status, 200, g.text);
  assert.match(JSON.parse(g.text).choices[0].message.content, /^(yes|no), [0-9][0-9]? apples$/);
  // /v1/completions takes them too.
  const c = await post(`${srv.url}/v1/completions`, JSON.stringify({ model: srv.model, prompt: "Answer:", max_tokens: 40, seed: 5, json_schema: { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, maxItems: 3 } }));
  assert.equal(c.status, 200, c.text);
  const arr = JSON.parse(JSON.parse(c.text).choices[0].text);
  assert.ok(Array.isArray(arr) && arr.length <= 3 && arr.every((x: unknown) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 9), JSON.stringify(arr));
});

test("what cannot be honoured is a 400 naming the field; the server answers after a run of bad grammars", async () => {
  const ask = (extra: Record<string, unknown>) => post(`${srv.url}/v1/chat/completions`, JSON.stringify({ model: srv.model, messages, max_tokens: 5, ...extra }));
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object", properties: { e: { type: "string", format: "email" } } } } } }, "response_format.json_schema.schema.properties.e.format", /'format' is not supported/],
    [{ response_format: { type: "json_schema", json_schema: { name: "x", schema: { oneOf: [{ type: "string" }] } } } }, "response_format.json_schema.schema.oneOf", /'oneOf' is not supported/],
    [{ response_format: { type: "json_object", schema: { type: "strin" } } }, "response_format.schema.type", /must be one of/],
    [{ json_schema: { $ref: "#/nowhere" } }, "json_schema.$ref", /must point into this schema/],
    [{ response_format: { type: "yaml" } }, "response_format.type", /json_schema/],
    [{ grammar: 'root ::= "a" |' }, "grammar", /EBNF parser error at line 1/],
    [{ grammar: "" }, "grammar", /empty/],
    [{ grammar: 'root ::= "a"', response_format: { type: "json_object" } }, "grammar", /cannot be combined/],
  ];
  for (const [extra, param, message] of cases) {
    const r = await ask(extra);
    assert.equal(r.status, 400, `${JSON.stringify(extra)}: ${r.text}`);
    const e = JSON.parse(r.text).error;
    assert.equal(e.param, param);
    assert.match(e.message, message);
  }
  // A bad grammar aborts the checking instance, which is replaced: a run of them leaves the server whole.
  for (let i = 0; i < 12; i++) assert.equal((await ask({ grammar: `root ::= "a" | (${i}` })).status, 400);
  const ok = await ask({ grammar: 'root ::= "ok"', temperature: 0 });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(JSON.parse(ok.text).choices[0].message.content, "ok");
});

test("`run --json-schema FILE`: the printed reply validates; a schema it cannot honour exits 2 before any model loads", async () => {
  const dir = mkdtempSync(join(tmpdir(), "moestream-schema-"));
  const good = join(dir, "good.json");
  const bad = join(dir, "bad.json");
  writeFileSync(good, JSON.stringify({ type: "object", properties: { ok: { type: "boolean" }, n: { type: "integer", minimum: 1, maximum: 5 } }, required: ["ok", "n"] }));
  writeFileSync(bad, JSON.stringify({ type: "object", properties: { u: { type: "string", format: "uri" } } }));
  const run = (...args: string[]) => promisify(execFile)(process.execPath, [BIN, "run", ...args], { encoding: "utf8" });
  const r = await run("-m", modelPath, "-p", "hi", "--json-schema", good, "--temp", "1", "--seed", "3");
  const v = z.object({ ok: z.boolean(), n: z.number().int().min(1).max(5) }).strict().parse(JSON.parse(r.stdout));
  assert.equal(typeof v.ok, "boolean");
  await assert.rejects(run("-m", join(dir, "no-such-model.gguf"), "-p", "hi", "--json-schema", bad), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 2);
    assert.match(e.stderr, /--json-schema .*bad\.json: properties\.u\.format: the keyword 'format' is not supported/);
    return true;
  });
  rmSync(dir, { recursive: true });
});

// Reasoning: a grammar makes the model write a think block, so the split is checked on real generated text.
const THINK = 'root ::= "<think>\\n" w " " w "\\n</think>\\n\\n" w " " w\nw ::= [a-z] [a-z]? [a-z]?';

test("reasoning: the <think> block comes back as reasoning_content, streamed as its own deltas first; reasoning_format none keeps it inline", async () => {
  const body = { model: srv.model, messages, max_tokens: 80, temperature: 1, seed: 11, grammar: THINK };
  const raw = await post(`${srv.url}/v1/chat/completions`, JSON.stringify({ ...body, reasoning_format: "none" }));
  assert.equal(raw.status, 200, raw.text);
  const inline: string = JSON.parse(raw.text).choices[0].message.content;
  const m = /^<think>\n([a-z]+ [a-z]+)\n<\/think>\n\n([a-z]+ [a-z]+)$/.exec(inline);
  assert.ok(m, inline);

  const split = await srv.client.chat.completions.create({ ...body, stream: false } as never) as unknown as { choices: { message: { content: string; reasoning_content?: string } }[] };
  assert.equal(split.choices[0].message.reasoning_content, m[1]);
  assert.equal(split.choices[0].message.content, m[2]);

  const stream = await srv.client.chat.completions.create({ ...body, stream: true } as never) as unknown as AsyncIterable<{ choices: { delta: { content?: string; reasoning_content?: string } }[] }>;
  let reasoning = "";
  let content = "";
  const order: string[] = [];
  for await (const c of stream) {
    const d = c.choices[0]?.delta ?? {};
    if (d.reasoning_content) (reasoning += d.reasoning_content), order.push("r");
    if (d.content) (content += d.content), order.push("c");
  }
  assert.deepEqual([reasoning, content], [m[1], m[2]]);
  assert.ok(order.indexOf("c") > order.lastIndexOf("r") && order.filter((x) => x === "r").length > 1, order.join(""));
  const bad = await post(`${srv.url}/v1/chat/completions`, JSON.stringify({ ...body, reasoning_format: "hidden" }));
  assert.equal(bad.status, 400);
  assert.equal(JSON.parse(bad.text).error.param, "reasoning_format");
});
