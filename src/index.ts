// moestream's library entry: load a GGUF, open a session, generate.
export { loadModel, type LoadedModel } from "./engine/load.js";
export { defaultEngineConfig, type EngineConfig } from "./engine/config.js";
export { Session, type GenerateOptions, type GenerateStep, type GenerationStats } from "./engine/session.js";
export { renderChat, type ChatMessage } from "./engine/chat-template.js";
export { generateModel, type GenerateOptions as GenerateModelOptions } from "./gen/generate.js";
export { Tokenizer } from "./tokenizer/index.js";
export type { SamplingOptions } from "./sampler/index.js";
export { MoestreamError, FormatError, ModelError, UsageError } from "./util/errors.js";
