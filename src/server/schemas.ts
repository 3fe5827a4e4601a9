// Request bodies of the OpenAI-compatible endpoints, validated with zod. Unknown fields are dropped
// (clients send `user`, `metadata` and the like); fields we cannot honour are refused by name.
import { z } from "zod";

const stop = z.union([z.string().min(1), z.array(z.string().min(1)).max(16)]).nullish();

/** Fields shared by /v1/chat/completions and /v1/completions. */
const common = {
  model: z.string().optional(), // any id: one model is loaded
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  stop,
  n: z.literal(1, { message: "only n = 1 is supported" }).nullish(),
  // llama.cpp's extensions, mapped onto the sampler chain.
  top_k: z.number().int().min(0).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repeat_penalty: z.number().gt(0).nullish(),
  // Structured output (constrained decoding): OpenAI's response_format, llama.cpp's grammar (GBNF) and json_schema.
  response_format: z.discriminatedUnion("type", [
    z.object({ type: z.literal("text") }),
    // llama.cpp's extension: a schema beside json_object.
    z.object({ type: z.literal("json_object"), schema: z.record(z.string(), z.unknown()).optional() }),
    z.object({
      type: z.literal("json_schema"),
      json_schema: z.object({ name: z.string().optional(), description: z.string().optional(), schema: z.record(z.string(), z.unknown()).optional(), strict: z.boolean().nullish() }),
    }),
  ]).nullish(),
  grammar: z.string().min(1, { message: "the grammar is empty" }).nullish(),
  json_schema: z.record(z.string(), z.unknown()).nullish(),
  // Refused by name rather than silently ignored (an empty map changes nothing, so it passes).
  logit_bias: z.record(z.string(), z.number()).refine((o) => Object.keys(o).length === 0, { message: "logit_bias is not supported" }).nullish(),
};

/** More messages than any context holds (each costs a few template tokens): bounds template rendering. */
export const MAX_MESSAGES = 8192;

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const content = z.union([z.string(), z.array(textPart), z.null()]);

export const chatMessageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: content.optional(),
  name: z.string().optional(),
  tool_calls: z.array(z.looseObject({ function: z.looseObject({ name: z.string() }) })).optional(),
  tool_call_id: z.string().optional(),
  // An earlier reply's thinking, kept apart (llama-server takes it; templates that show it get it).
  reasoning_content: z.string().nullish(),
});

const tool = z.object({
  type: z.literal("function"),
  function: z.object({ name: z.string().min(1), description: z.string().optional(), parameters: z.record(z.string(), z.unknown()).optional(), strict: z.boolean().nullish() }),
});

export const chatRequestSchema = z.object({
  ...common,
  messages: z.array(chatMessageSchema).min(1).max(MAX_MESSAGES, { message: `at most ${MAX_MESSAGES} messages` }),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(tool).max(128).nullish(),
  // "required" or a named function force a call: a grammar makes the reply one valid call.
  tool_choice: z.union([
    z.enum(["none", "auto", "required"], { message: "tool_choice must be 'none', 'auto', 'required' or {type: 'function', function: {name}}" }),
    z.object({ type: z.literal("function"), function: z.object({ name: z.string().min(1) }) }),
  ]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  chat_template_kwargs: z.object({ enable_thinking: z.boolean().optional() }).nullish(),
  // llama-server's: "deepseek" (and "auto") split the <think> block into reasoning_content, "none" keeps it inline.
  reasoning_format: z.enum(["none", "auto", "deepseek"], { message: "reasoning_format must be 'none', 'auto' or 'deepseek'" }).transform((v) => (v === "auto" ? "deepseek" : v)).nullish(),
});

const tokenIds = z.array(z.number().int().min(0)).min(1);
export const completionRequestSchema = z.object({
  ...common,
  // A string, one string in an array, or token ids; batches of prompts are not supported.
  prompt: z.union([z.string().min(1, { message: "the prompt is empty" }), z.array(z.string().min(1, { message: "the prompt is empty" })).length(1), tokenIds, z.array(tokenIds).length(1)]),
  echo: z.literal(false, { message: "echo is not supported" }).nullish(),
  logprobs: z.number().int().min(0).max(5).nullish(),
  suffix: z.null({ message: "suffix is not supported" }).optional(),
  best_of: z.literal(1, { message: "only best_of = 1 is supported" }).nullish(),
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;
export type CompletionRequest = z.infer<typeof completionRequestSchema>;
export type ChatMessageInput = z.infer<typeof chatMessageSchema>;
