// Opens a model (a GGUF file or a packed directory), checks every tensor against the architecture's
// declaration, decides resident vs streamed experts, and builds the model: the one place that picks
// concrete backends, expert readers and caches.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { availableParallelism } from "node:os";
import type { Backend, Weight, WeightArena } from "../backends/backend.js";
import { ScalarBackend } from "../backends/cpu/scalar.js";
import { NativeBackend, nativeAvailable } from "../backends/cpu/native.js";
import { loadNativeAddon, nativeAddonError } from "../backends/cpu/native-addon.js";
import { WasmBackend, defaultThreads, wasmAvailable, wasmKernelsError } from "../backends/wasm/wasm.js";
import { openGpuDevice } from "../backends/webgpu/device.js";
import { AutoGpuDeclined, autoGpuDevice } from "./auto-gpu.js";
import { WebGpuBackend } from "../backends/webgpu/webgpu.js";
import { allocArenas } from "../backends/webgpu/arena.js";
import { DENSE_FILE } from "../experts/pack-format.js";
import { checkDenseTensor, sourceIdentity } from "../experts/pack.js";
import { ExpertStore, GGUFExpertReader, type ExpertReader } from "../experts/store.js";
import { StreamingExperts } from "../experts/streaming-source.js";
import { DeviceTier } from "../experts/device-tier.js";
import { allocGpuTier, type GpuTierPlan } from "./gpu-tier.js";
import { parsePolicySpec, policyByName, readerPolicyContext } from "../experts/policies.js";
import { openGGUF, readTensorBytes, metaString } from "../format/gguf/read.js";
import { architecture, type Model } from "../models/registry.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { FormatError, ModelError, UsageError, namingFile } from "../util/errors.js";
import { checkEngineRanges, type EngineConfig } from "./config.js";
import type { ExpertIODecision } from "./expert-io.js";
import { planMemory } from "./plan.js";
import { expertBytesByType, formatExpertBytes } from "./expert-bytes.js";
import { ggmlTypeName } from "../format/gguf/ggml-types.js";
import { formatBytes } from "../util/bytes.js";
import { expertLayout } from "./expert-layout.js";
import { checkCapabilities } from "./capabilities.js";
import { engineChecksums } from "./checksums.js";
import { checkExpertLayers, checkNoOtherTensors, checkTensors, refuseSplitGGUF, tensorsHeld } from "./model-check.js";

export interface LoadedModel {
  readonly path: string;
  readonly arch: string;
  readonly model: Model;
  readonly tokenizer: Tokenizer;
  readonly backend: Backend;
  /** The options it was loaded with, ctxSize resolved (0 = auto becomes the chosen size). */
  readonly config: EngineConfig;
  /** The context size and why, printed once by the CLI. */
  readonly contextReason: string;
  /** Resident or streamed, the cache size, and why. */
  readonly expertIO: ExpertIODecision;
  /** The host byte cache (every backend). */
  readonly experts: StreamingExperts;
  /** The GPU expert tier above it (--backend webgpu), which the model acquires from. */
  readonly gpuExperts?: DeviceTier;
  /** Things the user should hear about once (e.g. missing expert files allowed). */
  readonly warnings: string[];
  /** Content hash of the source GGUF (header + sampled pages): equal for a GGUF and its pack; ties saved sessions to it. */
  identity(): Promise<string>;
  close(): Promise<void>;
}

export interface LoadProgress {
  (doneBytes: number, totalBytes: number): void;
}

/**
 * The split tier's host backend's threads where --threads is 0: a quarter of the cores stays free for the thread
 * driving the GPU (busy while Dawn polls a pending read), Dawn's own and the one driving the pool. On the H100 host
 * (16 cores; a3b at a 25% tier, two alternating rounds, session 17) 12 threads ran 14.01 / 14.25 tok/s, all 16
 * 6.70 / 12.67 (oversubscribed, the pool's stragglers waited on), 8 11.11 / 9.85.
 */
function splitHostThreads(): number {
  const n = availableParallelism();
  return Math.max(1, n - Math.max(1, Math.floor(n / 4)));
}

/** The backend `cfg` asks for (auto: native, else wasm, else scalar), with a warning for each fallback. */
export async function createBackend(cfg: EngineConfig, warnings: string[]): Promise<Backend> {
  const threads = cfg.threads || undefined;
  switch (cfg.backend) {
    case "auto":
      if (nativeAvailable()) return new NativeBackend({ threads });
      if (wasmAvailable()) {
        warnings.push(`native CPU kernels unavailable (${nativeAddonError()}); using the WebAssembly SIMD backend`);
        return new WasmBackend({ fallback: new ScalarBackend(), threads: threads ?? defaultThreads() });
      }
      warnings.push(`native CPU kernels unavailable (${nativeAddonError()}) and WebAssembly SIMD too (${wasmKernelsError()}); using the scalar reference backend (slow)`);
      return new ScalarBackend();
    case "cpu":
    case "native":
      if (!nativeAvailable()) throw new UsageError("backend_unavailable", `--backend ${cfg.backend}: the native addon is not built (${nativeAddonError()}); run \`npm run build:native\`, or use --backend wasm`);
      return new NativeBackend({ threads });
    case "wasm":
      if (!wasmAvailable()) throw new UsageError("backend_unavailable", `--backend wasm: ${wasmKernelsError()}`);
      return new WasmBackend({ fallback: new ScalarBackend(), threads: threads ?? defaultThreads() });
    case "webgpu": {
      const gpu = await openGpuDevice();
      if ("reason" in gpu) throw new UsageError("backend_unavailable", `--backend webgpu: ${gpu.reason}`);
      return new WebGpuBackend(gpu);
    }
    case "scalar":
      return new ScalarBackend();
  }
}

const DENSE_ARENA_BYTES = 1 << 30;

/** The GGUF holding the dense weights and the tokenizer: `path` itself, or a pack's dense.gguf. */
export function denseFile(path: string): string {
  return existsSync(path) && statSync(path).isDirectory() ? join(path, DENSE_FILE) : path;
}

/**
 * `path` is a GGUF file, or a directory written by `moestream pack`. --backend auto tries a hardware GPU first
 * (auto-gpu.ts says when it keeps it) and loads on the CPU otherwise.
 */
export async function loadModel(path: string, cfg: EngineConfig, onProgress?: LoadProgress): Promise<LoadedModel> {
  checkEngineRanges(cfg);
  if (cfg.backend !== "auto" || !existsSync(path)) return loadWith(path, cfg, onProgress);
  const gpu = await autoGpuDevice();
  return loadAuto(path, cfg, gpu && { adapter: gpu.adapterName, backend: () => new WebGpuBackend(gpu) }, onProgress);
}

/** A GPU --backend auto may take: its adapter's name, and its backend (made once, when tried). */
export interface AutoGpu {
  readonly adapter: string;
  backend(): Backend;
}

/** --backend auto with this GPU (or none): on it when the model runs well there, else on the CPU. */
export async function loadAuto(path: string, cfg: EngineConfig, gpu: AutoGpu | undefined, onProgress?: LoadProgress): Promise<LoadedModel> {
  const be = gpu?.backend();
  if (!(be instanceof WebGpuBackend)) return loadWith(path, cfg, onProgress);
  try {
    return await loadWith(path, cfg, onProgress, be);
  } catch (e) {
    if (!(e instanceof AutoGpuDeclined)) throw e;
    const lm = await loadWith(path, cfg, onProgress);
    lm.warnings.push(`backend auto: not the GPU (${gpu!.adapter}): ${e.message}; using backend '${lm.backend.name}'`);
    return lm;
  }
}

/**
 * --gpu-hold-clock: a CUDA context held on each NVIDIA GPU (native addon), before the GPU tier is sized, so it sees
 * the memory the contexts take. Warnings where none is held, naming why.
 */
function holdGpuClock(be: Backend): string[] {
  if (!(be instanceof WebGpuBackend)) return [`--gpu-hold-clock applies to --backend webgpu only: ignored on backend '${be.name}'`];
  if (!/nvidia/i.test(be.adapterName)) return [`--gpu-hold-clock: the adapter '${be.adapterName}' is not an NVIDIA GPU: nothing held`];
  const addon = loadNativeAddon();
  if (!addon) return [`--gpu-hold-clock needs the native addon: ${nativeAddonError() ?? "not built"}`];
  const r = addon.holdCudaContexts();
  return r.held > 0 ? [] : [`--gpu-hold-clock: no CUDA context held: ${r.reason}`];
}

async function loadWith(path: string, cfg: EngineConfig, onProgress?: LoadProgress, autoGpu?: WebGpuBackend): Promise<LoadedModel> {
  if (!existsSync(path)) throw new UsageError("model_not_found", `model file not found: ${path}`);
  const packed = statSync(path).isDirectory();
  const densePath = packed ? join(path, DENSE_FILE) : path;
  // A damaged pack is a bad data file (exit 3, as verify says), not a usage error.
  if (packed && !existsSync(densePath)) throw new FormatError("not_a_pack", path, undefined, `a directory but not a packed model: ${DENSE_FILE} not found`);
  const file = await openGGUF(densePath);
  let reader: ExpertReader | undefined;
  let backend: Backend | undefined;
  let hostBe: Backend | undefined;
  try {
    refuseSplitGGUF(file);
    const archName = metaString(file, "general.architecture");
    const arch = architecture(archName);
    const tokenizer = Tokenizer.fromMetadata(file.metadata);
    const byName = new Map(file.tensors.map((t) => [t.name, t]));
    const embd = byName.get("token_embd.weight");
    if (!embd) throw new ModelError("missing_tensor", `${densePath}: required tensor 'token_embd.weight' not found`);
    const nVocab = embd.shape[1];
    if (tokenizer.vocabSize !== nVocab) {
      throw new ModelError("bad_vocab", `${densePath}: tokenizer has ${tokenizer.vocabSize} tokens but token_embd.weight has ${nVocab} rows`);
    }
    const hp = namingFile(densePath, () => arch.readHParams(file.metadata, nVocab));
    const warnings: string[] = [];
    const be = (backend = autoGpu ?? (await createBackend(cfg, warnings)));
    if (cfg.gpuHoldClock) warnings.push(...holdGpuClock(be));

    const info = arch.info(hp);
    let store: ExpertStore | undefined;
    if (packed) {
      store = await ExpertStore.open(path, { verify: cfg.verifyExperts, checksums: engineChecksums(), allowMissing: cfg.allowMissingExperts });
      if (store.missing.length) warnings.push(`${store.missing.length} expert layer file(s) missing, their experts output zeros (--allow-missing-experts): ${store.missing.join(", ")}`);
      reader = store;
    }
    // A layout with fused alternatives (attn_qkv, ffn_gate_up_exps) follows the tensors the file (or the pack's manifest) holds.
    const { dense, experts: expertSpecs, unused } = arch.tensors(hp, tensorsHeld(file, store?.layers.map((l) => store!.parts(l))));
    const uses = checkTensors(dense, file, false);
    const nDense = uses.length; // the experts' uses follow (they run on the CPU with --cpu-moe)
    const expertTensors = packed ? [] : expertSpecs.flatMap((e) => Object.values(e ?? {}));
    checkTensors(expertTensors, file, true, uses);
    checkTensors(unused, file, false); // shapes only: never loaded, so their types need no kernel
    checkNoOtherTensors(file, [...dense, ...expertTensors, ...unused], archName);
    if (!packed) reader = await GGUFExpertReader.open(path, expertLayout, { file }); // the header is parsed already
    const r0: ExpertReader = reader!;
    const layers = r0.layers;
    // A pack's records must hold the parts the architecture declares, of one expert's shape each.
    checkExpertLayers(path, expertSpecs, { layers, parts: packed ? (l) => r0.parts(l) : undefined }, uses);
    // --cpu-moe on the GPU: the experts run on a CPU backend, asked for their types once it is made.
    const cpuMoe = cfg.cpuMoe && be instanceof WebGpuBackend;
    const gpuUses = cpuMoe ? uses.slice(0, nDense) : uses;
    if (autoGpu) {
      try {
        const slow = checkCapabilities(be, gpuUses, arch.ops);
        if (slow.length) throw new AutoGpuDeclined(slow[0]);
      } catch (e) {
        throw e instanceof AutoGpuDeclined ? e : new AutoGpuDeclined((e as Error).message);
      }
    }
    warnings.push(...namingFile(path, () => checkCapabilities(be, gpuUses, arch.ops)));
    const slotBytes = Math.max(...layers.map((l) => reader!.recordBytes(l)));
    const expertBytes = layers.reduce((a, l) => a + reader!.recordBytes(l) * reader!.expertCount(l), 0);
    const denseBytes = dense.reduce((a, s) => a + (byName.get(s.name)?.byteLength ?? 0), 0);
    const { ctx, decision: decided } = planMemory(cfg, {
      // A GPU tier's copy is device memory (gpu-tier.ts), not the host's: wasm's is the host's.
      info, stateBytes: (n) => arch.cacheBytes(hp, n), denseBytes, expertBytes, slotBytes, copies: be.deviceWeights && !(be instanceof WebGpuBackend) ? 2 : 1, heldBytes: process.memoryUsage.rss(),
    });
    if (autoGpu && decided.mode !== "resident") throw new AutoGpuDeclined(`its experts stream from ${packed ? "the pack" : "the file"} (${decided.reason}), which the CPU backend does faster than the GPU tier today`);
    const perExpert = expertBytesByType(layers.flatMap((l) => r0.parts(l).map((p) => ({ layer: l, part: p.name, type: ggmlTypeName(p.type), bytes: p.byteLength }))));
    let expertIO: ExpertIODecision = { ...decided, perExpert, reason: `${decided.reason}; ${formatExpertBytes(perExpert, layers.length)}` };

    const totalBytes = denseBytes + (expertIO.mode === "resident" ? expertBytes : 0);
    let doneBytes = 0;
    // Dense tensors go into weight arenas of up to 1 GiB, each tensor at a 64-byte boundary. On host
    // backends the file is read straight into the arena (huge pages on the native backend); elsewhere
    // (wasm, a GPU) it is read into a buffer and written in.
    const place = new Map<string, { arena: number; at: number }>();
    const arenaBytes: number[] = [];
    for (const spec of dense) {
      const t = byName.get(spec.name);
      if (!t) continue;
      const n = Math.ceil(t.byteLength / 64) * 64;
      const last = arenaBytes.length - 1;
      if (last < 0 || arenaBytes[last] + n > DENSE_ARENA_BYTES) arenaBytes.push(0);
      place.set(spec.name, { arena: arenaBytes.length - 1, at: arenaBytes[arenaBytes.length - 1] });
      arenaBytes[arenaBytes.length - 1] += n;
    }
    const arenas = be instanceof WebGpuBackend ? await denseOnGpu(be, arenaBytes, dense.length, autoGpu !== undefined) : arenaBytes.map((n) => be.allocWeights(n));
    // A pack's dense tensors are checked against its manifest as they land (off the JS thread with the addon,
    // while the next one is read), and all before any is bound: binding may repack the bytes in place.
    const crcs = packed && cfg.verifyDense ? (reader as ExpertStore).manifest.dense.crc32c : undefined;
    const checks: Promise<unknown>[] = [];
    const read = async (name: string): Promise<void> => {
      const t = byName.get(name)!;
      const { arena, at } = place.get(name)!;
      const a = arenas[arena];
      const bytes = await readTensorBytes(file, t, a.host?.subarray(at, at + t.byteLength));
      if (crcs) checks.push(checkDenseTensor(densePath, t, bytes, crcs, engineChecksums()).then(() => undefined, (e: unknown) => e));
      if (!a.host) a.write(at, bytes);
      onProgress?.((doneBytes += bytes.byteLength), totalBytes);
    };
    const loaded = dense.filter((s) => byName.has(s.name)).map((s) => s.name);
    for (const name of loaded) await read(name);
    const bad = (await Promise.all(checks)).find((e) => e !== undefined);
    if (bad) throw bad;
    const weights = new Map<string, Weight>();
    for (const name of loaded) {
      const t = byName.get(name)!;
      const { arena, at } = place.get(name)!;
      weights.set(name, arenas[arena].view({ name, type: t.type, shape: t.shape }, at));
    }

    // The GPU tier, sized once dense weights hold their device memory. Holding every expert, it is loaded
    // through a host cache of one layer's top-k, and the host keeps none of them.
    let gpu: GpuTierPlan | undefined;
    if (cfg.gpuExpertCache && !(be instanceof WebGpuBackend)) warnings.push(`--gpu-expert-cache applies to --backend webgpu only: ignored on backend '${be.name}'`);
    if (cfg.gpuMisses !== "upload" && !(be instanceof WebGpuBackend)) warnings.push(`--gpu-misses applies to --backend webgpu only: ignored on backend '${be.name}'`);
    if (cfg.cpuMoe && !(be instanceof WebGpuBackend)) warnings.push(`--cpu-moe applies to --backend webgpu only: ignored on backend '${be.name}'`);
    if (cfg.gpuKeepBusy && !(be instanceof WebGpuBackend)) warnings.push(`--gpu-keep-busy applies to --backend webgpu only: ignored on backend '${be.name}'`);
    if (be instanceof WebGpuBackend) {
      const totalExperts = layers.reduce((a, l) => a + r0.expertCount(l), 0);
      gpu = await allocGpuTier(be, { ...cfg, cpuMoe }, { slotBytes, totalExperts, minSlots: info.nExpertUsed, layerExperts: r0.expertCount(layers[0]), hostCacheBytes: expertIO.mode === "resident" ? totalExperts * slotBytes : expertIO.cacheBytes });
      if (autoGpu && !gpu.resident) {
        gpu.slots.free();
        throw new AutoGpuDeclined(cpuMoe ? "--cpu-moe runs the experts on the CPU beside the GPU, untimed against the CPU backend alone: give --backend webgpu" : `the GPU holds ${gpu.slots.nSlots} of the ${totalExperts} experts, and streaming the rest through it is slower than the CPU backend today`);
      }
      const g = { slots: gpu.slots.nSlots, bytes: gpu.slots.nSlots * slotBytes, resident: gpu.resident };
      expertIO = gpu.resident
        ? { ...expertIO, mode: "resident", cacheBytes: info.nExpertUsed * slotBytes, gpu: g, reason: `experts resident on the GPU (${gpu.reason}); ${formatExpertBytes(perExpert, layers.length)}` }
        : { ...expertIO, gpu: g, reason: `${expertIO.reason}; ${gpu.reason}` };
    }
    // Staging for speculative reads: two tokens' worth of one layer's experts.
    const prefetchSlots = expertIO.mode === "stream" && !gpu?.resident && cfg.prefetch ? 2 * info.nExpertUsed : 0;
    const spec = parsePolicySpec(cfg.expertPolicy);
    // A token touches k experts in every layer with experts: lfu-decay's clock; per-layer quotas need each layer's experts.
    const policy = policyByName(spec.name, spec.params, readerPolicyContext(r0, info.nLayer, info.nExpertUsed));
    const experts = new StreamingExperts(r0, be, {
      budgetBytes: expertIO.cacheBytes, minExperts: info.nExpertUsed, prefetchSlots, policy, prefetchDepth: cfg.prefetchDepth, ioDepth: cfg.ioDepth || undefined,
      hostOnly: gpu !== undefined, fill: !gpu?.resident,
    });
    // The GPU tier evicts by the same policy as the host cache, an instance of its own.
    // --gpu-misses cpu: the experts the tier lacks run on a CPU backend of their own (split tier).
    const hostBackend = gpu && !gpu.resident && (cpuMoe || cfg.gpuMisses !== "upload") ? (hostBe = await createBackend({ ...cfg, backend: "auto", threads: cfg.threads || splitHostThreads() }, warnings)) : undefined;
    if (cpuMoe && hostBackend) warnings.push(...namingFile(path, () => checkCapabilities(hostBackend, uses.slice(nDense))));
    if (hostBackend?.hostCopyBytes && be instanceof WebGpuBackend) be.hostCopy = hostBackend.hostCopyBytes.bind(hostBackend);
    if (cfg.gpuKeepBusy && be instanceof WebGpuBackend) await be.keepBusy(cfg.gpuKeepBusy);
    const gpuExperts = gpu && new DeviceTier(experts, gpu.slots, policyByName(spec.name, spec.params, readerPolicyContext(r0, info.nLayer, info.nExpertUsed)), { minExperts: cpuMoe ? 0 : info.nExpertUsed, hostBackend, admitRatio: cpuMoe || cfg.gpuMisses === "cpu-fill" ? Infinity : cfg.gpuAdmit });
    if (hostBackend) expertIO = { ...expertIO, reason: `${expertIO.reason}; ${cpuMoe ? "every routed expert runs" : "experts not on the GPU run"} on backend '${hostBackend.name}' (${cpuMoe ? "--cpu-moe" : `--gpu-misses ${cfg.gpuMisses}`})${"threads" in hostBackend ? ` on ${hostBackend.threads} thread${hostBackend.threads === 1 ? "" : "s"}` : ""}` };
    if (expertIO.mode === "resident") {
      const base = doneBytes;
      const progress = (d: number, t: number) => onProgress?.(base + (d / t) * expertBytes, Math.max(totalBytes, base + expertBytes));
      await (gpuExperts?.resident ? gpuExperts.preloadAll(progress) : experts.preloadAll(progress)); // a GPU tier short of all fills on use
    }
    const model = arch.create(hp, { backend: be, weights, experts: gpuExperts ?? experts });
    const r = r0;
    let identity: Promise<string> | undefined;
    const packIdentity = r instanceof ExpertStore ? r.manifest.source.sampleSha256 : undefined;
    return {
      path, arch: archName, model, tokenizer, backend: be, config: { ...cfg, ctxSize: ctx.ctxSize }, contextReason: ctx.reason, expertIO, experts, gpuExperts, warnings,
      identity: () => (identity ??= packIdentity !== undefined ? Promise.resolve(packIdentity) : sourceIdentity(path).then((id) => id.sampleSha256)),
      close: async () => {
        await experts.cancelPrefetch();
        await r.close();
        experts.free();
        gpuExperts?.free();
        for (const a of arenas) a.free();
        be.close?.();
        hostBe?.close?.();
      },
    };
  } catch (e) {
    await reader?.close();
    backend?.close?.(); // worker threads of a model that never loaded
    hostBe?.close?.();
    throw e;
  } finally {
    await file.source.close();
  }
}

/**
 * The dense weights' arenas on the GPU, or a UsageError at load where the device refuses that memory (an
 * out-of-memory error scope): WebGPU tells no memory size, and a refused buffer would otherwise fail the first forward.
 */
async function denseOnGpu(be: WebGpuBackend, arenaBytes: readonly number[], tensors: number, auto: boolean): Promise<WeightArena[]> {
  const arenas = await allocArenas(be, arenaBytes);
  if (Array.isArray(arenas)) return arenas;
  const refused = `${be.adapterName} refused ${formatBytes(arenaBytes.reduce((a, n) => a + n, 0))} for the model's ${tensors} dense tensors (${arenas.message})`;
  if (auto) throw new AutoGpuDeclined(refused);
  throw new UsageError("gpu_memory", `${refused}; --cpu-moe does not shrink them: run the model on the CPU (--backend native) or take a smaller quant`);
}
