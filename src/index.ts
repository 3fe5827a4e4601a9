// moestream's library entry: load a model, generate or chat as async iterators, keep and save sessions.
// Writing synthetic models lives in the subpath export moestream/gen.
export { loadModel, Model, type LoadOptions, type ModelGenerateOptions } from "./engine/model.js";
export { HostedSession as Session, type HostedGenerateOptions } from "./engine/hosted-session.js";
// The engine in the caller's thread (no worker): for tools that drive the forward pass themselves.
export { Session as EngineSession, type GenerateOptions, type GenerateStep, type GenerationStats, type ExpertPhaseStats } from "./engine/session.js";
export { checkConstraint, ConstraintError, type OutputConstraint } from "./engine/constraint.js";
export { renderChat, type ChatMessage, type ChatTool, type ChatToolCall, type ChatTemplateOptions } from "./engine/chat-template.js";
export { loadModel as loadEngineModel, type LoadedModel, type LoadProgress } from "./engine/load.js";
export { defaultEngineConfig, ENGINE_OPTIONS, SAMPLING_OPTIONS, type EngineConfig } from "./engine/config.js";
export { OpenAIApi, type OpenAIApiOptions } from "./server/openai.js";
export { packModel } from "./engine/pack.js"; // the architecture's expert layout filled in
export { pull, type PullOptions, type PullResult } from "./engine/pull/index.js";
export { Tokenizer } from "./tokenizer/index.js";
export type { SamplingOptions } from "./sampler/index.js";
export { MoestreamError, FormatError, ModelError, UsageError, AbortedError, NetworkError } from "./util/errors.js";
