// Request bodies of Anthropic's Messages API (/v1/messages), validated with zod. Unknown fields are dropped
// (metadata, service_tier); content and tools we cannot honour (images, documents, server tools) are refused
// by name.
import { z } from "zod";
import { MAX_MESSAGES } from "./schemas.js";

const cacheControl = z.unknown().optional(); // prompt caching is implicit here (the KV of a shared prefix is kept)
const textBlock = z.object({ type: z.literal("text"), text: z.string(), cache_control: cacheControl, citations: z.unknown().optional() });
const toolUseBlock = z.object({ type: z.literal("tool_use"), id: z.string(), name: z.string().min(1), input: z.record(z.string(), z.unknown()), cache_control: cacheControl });
const toolResultBlock = z.object({
  type: z.literal("tool_result"),
  tool_use_id: z.string(),
  content: z.union([z.string(), z.array(textBlock, { message: "tool_result content must be a string or text blocks (no images or documents)" })]).optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
});
const thinkingBlock = z.object({ type: z.literal("thinking"), thinking: z.string(), signature: z.string().optional() });
const redactedThinkingBlock = z.object({ type: z.literal("redacted_thinking"), data: z.string() });

const block = z.discriminatedUnion("type", [textBlock, toolUseBlock, toolResultBlock, thinkingBlock, redactedThinkingBlock], {
  message: "content blocks of type text, tool_use, tool_result, thinking and redacted_thinking are supported (no images, documents or server tools)",
});

export const anthropicMessageSchema = z.object({
  role: z.enum(["user", "assistant"]),
  content: z.union([z.string(), z.array(block)]),
});

const tool = z.object({
  type: z.literal("custom", { message: "only custom tools (name, description, input_schema) are supported, not Anthropic's server tools" }).optional(),
  name: z.string().min(1),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()),
  cache_control: cacheControl,
});

const noParallel = { disable_parallel_tool_use: z.boolean().optional() };
const toolChoice = z.discriminatedUnion("type", [
  z.object({ type: z.literal("auto"), ...noParallel }),
  z.object({ type: z.literal("any"), ...noParallel }),
  z.object({ type: z.literal("none") }),
  z.object({ type: z.literal("tool"), name: z.string().min(1), ...noParallel }),
], { message: "tool_choice.type must be 'auto', 'any', 'tool' or 'none'" });

export const messagesRequestSchema = z.object({
  model: z.string().optional(), // any id: one model is loaded
  max_tokens: z.number().int().min(1),
  system: z.union([z.string(), z.array(textBlock)]).optional(),
  messages: z.array(anthropicMessageSchema).min(1).max(MAX_MESSAGES, { message: `at most ${MAX_MESSAGES} messages` }),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  stop_sequences: z.array(z.string().min(1)).max(16).optional(),
  tools: z.array(tool).max(128).optional(),
  tool_choice: toolChoice.optional(),
  // The budget is not enforced: max_tokens bounds thinking and answer together. "adaptive" (and
  // "between_tools") leave it to the template's default (Qwen3 thinks).
  thinking: z.discriminatedUnion("type", [
    z.object({ type: z.literal("enabled"), budget_tokens: z.number().int().min(1) }),
    z.object({ type: z.literal("disabled") }),
    z.object({ type: z.literal("adaptive") }),
    z.object({ type: z.literal("between_tools") }),
  ], { message: "thinking.type must be 'enabled', 'disabled', 'adaptive' or 'between_tools'" }).optional(),
  // Structured output; effort is advisory and ignored.
  output_config: z.object({
    effort: z.string().nullish(),
    format: z.object({ type: z.literal("json_schema", { message: "output_config.format.type must be 'json_schema'" }), schema: z.record(z.string(), z.unknown()) }).nullish(),
  }).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  // llama.cpp's extensions, as on chat completions: constrained output.
  grammar: z.string().optional(),
  json_schema: z.record(z.string(), z.unknown()).optional(),
});

export type MessagesRequest = z.infer<typeof messagesRequestSchema>;
export type AnthropicMessage = z.infer<typeof anthropicMessageSchema>;
