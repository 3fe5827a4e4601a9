// Chat templates from the GGUF (tokenizer.chat_template), rendered with @huggingface/jinja.
import { Template } from "@huggingface/jinja";
import { ModelError } from "../util/errors.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
}

export interface ChatTemplateOptions {
  addGenerationPrompt?: boolean;
  /** Qwen3's switch: false makes the template emit an empty think block. */
  enableThinking?: boolean;
}

export function renderChat(template: string | undefined, messages: ChatMessage[], opts: ChatTemplateOptions = {}): string {
  if (!template) throw new ModelError("no_chat_template", "the model has no tokenizer.chat_template; run without --chat");
  return new Template(template).render({
    messages,
    add_generation_prompt: opts.addGenerationPrompt ?? true,
    enable_thinking: opts.enableThinking ?? true,
    bos_token: "",
    eos_token: "",
  });
}
