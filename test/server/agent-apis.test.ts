// The agent-facing APIs beside chat completions, each through its own official client against one real
// `moestream serve` on a tiny peaked model (8192-token vocabulary: no end token, replies run to max_tokens or a
// completed grammar): Anthropic's Messages API (/v1/messages, @anthropic-ai/sdk) and OpenAI's Responses API
// (/v1/responses, openai's responses.create/.stream/.parse, whose ResponseStream checks the event sequence as
// it assembles). References: the chat template's rendering (input tokens), the same conversation written by
// hand as a chat completion (greedy text, the translation of tool calls and results), zod schemas written by
// hand (tool inputs, structured output), and the documented event order and error bodies. Forced tool choice
// is checked on all three APIs.
import { test } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { zodTextFormat } from "openai/helpers/zod";
import { z } from "zod";
import { renderChat, type ChatMessage } from "../../src/engine/chat-template.js";
import { openGGUF } from "../../src/format/gguf/read.js";
import { Tokenizer } from "../../src/tokenizer/tokenizer.js";
import { smallVocabModel } from "../helpers/models.js";
import { startServer, type RunningServer } from "./server.js";

const KEY = "sk-ant-local-test";
const modelPath = await smallVocabModel({ type: "Q8_0", seed: 5, peaked: 2, nVocab: 8192 });
const gguf = await openGGUF(modelPath);
await gguf.source.close();
const tok = Tokenizer.fromMetadata(gguf.metadata);
let srv: RunningServer;
let ant: Anthropic;
let oai: OpenAI;
test.before(async () => {
  srv = await startServer(modelPath, "--ctx-size", "1024", "--api-key", KEY);
  ant = new Anthropic({ baseURL: srv.url, apiKey: KEY, maxRetries: 0 });
  oai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY, maxRetries: 0 });
});
test.after(async () => {
  assert.equal(await srv.stop(), 0, srv.stderr());
});

/** The rendered prompt's length in tokens: what input_tokens must be. */
const rendered = (messages: ChatMessage[], opts: Parameters<typeof renderChat>[2] = {}) => tok.encode(renderChat(tok.chatTemplate!, messages, opts), { parseSpecial: true }).length;

/** POST to the server with the key as Anthropic's SDK sends it; the parsed SSE events or JSON body. */
async function raw(path: string, body: unknown, headers: Record<string, string> = { "x-api-key": KEY }) {
  const r = await fetch(`${srv.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await r.text();
  if (!r.headers.get("content-type")?.startsWith("text/event-stream")) return { status: r.status, json: JSON.parse(text), events: [] };
  const events = text.split("\n\n").filter(Boolean).map((chunk) => {
    const m = /^event: (.+)\ndata: (.+)$/.exec(chunk);
    assert.ok(m, `an SSE event with its name: ${JSON.stringify(chunk)}`);
    return { event: m[1], data: JSON.parse(m[2]) };
  });
  return { status: r.status, json: undefined, events };
}

/** POST a JSON body with the key; status and text. */
async function postJson(path: string, body: unknown) {
  const r = await fetch(`${srv.url}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) });
  return { status: r.status, text: await r.text() };
}

const hi = [{ role: "user" as const, content: "Hi" }];
// Sampling fields the current SDK types no longer list (the API still takes them), spread past its excess-property check.
const t0 = { temperature: 0 };
const t1 = { temperature: 1 };

test("/v1/messages: a message answers as the same conversation does on chat completions: input tokens as rendered, greedy text, max_tokens", async () => {
  const a = await ant.messages.create({ model: "claude-any", max_tokens: 12, system: "Be brief.", messages: hi, ...t0 });
  const o = await oai.chat.completions.create({ model: "x", max_tokens: 12, messages: [{ role: "system", content: "Be brief." }, ...hi], temperature: 0 });
  assert.match(a.id, /^msg_[0-9a-f]{24}$/);
  assert.equal(a.type, "message");
  assert.equal(a.role, "assistant");
  assert.equal(a.model, srv.model);
  assert.deepEqual(a.content, [{ type: "text", text: o.choices[0].message.content }]);
  assert.equal(a.stop_reason, "max_tokens");
  assert.equal(a.stop_sequence, null);
  assert.deepEqual(a.usage, { input_tokens: rendered([{ role: "system", content: "Be brief." }, ...hi]), output_tokens: 12 });
  // System as text blocks: the same prompt.
  const blocks = await ant.messages.create({ max_tokens: 12, system: [{ type: "text", text: "Be " }, { type: "text", text: "brief." }], messages: hi, ...t0, model: "m" });
  assert.deepEqual(blocks.content, a.content);
  assert.equal(blocks.usage.input_tokens, a.usage.input_tokens);
});

test("/v1/messages: stop_sequences: the reply ends before the first one reached, stop_reason stop_sequence names it", async () => {
  const full = await ant.messages.create({ model: "m", max_tokens: 16, messages: hi, ...t0 });
  const text = (full.content[0] as Anthropic.TextBlock).text;
  const stop = text.slice(6, 9);
  const at = text.indexOf(stop);
  assert.ok(stop.length === 3 && at > 0, text);
  const cut = await ant.messages.create({ model: "m", max_tokens: 16, messages: hi, ...t0, stop_sequences: ["never-generated-zz", stop] });
  assert.deepEqual(cut.content, [{ type: "text", text: text.slice(0, at) }]);
  assert.equal(cut.stop_reason, "stop_sequence");
  assert.equal(cut.stop_sequence, stop);
});

test("/v1/messages: streaming: message_start, ping, content blocks with their deltas, message_delta, message_stop; the SDK's final message is the non-streamed one", async () => {
  const body = { model: "m", max_tokens: 10, messages: hi, ...t0 };
  const whole = await ant.messages.create(body);
  const { status, events } = await raw("/v1/messages", { ...body, stream: true });
  assert.equal(status, 200);
  for (const e of events) assert.equal(e.event, e.data.type);
  const names = events.map((e) => e.event);
  assert.deepEqual(names.slice(0, 3), ["message_start", "ping", "content_block_start"]);
  assert.deepEqual(names.slice(-3), ["content_block_stop", "message_delta", "message_stop"]);
  assert.ok(names.slice(3, -3).every((n) => n === "content_block_delta"), names.join(" "));
  assert.deepEqual(events[0].data.message.usage, { input_tokens: whole.usage.input_tokens, output_tokens: 0 });
  assert.deepEqual(events[0].data.message.content, []);
  assert.deepEqual(events[2].data, { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
  const deltas = events.filter((e) => e.event === "content_block_delta").map((e) => e.data.delta);
  assert.ok(deltas.every((d) => d.type === "text_delta"));
  assert.equal(deltas.map((d) => d.text).join(""), (whole.content[0] as Anthropic.TextBlock).text);
  assert.deepEqual(events.at(-2)!.data, { type: "message_delta", delta: { stop_reason: "max_tokens", stop_sequence: null }, usage: { output_tokens: 10 } });

  const final = await ant.messages.stream(body).finalMessage();
  assert.deepEqual([final.content, final.stop_reason, final.usage.output_tokens], [whole.content, whole.stop_reason, whole.usage.output_tokens]);
});

// A grammar (llama.cpp's extension, accepted here as on chat completions) makes the model write a think block.
const THINK = 'root ::= "<think>\\n" w " " w "\\n</think>\\n\\n" w " " w\nw ::= [a-z] [a-z]? [a-z]?';

test("/v1/messages: thinking: the <think> block is a thinking block (thinking_delta when streamed); thinking on/off reaches the template", async () => {
  const inline = await oai.chat.completions.create({ model: "m", messages: hi, max_tokens: 60, temperature: 0, grammar: THINK, reasoning_format: "none", chat_template_kwargs: { enable_thinking: true } } as never) as OpenAI.ChatCompletion;
  const m = /^<think>\n([a-z]+ [a-z]+)\n<\/think>\n\n([a-z]+ [a-z]+)$/.exec(inline.choices[0].message.content!);
  assert.ok(m, inline.choices[0].message.content!);
  const body = { model: "m", max_tokens: 60, messages: hi, ...t0, thinking: { type: "enabled" as const, budget_tokens: 1024 }, grammar: THINK };
  const a = await ant.messages.create(body as never) as Anthropic.Message;
  assert.deepEqual(a.content, [{ type: "thinking", thinking: m[1], signature: "" }, { type: "text", text: m[2] }]);
  assert.equal(a.usage.input_tokens, rendered(hi, { enableThinking: true }));
  const off = await ant.messages.create({ model: "m", max_tokens: 1, messages: hi, thinking: { type: "disabled" } });
  assert.equal(off.usage.input_tokens, rendered(hi, { enableThinking: false }));
  assert.notEqual(off.usage.input_tokens, a.usage.input_tokens);

  const { events } = await raw("/v1/messages", { ...body, stream: true });
  const starts = events.filter((e) => e.event === "content_block_start").map((e) => [e.data.index, e.data.content_block.type]);
  assert.deepEqual(starts, [[0, "thinking"], [1, "text"]]);
  const joined = (type: string, key: string) => events.filter((e) => e.data.delta?.type === type).map((e) => e.data.delta[key]).join("");
  assert.deepEqual([joined("thinking_delta", "thinking"), joined("text_delta", "text")], [m[1], m[2]]);
  assert.deepEqual(events.filter((e) => e.event === "content_block_stop").map((e) => e.data.index), [0, 1]);
});

const WEATHER = {
  name: "get_weather",
  description: "Weather in a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string", maxLength: 12 }, days: { type: "integer", minimum: 1, maximum: 7 }, unit: { enum: ["c", "f"] } }, required: ["city", "days", "unit"] },
};
const TIME = { name: "get_time", input_schema: { type: "object" as const, properties: { zone: { type: "string", maxLength: 6 } }, required: ["zone"] } };
/** A string of at most n characters as JSON Schema counts them: code points. zod's max() counts UTF-16 units, so a
 * sampled city of 12 code points with an emoji in it (13+ units) failed it though the grammar was right. */
const chars = (n: number) => z.string().refine((s) => [...s].length <= n, `at most ${n} code points`);
// The same constraints written in zod: the reference a call's input must satisfy (strict: nothing unlisted).
const INPUTS: Record<string, z.ZodType> = {
  get_weather: z.object({ city: chars(12), days: z.number().int().min(1).max(7), unit: z.enum(["c", "f"]) }).strict(),
  get_time: z.object({ zone: chars(6) }).strict(),
};
const ask = [{ role: "user" as const, content: "What is the weather in Paris?" }];
// Room for the longest call the grammar allows: a 12-character city can take 4 byte tokens a character, and a
// sampled call once ran out of 80 tokens one character before its closing tag.
const CALL_TOKENS = 200;

test("/v1/messages: forced tool choice (tool, any): every sampled reply is one call whose input validates; streamed, the input arrives as input_json_delta", async () => {
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const a = await ant.messages.create({ model: "m", max_tokens: CALL_TOKENS, messages: ask, tools: [WEATHER, TIME], tool_choice: { type: "tool", name: "get_weather" }, ...t1 });
    assert.equal(a.stop_reason, "tool_use", JSON.stringify(a.content));
    assert.equal(a.content.length, 1);
    const use = a.content[0] as Anthropic.ToolUseBlock;
    assert.equal(use.type, "tool_use");
    assert.match(use.id, /^toolu_[0-9a-f]{24}$/);
    assert.equal(use.name, "get_weather");
    INPUTS.get_weather.parse(use.input);
    seen.add(JSON.stringify(use.input));
  }
  assert.ok(seen.size >= 2, `only ${seen.size} distinct inputs over 4 samples`);
  for (let i = 0; i < 2; i++) {
    const a = await ant.messages.create({ model: "m", max_tokens: CALL_TOKENS, messages: ask, tools: [WEATHER, TIME], tool_choice: { type: "any" }, ...t1 });
    const use = a.content[0] as Anthropic.ToolUseBlock;
    assert.ok(use.name in INPUTS, use.name);
    INPUTS[use.name].parse(use.input);
  }
  const body = { model: "m", max_tokens: 80, messages: ask, tools: [WEATHER], tool_choice: { type: "any" as const }, ...t0 };
  const whole = await ant.messages.create(body);
  const { events } = await raw("/v1/messages", { ...body, stream: true });
  const start = events.find((e) => e.event === "content_block_start")!.data.content_block;
  assert.deepEqual([start.type, start.name, start.input], ["tool_use", "get_weather", {}]);
  const json = events.filter((e) => e.data.delta?.type === "input_json_delta").map((e) => e.data.delta.partial_json).join("");
  assert.deepEqual(JSON.parse(json), (whole.content[0] as Anthropic.ToolUseBlock).input);
  assert.equal(events.at(-2)!.data.delta.stop_reason, "tool_use");
  const final = await ant.messages.stream(body).finalMessage();
  assert.deepEqual((final.content[0] as Anthropic.ToolUseBlock).input, (whole.content[0] as Anthropic.ToolUseBlock).input);
});

test("/v1/messages: tool_use and tool_result go back as the chat's tool call and tool message: same prompt, same greedy reply", async () => {
  const input = { city: "Paris", days: 2, unit: "c" };
  const a = await ant.messages.create({
    model: "m", max_tokens: 8, ...t0, tools: [WEATHER],
    messages: [...ask, { role: "assistant", content: [{ type: "text", text: "Checking." }, { type: "tool_use", id: "toolu_1", name: "get_weather", input }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "18 C, sunny" }] }, { type: "text", text: "Thanks!" }] }],
  });
  const chat = [...ask, { role: "assistant" as const, content: "Checking.", tool_calls: [{ id: "toolu_1", type: "function" as const, function: { name: "get_weather", arguments: JSON.stringify(input) } }] },
    { role: "tool" as const, tool_call_id: "toolu_1", content: "18 C, sunny" }, { role: "user" as const, content: "Thanks!" }];
  const tools = [{ type: "function" as const, function: { name: WEATHER.name, description: WEATHER.description, parameters: WEATHER.input_schema } }];
  const o = await oai.chat.completions.create({ model: "m", max_tokens: 8, temperature: 0, tools, messages: chat });
  assert.equal(a.usage.input_tokens, rendered(chat, { tools }));
  assert.equal(a.usage.input_tokens, o.usage!.prompt_tokens);
  assert.deepEqual(a.content, [{ type: "text", text: o.choices[0].message.content }]);
});

test("forced tool_choice on chat completions ('required', a named function): one parsed call that validates, on every seed", async () => {
  const tools = [WEATHER, TIME].map((t) => ({ type: "function" as const, function: { name: t.name, description: "", parameters: t.input_schema } }));
  for (let seed = 1; seed <= 4; seed++) {
    const tool_choice = seed <= 2 ? ({ type: "function", function: { name: "get_time" } } as const) : "required";
    const r = await oai.chat.completions.create({ model: "m", max_tokens: CALL_TOKENS, messages: ask, tools, tool_choice, temperature: 1, seed });
    const c = r.choices[0];
    assert.equal(c.finish_reason, "tool_calls", JSON.stringify(c.message));
    assert.equal(c.message.tool_calls!.length, 1);
    const call = c.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    if (seed <= 2) assert.equal(call.function.name, "get_time");
    INPUTS[call.function.name].parse(JSON.parse(call.function.arguments));
  }
  const bad = async (extra: Record<string, unknown>, param: string, message: RegExp) => {
    const r = await raw("/v1/chat/completions", { model: "m", max_tokens: 5, messages: ask, tools, ...extra }, { authorization: `Bearer ${KEY}` });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.equal(r.json.error.param, param);
    assert.match(r.json.error.message, message);
  };
  await bad({ tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice.function.name", /no tool named 'nope'/);
  await bad({ tool_choice: "required", tools: undefined }, "tool_choice", /no tools/);
  await bad({ tool_choice: "required", response_format: { type: "json_object" } }, "response_format", /cannot be combined with 'tool_choice'/);
  await bad({ tool_choice: "required", chat_template_kwargs: { enable_thinking: true } }, "tool_choice", /enable_thinking/);
  await bad({ tool_choice: "required", tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { u: { type: "string", format: "uri" } } } } }] }, "tools[0].function.parameters.properties.u.format", /'format' is not supported/);
});

test("/v1/messages: output_config.format (json_schema): every sampled reply parses and validates", async () => {
  const Person = z.object({ name: chars(10), age: z.number().int().min(0).max(120) }).strict();
  const schema = { type: "object", properties: { name: { type: "string", maxLength: 10 }, age: { type: "integer", minimum: 0, maximum: 120 } }, required: ["name", "age"], additionalProperties: false };
  for (let i = 0; i < 2; i++) {
    const a = await ant.messages.create({ model: "m", max_tokens: 60, messages: hi, ...t1, output_config: { format: { type: "json_schema", schema } } });
    assert.equal(a.stop_reason, "end_turn", JSON.stringify(a.content));
    Person.parse(JSON.parse((a.content[0] as Anthropic.TextBlock).text));
  }
});

test("/v1/messages: errors come in Anthropic's shape, naming the Messages API's fields; the SDK raises its error classes", async () => {
  const bad = async (body: unknown, status: number, type: string, message: RegExp, path = "/v1/messages") => {
    const r = await raw(path, body);
    assert.equal(r.status, status, JSON.stringify(r.json));
    assert.deepEqual(Object.keys(r.json), ["type", "error"]);
    assert.equal(r.json.type, "error");
    assert.deepEqual(Object.keys(r.json.error), ["type", "message"]);
    assert.equal(r.json.error.type, type);
    assert.match(r.json.error.message, message);
  };
  const base = { model: "m", max_tokens: 5, messages: hi };
  await bad({ model: "m", messages: hi }, 400, "invalid_request_error", /'max_tokens' is required/);
  await bad({ ...base, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", data: "" } }] }] }, 400, "invalid_request_error", /'messages\[0\]\.content\[0\]\.type': content blocks of type text, tool_use/);
  await bad({ ...base, temperature: 1.5 }, 400, "invalid_request_error", /'temperature'/);
  await bad({ ...base, tools: [WEATHER], tool_choice: { type: "tool", name: "nope" } }, 400, "invalid_request_error", /'tool_choice\.name': no tool named 'nope'/);
  await bad({ ...base, tools: [{ ...TIME, input_schema: { type: "object", properties: { e: { type: "string", format: "email" } } } }], tool_choice: { type: "any" } }, 400, "invalid_request_error", /'tools\[0\]\.input_schema\.properties\.e\.format': the keyword 'format' is not supported/);
  await bad({ ...base, output_config: { format: { type: "json_schema", schema: { oneOf: [] } } } }, 400, "invalid_request_error", /'output_config\.format\.schema\.oneOf'/);
  await bad({ ...base, tools: [{ type: "web_search_20250305", name: "web_search" }] }, 400, "invalid_request_error", /'tools\[0\]\.type': only custom tools/);
  await bad({ ...base, tools: [WEATHER], tool_choice: { type: "any" }, thinking: { type: "enabled", budget_tokens: 1024 } }, 400, "invalid_request_error", /Thinking may not be enabled/);
  await bad({ ...base, messages: [{ role: "user", content: "word ".repeat(1100) }] }, 400, "invalid_request_error", /maximum context length is 1024 tokens/);
  await bad("{not json", 400, "invalid_request_error", /could not parse the JSON body/);
  await bad(base, 404, "not_found_error", /no such endpoint/, "/v1/messages/batches");
  const get = await fetch(`${srv.url}/v1/messages`, { headers: { "x-api-key": KEY } });
  assert.equal(get.status, 405);
  assert.equal(((await get.json()) as { error: { type: string } }).error.type, "invalid_request_error");
  await assert.rejects(ant.messages.create({ ...base, max_tokens: 0 }), (e: unknown) => e instanceof Anthropic.BadRequestError && /max_tokens/.test(e.message));
  // The server still answers.
  assert.equal((await ant.messages.create(base)).usage.output_tokens, 5);
});

test("/v1/messages: --api-key: x-api-key or bearer; none or a wrong one is Anthropic's 401 (authentication_error); count_tokens counts the prompt", async () => {
  for (const headers of [{}, { "x-api-key": "wrong" }, { authorization: "Bearer wrong" }] as Record<string, string>[]) {
    const r = await raw("/v1/messages", { model: "m", max_tokens: 1, messages: hi }, headers);
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { type: "error", error: { type: "authentication_error", message: r.json.error.message } });
  }
  await assert.rejects(new Anthropic({ baseURL: srv.url, apiKey: "wrong", maxRetries: 0 }).messages.create({ model: "m", max_tokens: 1, messages: hi }), Anthropic.AuthenticationError);
  const bearer = new Anthropic({ baseURL: srv.url, apiKey: null, authToken: KEY, maxRetries: 0 });
  const m = await bearer.messages.create({ model: "m", max_tokens: 1, messages: hi, system: "S" });
  // The OpenAI endpoints take x-api-key too.
  const o = await raw("/v1/chat/completions", { model: "m", max_tokens: 1, messages: hi });
  assert.equal(o.status, 200);
  const counted = await ant.messages.countTokens({ model: "m", messages: hi, system: "S" });
  assert.deepEqual(counted, { input_tokens: m.usage.input_tokens });
});

test("/v1/responses: a response answers as the same conversation does on chat completions; streamed, the client assembles the same response", async () => {
  const body = { model: "m", instructions: "Be brief.", input: "Hi", max_output_tokens: 10, temperature: 0 };
  const r = await oai.responses.create(body);
  const chat = await oai.chat.completions.create({ model: "m", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }], max_tokens: 10, temperature: 0 });
  assert.match(r.id, /^resp_/);
  assert.equal(r.object, "response");
  assert.equal(r.output_text, chat.choices[0].message.content);
  assert.equal(r.status, "incomplete");
  assert.deepEqual(r.incomplete_details, { reason: "max_output_tokens" });
  assert.equal(r.usage!.input_tokens, chat.usage!.prompt_tokens);
  assert.equal(r.usage!.output_tokens, 10);
  assert.equal(r.output.length, 1);
  assert.equal(r.output[0].type, "message");

  const stream = oai.responses.stream(body);
  const types: string[] = [];
  const seqs: number[] = [];
  for await (const e of stream) (types.push(e.type), seqs.push(e.sequence_number));
  const final = await stream.finalResponse();
  assert.equal(final.output_text, r.output_text);
  assert.equal(final.status, "incomplete");
  assert.deepEqual(seqs, seqs.map((_, i) => i));
  assert.deepEqual(types.slice(0, 4), ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]);
  assert.deepEqual(types.slice(-4), ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"]);
  assert.ok(types.slice(4, -4).every((t) => t === "response.output_text.delta"), types.join(" "));

  // Message items with content parts, developer role: the same prompt as the string form.
  const items = await oai.responses.create({ ...body, instructions: undefined, input: [{ role: "developer", content: "Be brief." }, { role: "user", content: [{ type: "input_text", text: "Hi" }] }] });
  assert.equal(items.output_text, r.output_text);
  assert.equal(items.usage!.input_tokens, r.usage!.input_tokens);
});

test("/v1/responses: reasoning: a <think> block is a reasoning item before the message, streamed as reasoning_text deltas", async () => {
  const inline = await postJson("/v1/chat/completions", ({ model: "m", messages: [{ role: "user", content: "Hi" }], max_tokens: 60, temperature: 0, grammar: THINK, reasoning_format: "none" }));
  const m = /^<think>\n([a-z]+ [a-z]+)\n<\/think>\n\n([a-z]+ [a-z]+)$/.exec(JSON.parse(inline.text).choices[0].message.content);
  assert.ok(m, inline.text);
  const body = { model: "m", input: "Hi", max_output_tokens: 60, temperature: 0, grammar: THINK } as OpenAI.Responses.ResponseCreateParamsNonStreaming;
  const r = await oai.responses.create(body);
  assert.equal(r.status, "completed");
  assert.deepEqual(r.output.map((o) => o.type), ["reasoning", "message"]);
  assert.deepEqual((r.output[0] as OpenAI.Responses.ResponseReasoningItem).content, [{ type: "reasoning_text", text: m[1] }]);
  assert.equal(r.output_text, m[2]);
  const stream = oai.responses.stream(body as never);
  const reasoning: string[] = [];
  for await (const e of stream) if (e.type === "response.reasoning_text.delta") reasoning.push(e.delta);
  const final = await stream.finalResponse();
  assert.equal(reasoning.join(""), m[1]);
  assert.ok(reasoning.length > 1);
  assert.deepEqual(final.output.map((o) => o.type), ["reasoning", "message"]);
  assert.deepEqual((final.output[0] as OpenAI.Responses.ResponseReasoningItem).content, [{ type: "reasoning_text", text: m[1] }]);
  assert.equal(final.output_text, m[2]);
});

const FN_WEATHER = { type: "function" as const, name: "get_weather", description: "Weather in a city", strict: false, parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 }, days: { type: "integer", minimum: 1, maximum: 7 } }, required: ["city", "days"] } };
const Args = z.object({ city: chars(12), days: z.number().int().min(1).max(7) }).strict();

test("/v1/responses: function tools: a forced call is a function_call item that validates; streamed, its arguments arrive as deltas; the call and its output go back as input items", async () => {
  for (let i = 0; i < 2; i++) {
    const r = await oai.responses.create({ model: "m", input: "Weather in Paris?", tools: [FN_WEATHER], tool_choice: { type: "function", name: "get_weather" }, max_output_tokens: 80, temperature: 1 });
    assert.equal(r.status, "completed");
    assert.equal(r.output.length, 1);
    const call = r.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
    assert.equal(call.type, "function_call");
    assert.equal(call.name, "get_weather");
    assert.match(call.call_id, /^call_/);
    Args.parse(JSON.parse(call.arguments));
  }
  const body = { model: "m", input: "Weather in Paris?", tools: [FN_WEATHER], tool_choice: "required" as const, max_output_tokens: 80, temperature: 0 };
  const whole = await oai.responses.create(body);
  const stream = oai.responses.stream(body);
  let args = "";
  for await (const e of stream) if (e.type === "response.function_call_arguments.delta") args += e.delta;
  const final = await stream.finalResponse();
  const call = whole.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
  assert.equal(args, call.arguments);
  assert.equal((final.output[0] as OpenAI.Responses.ResponseFunctionToolCall).arguments, call.arguments);

  const next = await oai.responses.create({
    model: "m", max_output_tokens: 6, temperature: 0, tools: [FN_WEATHER],
    input: [{ role: "user", content: "Weather in Paris?" }, { type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Paris","days":1}' }, { type: "function_call_output", call_id: "call_1", output: "18 C" }],
  });
  const chat = await oai.chat.completions.create({
    model: "m", max_tokens: 6, temperature: 0, tools: [{ type: "function", function: { name: FN_WEATHER.name, description: FN_WEATHER.description, parameters: FN_WEATHER.parameters } }],
    messages: [{ role: "user", content: "Weather in Paris?" }, { role: "assistant", content: "", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","days":1}' } }] }, { role: "tool", tool_call_id: "call_1", content: "18 C" }],
  });
  assert.equal(next.usage!.input_tokens, chat.usage!.prompt_tokens);
  assert.equal(next.output_text, chat.choices[0].message.content);
});

test("/v1/responses: text.format json_schema: `.parse()` gives the typed object on every sample; what cannot be honoured is a 400 naming the Responses field", async () => {
  // The SDK validates with this zod schema itself, and zod's max() counts UTF-16 units where the grammar counts
  // code points (JSON Schema's rule): an ASCII pattern makes the two counts agree.
  const Person = z.object({ name: z.string().regex(/^[a-z ]{0,10}$/), age: z.number().int().min(0).max(120) });
  for (let i = 0; i < 2; i++) {
    const r = await oai.responses.parse({ model: "m", input: "A person as JSON", max_output_tokens: 60, temperature: 1, text: { format: zodTextFormat(Person, "person") } });
    assert.equal(r.status, "completed");
    assert.deepEqual(r.output_parsed, Person.parse(JSON.parse(r.output_text)));
  }
  const bad = async (extra: Record<string, unknown>, param: string, message: RegExp) => {
    const r = await postJson("/v1/responses", ({ model: "m", input: "Hi", ...extra }));
    assert.equal(r.status, 400, r.text);
    const e = JSON.parse(r.text).error;
    assert.equal(e.param, param);
    assert.match(e.message, message);
  };
  await bad({ previous_response_id: "resp_1" }, "previous_response_id", /not stored/);
  await bad({ input: [{ role: "user", content: [{ type: "input_image", image_url: "x" }] }] }, "input[0].content[0].type", /input_text and output_text/);
  await bad({ tools: [{ type: "web_search" }] }, "tools[0].type", /only function tools/);
  await bad({ text: { format: { type: "json_schema", name: "x", schema: { type: "object", properties: { u: { type: "string", format: "uri" } } } } } }, "text.format.schema.properties.u.format", /'format' is not supported/);
  await bad({ tools: [FN_WEATHER], tool_choice: { type: "function", name: "nope" } }, "tool_choice.name", /no tool named 'nope'/);
});
