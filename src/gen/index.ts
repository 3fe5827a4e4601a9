// moestream/gen: writes tiny random models of any registered architecture. A subpath export, kept out of
// the main entry: only the CLI, tests and benches generate models.
export { generateModel, modelMetadata, fileTensors, type GenerateOptions, type GeneratedModel } from "./generate.js";
export { PRESETS, isPresetName, type Preset, type PresetName, type Qwen3MoePreset, type Glm4MoePreset, type DeepSeek2Preset } from "./presets.js";
export type { RoutingProfile } from "./weights.js";
export { fuseModel, FUSIONS, type Fusion } from "./fuse.js";
