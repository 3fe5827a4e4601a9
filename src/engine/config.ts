// Every engine option, declared once: flag, environment alias, default and help. The CLI derives its
// flags from this table; only the CLI reads the environment (through resolveOptions).
import { UsageError } from "../util/errors.js";

export type BackendName = "auto" | "scalar";

export interface OptionSpec<T> {
  flag: string;
  env?: string;
  default: T;
  help: string;
  parse(raw: string, where: string): T;
}

function int(min: number): (raw: string, where: string) => number {
  return (raw, where) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new UsageError("bad_option", `${where} must be an integer >= ${min}, got '${raw}'`);
    return n;
  };
}
function num(raw: string, where: string): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n)) throw new UsageError("bad_option", `${where} must be a number, got '${raw}'`);
  return n;
}
function oneOf<T extends string>(values: readonly T[]): (raw: string, where: string) => T {
  return (raw, where) => {
    if (!(values as readonly string[]).includes(raw)) throw new UsageError("bad_option", `${where} must be one of ${values.join(", ")}, got '${raw}'`);
    return raw as T;
  };
}

export const ENGINE_OPTIONS = {
  backend: { flag: "--backend <name>", env: "MOESTREAM_BACKEND", default: "auto" as BackendName, help: "compute backend: auto | scalar", parse: oneOf<BackendName>(["auto", "scalar"]) },
  ctxSize: { flag: "--ctx-size <n>", env: "MOESTREAM_CTX_SIZE", default: 4096, help: "context size in tokens (KV cache positions)", parse: int(1) },
} satisfies Record<string, OptionSpec<unknown>>;

export const SAMPLING_OPTIONS = {
  temperature: { flag: "--temp <t>", env: "MOESTREAM_TEMP", default: 0.8, help: "sampling temperature; 0 = greedy", parse: num },
  topK: { flag: "--top-k <k>", env: "MOESTREAM_TOP_K", default: 40, help: "keep the k most likely tokens; 0 = off", parse: int(0) },
  topP: { flag: "--top-p <p>", env: "MOESTREAM_TOP_P", default: 0.95, help: "nucleus sampling threshold; 1 = off", parse: num },
  minP: { flag: "--min-p <p>", env: "MOESTREAM_MIN_P", default: 0.05, help: "drop tokens below p * max probability; 0 = off", parse: num },
  repeatPenalty: { flag: "--repeat-penalty <x>", env: "MOESTREAM_REPEAT_PENALTY", default: 1, help: "repetition penalty; 1 = off", parse: num },
  presencePenalty: { flag: "--presence-penalty <x>", env: "MOESTREAM_PRESENCE_PENALTY", default: 0, help: "presence penalty; 0 = off", parse: num },
  frequencyPenalty: { flag: "--frequency-penalty <x>", env: "MOESTREAM_FREQUENCY_PENALTY", default: 0, help: "frequency penalty; 0 = off", parse: num },
  seed: { flag: "--seed <n>", env: "MOESTREAM_SEED", default: -1, help: "sampling seed; -1 = random", parse: int(-1) },
} satisfies Record<string, OptionSpec<unknown>>;

export interface EngineConfig {
  backend: BackendName;
  ctxSize: number;
}

type Values<T extends Record<string, OptionSpec<unknown>>> = { [K in keyof T]: T[K]["default"] };

/**
 * Resolve a table: an explicit value (already parsed, e.g. by commander) wins, then the environment
 * alias, then the default.
 */
export function resolveOptions<T extends Record<string, OptionSpec<unknown>>>(
  table: T,
  given: Partial<Record<keyof T, unknown>>,
  env: Record<string, string | undefined> = {},
): Values<T> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(table)) {
    const v = given[key as keyof T];
    if (v !== undefined) out[key] = typeof v === "string" ? spec.parse(v, spec.flag.split(" ")[0]) : v;
    else if (spec.env && env[spec.env] !== undefined) out[key] = spec.parse(env[spec.env]!, spec.env);
    else out[key] = spec.default;
  }
  return out as Values<T>;
}

export function defaultEngineConfig(overrides: Partial<EngineConfig> = {}): EngineConfig {
  return { ...resolveOptions(ENGINE_OPTIONS, {}), ...overrides };
}
