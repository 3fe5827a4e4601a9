// Request bodies of OpenAI's Responses API (/v1/responses), the stateless subset: the conversation travels in
// `input` (nothing is stored, so previous_response_id is refused by name), function tools, text.format.
import { z } from "zod";
import { MAX_MESSAGES } from "./schemas.js";

const textPart = z.object({ type: z.enum(["input_text", "output_text"]), text: z.string() });
const content = z.union([z.string(), z.array(z.discriminatedUnion("type", [textPart.extend({ type: z.literal("input_text") }), textPart.extend({ type: z.literal("output_text") })], {
  message: "content parts of type input_text and output_text are supported (no images or files)",
}))]);

const message = z.object({ type: z.literal("message").optional(), role: z.enum(["user", "assistant", "system", "developer"]), content });
const functionCall = z.object({ type: z.literal("function_call"), call_id: z.string(), name: z.string().min(1), arguments: z.string() });
const functionCallOutput = z.object({ type: z.literal("function_call_output"), call_id: z.string(), output: z.union([z.string(), z.array(textPart)]) });
// An earlier response's reasoning, sent back with its output: the template gets what it shows of it.
const reasoning = z.object({ type: z.literal("reasoning"), content: z.array(z.object({ text: z.string() })).nullish() });

const item = z.union([message, functionCall, functionCallOutput, reasoning], {
  message: "input items are messages, function_call, function_call_output and reasoning items",
});

const tool = z.object({
  type: z.literal("function", { message: "only function tools are supported" }),
  name: z.string().min(1),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

const format = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({ type: z.literal("json_schema"), name: z.string().optional(), schema: z.record(z.string(), z.unknown()), description: z.string().optional(), strict: z.boolean().nullish() }),
], { message: "text.format.type must be 'text', 'json_object' or 'json_schema'" });

export const responsesRequestSchema = z.object({
  model: z.string().optional(), // any id: one model is loaded
  input: z.union([z.string().min(1, { message: "the input is empty" }), z.array(item).min(1).max(MAX_MESSAGES)]),
  instructions: z.string().nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stream: z.boolean().nullish(),
  tools: z.array(tool).max(128).nullish(),
  tool_choice: z.union([
    z.enum(["none", "auto", "required"], { message: "tool_choice must be 'none', 'auto', 'required' or {type: 'function', name}" }),
    z.object({ type: z.literal("function"), name: z.string().min(1) }),
  ]).nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z.object({ format: format.nullish() }).nullish(),
  previous_response_id: z.null({ message: "previous_response_id is not supported: responses are not stored, send the conversation in input" }).optional(),
  store: z.boolean().nullish(), // nothing is stored either way
  metadata: z.record(z.string(), z.string()).nullish(),
  grammar: z.string().nullish(), // llama.cpp's extension, as on chat completions
});

export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;
