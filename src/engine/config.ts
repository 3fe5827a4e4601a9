// Every engine option, declared once: flag, environment alias, default and help. The CLI derives its
// flags from this table; only the CLI reads the environment (through resolveOptions).
import { UsageError } from "../util/errors.js";
import { didYouMean } from "../util/suggest.js";
import { resolveSamplingOptions } from "../sampler/index.js";
import { parsePolicySpec, RECOMMENDED_POLICY } from "../experts/policies.js";
import { ADMIT_RATIO } from "../experts/device-tier.js";
import { ConstraintError, constraintShapeProblem } from "./constraint.js";

// What SAMPLING_OPTIONS resolve to; the CLI and server name it through the engine.
export type { SamplingOptions } from "../sampler/index.js";

/** "native" is accepted as an alias of "cpu" (the native addon). */
export type BackendName = "auto" | "cpu" | "native" | "wasm" | "webgpu" | "scalar";
export type ExpertIO = "auto" | "resident" | "stream";
export type GpuMisses = "upload" | "cpu" | "cpu-fill";

export interface OptionSpec<T> {
  flag: string;
  env?: string;
  default: T;
  help: string;
  parse(raw: string, where: string): T;
}

function int(min: number, max = Number.MAX_SAFE_INTEGER): (raw: string, where: string) => number {
  return (raw, where) => {
    const n = Number(raw);
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError("bad_option", `${where} must be an integer ${range}, got '${raw}'`);
    return n;
  };
}

/** Ranges of the numeric engine options: checked when parsed and again at load (library callers pass numbers). */
const RANGES = { threads: [0, 1024], ctxSize: [0, 1 << 24], prefetchDepth: [1, 64], ioDepth: [0, 1024], gpuKeepBusy: [0, 10000] } as const;

/** Refuse a numeric engine option out of range, naming it, before anything is sized by it. */
export function checkEngineRanges(cfg: Pick<EngineConfig, keyof typeof RANGES>): void {
  for (const [key, [min, max]] of Object.entries(RANGES)) {
    const v = cfg[key as keyof typeof RANGES];
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new UsageError("bad_option", `${ENGINE_OPTIONS[key as keyof typeof RANGES].flag.split(" ")[0]} (${key}) must be an integer in [${min}, ${max}], got ${v}`);
    }
  }
}
function num(raw: string, where: string): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n)) throw new UsageError("bad_option", `${where} must be a number, got '${raw}'`);
  return n;
}
const UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
/** Byte sizes: 123, 512M, 1.5G, 8GiB, 4gb (binary units); 0 means "derive it". */
export function parseSize(raw: string, where: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(raw);
  if (!m) throw new UsageError("bad_option", `${where} must be a size like 512M or 8G, got '${raw}'`);
  return Math.round(Number(m[1]) * UNITS[m[2].toLowerCase()]);
}
/** A ratio of at least 1, or inf. */
function admitRatio(raw: string, where: string): number {
  if (/^\s*(inf|infinity)\s*$/i.test(raw)) return Infinity;
  const n = num(raw, where);
  if (n < 1) throw new UsageError("bad_option", `${where} must be a ratio of at least 1 (or inf), got '${raw}'`);
  return n;
}
function bool(raw: string, where: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new UsageError("bad_option", `${where} must be true or false, got '${raw}'`);
}

function oneOf<T extends string>(values: readonly T[]): (raw: string, where: string) => T {
  return (raw, where) => {
    if (!(values as readonly string[]).includes(raw)) throw new UsageError("bad_option", `${where} must be one of ${values.join(", ")}, got '${raw}'`);
    return raw as T;
  };
}

/** An eviction policy spec, checked now (name and parameters) and kept as written. */
function policySpec(raw: string, where: string): string {
  try {
    parsePolicySpec(raw);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(e.code, `${where}: ${e.message}`);
    throw e;
  }
  return raw;
}

export const ENGINE_OPTIONS = {
  backend: {
    flag: "--backend <name>", env: "MOESTREAM_BACKEND", default: "auto" as BackendName, parse: oneOf<BackendName>(["auto", "cpu", "native", "wasm", "webgpu", "scalar"]),
    help: "compute backend: auto (webgpu on a hardware GPU when it runs every op of the model and holds every expert; else cpu when the native addon is built, else wasm, else scalar) | cpu (native C kernels, SIMD, all cores; alias native) | wasm (WebAssembly SIMD128, worker threads; no compiler needed) | webgpu (WGSL kernels on a GPU: Dawn under Node, navigator.gpu in a browser) | scalar (TypeScript reference)",
  },
  threads: { flag: "--threads <n>", env: "MOESTREAM_THREADS", default: 0, help: "compute threads; 0 = all cores", parse: int(...RANGES.threads) },
  ctxSize: {
    flag: "--ctx-size <n>", env: "MOESTREAM_CTX_SIZE", default: 0, parse: int(...RANGES.ctxSize),
    help: "context size in tokens (KV cache positions); 0 = auto: the model's training context, at most 32768 and at most what 1/8 of the memory budget after dense weights holds in KV, but not below 4096 (or the training context if smaller)",
  },
  expertIo: {
    flag: "--expert-io <mode>", env: "MOESTREAM_EXPERT_IO", default: "auto" as ExpertIO, parse: oneOf<ExpertIO>(["auto", "resident", "stream"]),
    help: "auto | resident | stream: auto streams experts from disk when they exceed 0.75 x the memory budget",
  },
  memBudget: { flag: "--mem-budget <size>", env: "MOESTREAM_MEM_BUDGET", default: 0, help: "memory budget (e.g. 16G); 0 = what the process may use: the least of its cgroup's memory limit and the available memory. A cgroup limit below it still binds", parse: parseSize },
  expertCache: {
    flag: "--expert-cache <size>", env: "MOESTREAM_EXPERT_CACHE", default: 0, parse: parseSize,
    help: "bytes of expert cache when streaming (e.g. 2G); 0 = what the budget leaves after what the process holds, dense weights, KV, prefetch staging and headroom",
  },
  gpuExpertCache: {
    flag: "--gpu-expert-cache <size>", env: "MOESTREAM_GPU_EXPERT_CACHE", default: 0, parse: parseSize,
    help: "--backend webgpu: bytes of expert slots on the GPU (e.g. 8G), filled from the host cache; 0 = auto: the host expert cache's size (every expert when resident), halved while the device refuses the memory, never below one layer's top-k. All experts fit: they stay resident on the GPU",
  },
  gpuMisses: {
    flag: "--gpu-misses <mode>", env: "MOESTREAM_GPU_MISSES", default: "upload" as GpuMisses, parse: oneOf<GpuMisses>(["upload", "cpu", "cpu-fill"]),
    help: "--backend webgpu, a GPU tier short of every expert: upload (an expert not on the GPU goes up into the tier; output identical at every tier size) | cpu (it runs on the CPU, as llama.cpp's --n-cpu-moe, once the tier's free slots are filled; with --gpu-admit it still goes up when used more often than the expert it would evict; output then depends on the tier's contents: CPU kernels round activations to 8 bits) | cpu-fill (as cpu, never admitting)",
  },
  gpuAdmit: {
    flag: "--gpu-admit <ratio>", env: "MOESTREAM_GPU_ADMIT", default: ADMIT_RATIO, parse: admitRatio,
    help: `--gpu-misses cpu: an expert run on the CPU goes up into the full GPU tier (in the background, while the GPU works; on the GPU from its next lookup) when looked up more than RATIO times as often lately as the one it would evict; inf (the default): never, once the free slots are filled. bench tier replays real routing: on Qwen3-30B-A3B at a 25% tier, 1 halves the experts run on the CPU for twice the uploads`,
  },
  cpuMoe: {
    flag: "--cpu-moe", env: "MOESTREAM_CPU_MOE", default: false, parse: bool,
    help: "--backend webgpu: every routed expert runs on the CPU, as llama.cpp's --cpu-moe: the GPU runs attention, the dense and shared FFNs and the routing, and holds no expert slots (--gpu-expert-cache, --gpu-misses and --gpu-admit are then moot); the experts stay in host memory or stream from disk, for a GPU whose memory holds the dense weights and little more",
  },
  gpuHoldClock: {
    flag: "--gpu-hold-clock <on|off>", env: "MOESTREAM_GPU_HOLD_CLOCK", default: false, parse: bool,
    help: "--backend webgpu on an NVIDIA GPU: hold a CUDA context on each NVIDIA GPU (the driver's libcuda, loaded at run time through the native addon), under which the driver keeps the GPU at its full clock; without one it clocks a bursty Vulkan workload down (an H100 under a split-tier-like load: 345 MHz, 1980 with a context held; bench/gpu/clock.sh). Costs power and some GPU memory a device; off (the default)",
  },
  gpuKeepBusy: {
    flag: "--gpu-keep-busy <us>", env: "MOESTREAM_GPU_KEEP_BUSY", default: 0, parse: int(...RANGES.gpuKeepBusy),
    help: "--backend webgpu: keep the GPU busy about US µs in each window a layer leaves it idle (a split layer's experts done before the CPU's; each read's wait), so the driver keeps its clock up: a Vulkan decode this bursty ran at a sixth of an H100's clock. Costs power; 0 (the default): off",
  },
  recordAhead: {
    flag: "--record-ahead <on|off>", env: "MOESTREAM_RECORD_AHEAD", default: true, parse: bool,
    help: "--backend webgpu: record each decode token's GPU work while the token before it still runs, its id filled in once sampled (models whose layers all keep a KV cache); off: record after sampling",
  },
  prefetchDepth: { flag: "--prefetch-depth <n>", env: "MOESTREAM_PREFETCH_DEPTH", default: 2, help: "router lookahead: layers ahead to predict and read (beyond one, only the router's top half)", parse: int(...RANGES.prefetchDepth) },
  ioDepth: {
    flag: "--io-depth <n>", env: "MOESTREAM_IO_DEPTH", default: 0, parse: int(...RANGES.ioDepth),
    help: "expert reads in flight; 0 = the libuv thread pool's size (UV_THREADPOOL_SIZE; 16 under the moestream launcher)",
  },
  prefetch: { flag: "--prefetch <on|off>", env: "MOESTREAM_PREFETCH", default: true, help: "speculative expert reads when streaming (previous token + router lookahead)", parse: bool },
  expertPolicy: {
    flag: "--expert-policy <spec>", env: "MOESTREAM_EXPERT_POLICY", default: RECOMMENDED_POLICY, parse: policySpec,
    help: "expert cache eviction: lru | slru | lfu | lrfu | lfu-decay | lfuda | s3fifo | arc | markov, with parameters as name:key=value; perLayer=1 (any policy) gives each layer a slot quota (default markov:perLayer=1, chosen by replaying real routing traces)",
  },
  allowMissingExperts: {
    flag: "--allow-missing-experts", env: "MOESTREAM_ALLOW_MISSING_EXPERTS", default: false, parse: bool,
    help: "run a packed model whose expert layer files are missing: those experts output zeros (warned once)",
  },
  verifyExperts: {
    flag: "--verify-experts [on|off]", env: "MOESTREAM_VERIFY_EXPERTS", default: true, parse: bool,
    help: "check each expert record's crc32c on every read, resident or streamed (packed models); off for a disk you trust",
  },
  verifyDense: {
    flag: "--verify-dense [on|off]", env: "MOESTREAM_VERIFY_DENSE", default: true, parse: bool,
    help: "check each dense tensor's crc32c at load (packed models); off for a disk you trust",
  },
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
  /** 0 = all cores. */
  threads: number;
  /** Tokens; 0 = auto (engine/context-size.ts), resolved by load. */
  ctxSize: number;
  expertIo: ExpertIO;
  /** Bytes; 0 = the cgroup limit or the available memory, whichever is less (engine/memory-limit.ts). */
  memBudget: number;
  /** Bytes; 0 = derived from the budget. */
  expertCache: number;
  /** Bytes of GPU expert slots (webgpu); 0 = auto (engine/gpu-tier.ts). */
  gpuExpertCache: number;
  /** Where a GPU tier's missing experts run: uploaded into it, or on a CPU backend (split tier). */
  gpuMisses: GpuMisses;
  /** Split tier admission over a victim: looked up more than this many times as often (Infinity: never). */
  gpuAdmit: number;
  /** Every routed expert on a CPU backend beside the GPU (webgpu; llama.cpp's --cpu-moe): no expert slots. */
  cpuMoe: boolean;
  /** Check every expert record's crc32c as it is read (packed models). */
  verifyExperts: boolean;
  /** Check every dense tensor's crc32c at load (packed models whose manifest has them). */
  verifyDense: boolean;
  allowMissingExperts: boolean;
  prefetch: boolean;
  /** Hold a CUDA context on each NVIDIA GPU, so the driver keeps its full clock for the WebGPU backend's work. */
  gpuHoldClock: boolean;
  /** µs of spin the WebGPU backend pads its idle windows with (WebGpuBackend.keepBusy); 0: off. */
  gpuKeepBusy: number;
  /** Record a decode token's device work while the one before it runs (engine/record-ahead.ts). */
  recordAhead: boolean;
  /** Router lookahead depth in layers. */
  prefetchDepth: number;
  /** Expert reads in flight; 0 = libuv's default pool size (the CLI fills in UV_THREADPOOL_SIZE). */
  ioDepth: number;
  /** Eviction policy spec, e.g. "markov:perLayer=1" or "slru:protected=0.8". */
  expertPolicy: string;
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

/** Refuse a key no table knows, suggesting the nearest known one. */
function knownKeys(given: object, known: readonly string[], what: string): void {
  for (const k of Object.keys(given)) {
    if (!known.includes(k)) throw new UsageError("unknown_option", `unknown ${what} '${k}'${didYouMean(k, known)}; known: ${known.join(", ")}`);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * A library caller's engine options, checked against the same table as the CLI's flags, before any I/O:
 * unknown names are refused with a suggestion, strings are parsed as the flag would be ("8G", "4"), and
 * other values must have the option's type and pass its parser (ranges, allowed names). Returns the
 * options parsed; undefined values are left out (the default applies). Typed UsageErrors name the option.
 */
export function validateLoadOptions(options: unknown): Partial<EngineConfig> {
  if (options === undefined) return {};
  if (!isRecord(options)) throw new UsageError("bad_option", `load options must be an object, got ${options === null ? "null" : typeof options}`);
  knownKeys(options, [...Object.keys(ENGINE_OPTIONS), "onProgress"], "load option");
  if (options.onProgress !== undefined && typeof options.onProgress !== "function") badValue("onProgress", "a function", options.onProgress);
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(ENGINE_OPTIONS) as [string, OptionSpec<unknown>][]) {
    const v = options[key];
    if (v === undefined) continue;
    const where = `${spec.flag.split(" ")[0]} (${key})`;
    const type = typeof spec.default;
    if (typeof v !== "string" && typeof v !== type) {
      throw new UsageError("bad_option", `${where} must be a ${type}${type === "string" ? "" : " or a string as the flag takes"}, got ${v === null ? "null" : typeof v}`);
    }
    out[key] = spec.parse(String(v), where);
  }
  return out as Partial<EngineConfig>;
}

/** What each library generation option must be (ModelGenerateOptions: GenerateOptions and the chat template's switches). */
const GENERATE_OPTIONS: Record<string, (v: unknown, key: string) => void> = {
  maxTokens: count, topLogits: count, logprobs: count,
  stopAtEog: (v, k) => typeof v === "boolean" || badValue(k, "true or false", v),
  signal: (v, k) => v instanceof AbortSignal || badValue(k, "an AbortSignal", v),
  onPrefill: (v, k) => typeof v === "function" || badValue(k, "a function", v),
  sampling: (v) => void resolveSamplingOptions(v as never), // its own typed errors, naming the field
  constraint: (v) => {
    const p = constraintShapeProblem(v);
    if (p) throw new ConstraintError(p.field, p.message);
  },
  template: (v, k) => {
    if (!isRecord(v)) badValue(k, "an object", v);
    knownKeys(v, ["addGenerationPrompt", "enableThinking", "tools"], "template option");
    for (const b of ["addGenerationPrompt", "enableThinking"]) if (v[b] !== undefined && typeof v[b] !== "boolean") badValue(`template.${b}`, "true or false", v[b]);
    if (v.tools !== undefined && !Array.isArray(v.tools)) badValue("template.tools", "an array of tools", v.tools);
  },
};

function badValue(key: string, rule: string, got: unknown): never {
  throw new UsageError("bad_option", `${key} must be ${rule}, got ${typeof got === "string" ? JSON.stringify(got) : String(got)}`);
}

/** Token counts: the context bounds them anyway, so any non-negative safe integer. */
function count(v: unknown, key: string): void {
  if (!Number.isSafeInteger(v) || (v as number) < 0) badValue(key, "an integer >= 0", v);
}

/** A library caller's generation options: unknown names refused with a suggestion, each value's type and range checked. */
export function validateGenerateOptions(options: unknown): void {
  if (options === undefined) return;
  if (!isRecord(options)) throw new UsageError("bad_option", `generation options must be an object, got ${options === null ? "null" : typeof options}`);
  knownKeys(options, Object.keys(GENERATE_OPTIONS), "generation option");
  for (const [k, v] of Object.entries(options)) if (v !== undefined) GENERATE_OPTIONS[k](v, k);
}
