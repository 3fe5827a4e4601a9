// Chat templates from the GGUF (tokenizer.chat_template), rendered with @huggingface/jinja.
import { Template } from "@huggingface/jinja";
import { ModelError } from "../util/errors.js";

/** A tool call as OpenAI sends it back in an assistant message (arguments: a JSON string or an object). */
export interface ChatToolCall {
  id?: string;
  type?: "function";
  function: { name: string; arguments: string | Record<string, unknown> };
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  tool_calls?: ChatToolCall[];
  tool_call_id?: string;
  name?: string;
  /** An earlier reply's thinking, when kept apart from its content. */
  reasoning_content?: string;
}

/** A function the model may call, in OpenAI's shape: the template prints it into the system turn. */
export interface ChatTool {
  type: "function";
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Qwen3's switch: false makes the template emit an empty think block. */
  enableThinking?: boolean;
  tools?: ChatTool[];
}

const compiled = new Map<string, Template>();

export function renderChat(template: string | undefined, messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
  if (!template) throw new ModelError("no_chat_template", "the model has no tokenizer.chat_template; run without --chat");
  let t = compiled.get(template);
  try {
    if (!t) compiled.set(template, (t = new Template(template)));
    return t.render({
      messages,
      tools: opts.tools?.length ? opts.tools : undefined,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      // Left undefined unless asked for, as transformers does: templates differ in their default (Qwen3
      // thinks unless told not to, DeepSeek-V3.1 only when told to).
      enable_thinking: opts.enableThinking,
      bos_token: "",
      eos_token: "",
    });
  } catch (e) {
    // The Jinja library's own errors name neither the template nor where it came from.
    throw new ModelError("bad_chat_template", `the model's chat template (tokenizer.chat_template) cannot be ${t ? "rendered" : "parsed"}: ${(e as Error).message}`, { cause: e });
  }
}
