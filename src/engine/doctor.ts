// "Will it run here, and how fast?": a model's header (a local GGUF, a pack, or a remote GGUF read by HTTP range
// requests before any download), the engine's own memory plan for it on this machine, a short probe of memory and
// disk, and a decode forecast (forecast.ts).
import { existsSync, statSync } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { nativeAvailable } from "../backends/cpu/native.js";
import { ExpertStore } from "../experts/store.js";
import { DENSE_FILE, layerFileName } from "../experts/pack-format.js";
import { FileSource, type ByteSource } from "../format/gguf/byte-source.js";
import { HttpRangeSource, isUrl } from "../format/gguf/http-source.js";
import { readGGUF } from "../format/gguf/read.js";
import { checkSplitParts } from "../format/gguf/split.js";
import { ggmlTypeName } from "../format/gguf/ggml-types.js";
import type { GGUFFile } from "../format/gguf/types.js";
import { Tokenizer } from "../tokenizer/tokenizer.js";
import { FormatError, UsageError } from "../util/errors.js";
import type { EngineConfig } from "./config.js";
import type { ExpertIODecision } from "./expert-io.js";
import { expertKey, probeAttention, probeExpertFfn, probeMatmul, type MatmulThroughput } from "./compute-probe.js";
import { forecastDecode, forecastPrefill, prefillWidths, type Forecast, type PrefillForecast } from "./forecast.js";
import { createBackend } from "./load.js";
import { modelShape, type ExpertLayerShape, type ModelShape } from "./model-shape.js";
import { planMemory, type MemoryPlan } from "./plan.js";
import { PREFILL_BATCH } from "./session.js";
import { probeDisk, probeMemoryBandwidth, type DiskProbe, type MemoryBandwidth } from "./probe.js";
import { isHubSpec, locate, type HubAccess } from "./pull/index.js";

export interface DoctorOptions {
  /** Skip the disk probe and take this GB/s (tests; a known disk). */
  diskGBps?: number;
  /** Skip the memory probe and take this GB/s. */
  memGBps?: number;
  /** Where a remote model's disk probe writes its scratch file (the download's filesystem). */
  probeDir?: string;
  /** Bytes the disk probe reads (default 192 MiB). */
  diskProbeBytes?: number;
  /** Bytes the memory probe reads (default 256 MiB). */
  memProbeBytes?: number;
  /** For a REPO[:QUANT|FILE] target: the Hub's address, a token, a revision (as `pull` takes them). */
  hub?: HubAccess;
  /** The prompt the prefill forecast is for (default 512, llama-bench's pp512); 0 skips the compute probe. */
  promptTokens?: number;
}

export interface DoctorReport {
  source: { kind: ModelSource["kind"]; path: string; fileBytes: number; headerBytesFetched?: number; hub?: HubModel };
  model: {
    arch: string; layers: number; moeLayers: number; experts: number; expertsUsed: number;
    denseBytes: number; expertBytes: number; recordBytes: number;
    perExpert: ModelShape["perExpert"]; bytesPerTokenByType: Record<string, number>;
  };
  /** The engine's plan; absent with the reason when the model cannot run in this memory. */
  plan?: { budget: MemoryPlan["budget"]; ctxSize: number; kvBytes: number; mode: "resident" | "stream"; cacheBytes: number; cacheSlots: number; reason: string };
  fits: boolean;
  whyNot?: string;
  probe: MachineProbe;
  forecast?: Forecast;
  /** Prompt processing (absent on a GPU backend, whose kernels this probe does not run). */
  prefill?: PrefillForecast;
}

/** Where a pack's records come from: its manifest, through the store (which checks it). */
async function packLayers(dir: string): Promise<ExpertLayerShape[]> {
  const store = await ExpertStore.open(dir, { verify: false });
  try {
    return store.layers.map((layer) => ({ layer, experts: store.expertCount(layer), recordBytes: store.recordBytes(layer), parts: store.parts(layer) }));
  } finally {
    await store.close();
  }
}

/** A scratch file for the disk probe where nothing local exists yet (a remote model): written once, read back O_DIRECT. */
async function scratchFile(dir: string, bytes: number): Promise<{ path: string; remove(): Promise<void> }> {
  const d = await mkdtemp(join(dir, ".moestream-probe-"));
  const path = join(d, "probe.bin");
  const fh = await open(path, "w");
  try {
    const chunk = new Uint8Array(8 << 20).fill(0x5a);
    for (let at = 0; at < bytes; at += chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, bytes - at), at);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { path, remove: () => rm(d, { recursive: true, force: true }) };
}

/** Where on the Hub a REPO[:QUANT|FILE] target's header was read: every part of a split GGUF (each lists its own tensors). */
export interface HubModel {
  repo: string;
  commit: string;
  quant: string;
  files: string[];
}

/** A model's header, wherever it is, and what it costs (no weights read). */
export interface ModelSource {
  kind: "gguf" | "pack" | "url" | "hub";
  path: string;
  fileBytes: number;
  headerBytesFetched?: number;
  hub?: HubModel;
  shape: ModelShape;
  /** Where its expert records lie on this machine (none for a URL). */
  expertFiles: string[];
  /** The process's resident bytes once the header and the tokenizer are read: what the engine holds when it plans. */
  heldBytes: number;
}

/**
 * A Hub model's header by range requests on its resolve URLs, as `pull` would choose the file. A split GGUF's parts
 * each hold their own tensors' infos (the first also the metadata): every part's header is read and the tensors joined.
 */
async function readHubSource(target: string, access: HubAccess = {}): Promise<ModelSource> {
  const remote = await locate(target, access).catch((e: unknown) => {
    if (e instanceof UsageError && e.code === "repo_not_found") throw new UsageError(e.code, `${e.message}; nor is there a local file or directory of that name`);
    throw e;
  });
  const headers: Record<string, string> = access.token ? { authorization: `Bearer ${access.token}` } : {};
  const files: GGUFFile[] = [];
  let fetched = 0;
  try {
    for (const f of remote.files) {
      const src = await HttpRangeSource.open(f.url, headers);
      try {
        files.push(await readGGUF(src));
      } catch (e) {
        await src.close();
        throw e;
      } finally {
        fetched += src.fetchedBytes;
      }
    }
    if (files.length > 1) checkSplitParts(files);
    const joined: GGUFFile = { ...files[0], tensors: files.flatMap((f) => f.tensors) };
    const shape = modelShape(joined);
    Tokenizer.fromMetadata(joined.metadata);
    return {
      kind: "hub", path: target, fileBytes: remote.files.reduce((a, f) => a + f.size, 0), shape, heldBytes: process.memoryUsage.rss(), expertFiles: [],
      headerBytesFetched: fetched, hub: { repo: remote.repo, commit: remote.commit, quant: remote.label, files: remote.files.map((f) => f.path) },
    };
  } finally {
    for (const f of files) await f.source.close();
  }
}

export async function readModelSource(target: string, hub?: HubAccess): Promise<ModelSource> {
  const remote = isUrl(target);
  if (!existsSync(target) && isHubSpec(target)) return readHubSource(target, hub);
  if (!remote && !existsSync(target)) throw new UsageError("model_not_found", `model file not found: ${target}`);
  const packed = !remote && statSync(target).isDirectory();
  if (packed && !existsSync(join(target, DENSE_FILE))) throw new FormatError("not_a_pack", target, undefined, `a directory but not a packed model: ${DENSE_FILE} not found`);
  const src: ByteSource = remote ? await HttpRangeSource.open(target) : await FileSource.open(packed ? join(target, DENSE_FILE) : target);
  try {
    const file = await readGGUF(src);
    const shape = modelShape(file, packed ? await packLayers(target) : undefined);
    Tokenizer.fromMetadata(file.metadata); // the engine holds it when it plans: so does this process
    return {
      // A pack: its dense.gguf and the layer files' records.
      kind: remote ? "url" : packed ? "pack" : "gguf", path: target, fileBytes: src.size + (packed ? shape.expertBytes : 0), shape, heldBytes: process.memoryUsage.rss(),
      expertFiles: remote ? [] : packed ? shape.layers.map((l) => join(target, layerFileName(l.layer))) : [target],
      ...(src instanceof HttpRangeSource ? { headerBytesFetched: src.fetchedBytes } : {}),
    };
  } finally {
    await src.close();
  }
}

export interface MachineProbe {
  memory?: MemoryBandwidth;
  disk?: DiskProbe;
  /** The backend's matmul throughput at a prompt batch's width (dense) and at a touched expert's share of it. */
  compute?: { dense: MatmulThroughput; experts?: MatmulThroughput; attentionMs?: number };
  ms: number;
}

/** The engine's backend (as `cfg` picks it) timing its matmuls at the widths a prompt of `promptTokens` gives them. */
async function probeCompute(m: ModelSource, cfg: EngineConfig, promptTokens: number): Promise<MachineProbe["compute"]> {
  if (cfg.backend === "webgpu") return undefined;
  const be = await createBackend(cfg, []);
  try {
    const w = prefillWidths(m.shape, promptTokens, PREFILL_BATCH);
    const k = m.shape.info.nEmbd;
    const dense = await probeMatmul(be, [...new Set([...Object.keys(m.shape.matmulBytes), "F32"])], k, w.batch);
    // Each distinct expert layout once: fused as the engine runs it where it can, else its parts' matmuls.
    const width = Math.max(1, Math.round(w.expertBatch));
    const fused: Record<string, number> = {};
    const unfused = new Set<string>();
    for (const l of m.shape.layers) {
      const key = expertKey(l.parts);
      if (key in fused || l.parts.every((p) => unfused.has(ggmlTypeName(p.type)))) continue;
      const g = await probeExpertFfn(be, l.parts, Math.max(1, Math.min(8, Math.round(w.touched))), width);
      if (g !== undefined) fused[key] = g;
      else for (const p of l.parts) unfused.add(ggmlTypeName(p.type));
    }
    const perType = unfused.size ? await probeMatmul(be, [...unfused], k, width) : undefined;
    const experts = m.shape.layers.length ? { ...(perType ?? { tokens: width, ms: 0, how: "" }), gflops: { ...perType?.gflops, ...fused } } : undefined;
    const attentionMs = m.shape.attention.layers ? await probeAttention(be, m.shape.attention, w.batch) : undefined;
    return { dense, ...(experts ? { experts } : {}), ...(attentionMs !== undefined ? { attentionMs } : {}) };
  } finally {
    be.close?.();
  }
}

/** Memory bandwidth at the engine's threads; disk at record size and the engine's reads in flight where it matters. */
export async function probeMachine(m: ModelSource, cfg: EngineConfig, needDisk: boolean, opts: DoctorOptions = {}): Promise<MachineProbe> {
  const t0 = performance.now();
  const memory = opts.memGBps === undefined ? probeMemoryBandwidth(cfg.threads || availableParallelism(), opts.memProbeBytes) : undefined;
  let disk: DiskProbe | undefined;
  const recordBytes = m.shape.slotBytes;
  if (opts.diskGBps === undefined && recordBytes > 0 && needDisk) {
    // A MoE layer's missing experts are read together (its k experts at most, with prefetch's reads beside them),
    // within the engine's I/O depth (the CLI sets it from the launcher's libuv pool, 16; 4 is libuv's default).
    const inFlight = Math.min(cfg.ioDepth || 4, Math.max(1, m.shape.info.nExpertUsed));
    const probeBytes = opts.diskProbeBytes ?? 192 * 2 ** 20;
    if (m.expertFiles.length === 0) {
      const scratch = await scratchFile(opts.probeDir ?? ".", Math.max(probeBytes, 4 * recordBytes));
      try {
        disk = await probeDisk([scratch.path], recordBytes, inFlight, probeBytes);
      } finally {
        await scratch.remove();
      }
    } else disk = await probeDisk(m.expertFiles, recordBytes, inFlight, probeBytes);
  }
  const prompt = opts.promptTokens ?? 512;
  const compute = prompt > 0 ? await probeCompute(m, cfg, prompt) : undefined;
  return { ...(memory ? { memory } : {}), ...(disk ? { disk } : {}), ...(compute ? { compute } : {}), ms: performance.now() - t0 };
}

/** The prefill forecast for a decision under a probe that timed the backend's matmuls (none without). */
export function prefillFor(m: ModelSource, decision: Pick<ExpertIODecision, "mode" | "cacheBytes">, probe: MachineProbe, opts: DoctorOptions = {}): PrefillForecast | undefined {
  if (!probe.compute) return undefined;
  return forecastPrefill({
    shape: m.shape, decision, memGBps: opts.memGBps ?? probe.memory!.gbps, diskGBps: opts.diskGBps ?? probe.disk?.gbps, packed: m.kind === "pack",
    denseGflops: probe.compute.dense.gflops, expertGflops: probe.compute.experts?.gflops ?? {}, promptTokens: opts.promptTokens ?? 512, batch: PREFILL_BATCH,
    ...(probe.compute.attentionMs !== undefined ? { attentionMs: probe.compute.attentionMs } : {}),
  });
}

/** The forecast for a decision (the engine's, or doctor's plan) under a probe. */
export function forecastFor(m: ModelSource, decision: Pick<ExpertIODecision, "mode" | "cacheBytes">, probe: MachineProbe, opts: DoctorOptions = {}): Forecast {
  return forecastDecode({ shape: m.shape, decision, memGBps: opts.memGBps ?? probe.memory!.gbps, diskGBps: opts.diskGBps ?? probe.disk?.gbps, packed: m.kind === "pack" });
}

export async function doctor(target: string, cfg: EngineConfig, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const m = await readModelSource(target, opts.hub);
  const { shape } = m;
  const recordBytes = shape.slotBytes;
  // The same backend choice as the engine's: wasm keeps a second host copy of each cached expert (a GPU tier's is
  // device memory, outside this budget).
  const copies = cfg.backend === "wasm" || (cfg.backend === "auto" && !nativeAvailable()) ? 2 : 1;
  let plan: MemoryPlan | undefined;
  let whyNot: string | undefined;
  try {
    plan = planMemory(cfg, { info: shape.info, stateBytes: shape.stateBytes, denseBytes: shape.denseBytes, expertBytes: shape.expertBytes, slotBytes: recordBytes, copies, heldBytes: m.heldBytes });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    whyNot = e.message;
  }
  // The disk matters when streaming; a local model's is probed anyway (it says how long a load takes).
  const probe = await probeMachine(m, cfg, plan?.decision.mode === "stream" || m.expertFiles.length > 0, opts);
  const forecast = plan ? forecastFor(m, plan.decision, probe, opts) : undefined;
  const prefill = plan ? prefillFor(m, plan.decision, probe, opts) : undefined;
  return {
    source: { kind: m.kind, path: target, fileBytes: m.fileBytes, ...(m.headerBytesFetched !== undefined ? { headerBytesFetched: m.headerBytesFetched } : {}), ...(m.hub ? { hub: m.hub } : {}) },
    model: {
      arch: shape.arch, layers: shape.info.nLayer, moeLayers: shape.layers.length, experts: shape.info.nExpert, expertsUsed: shape.info.nExpertUsed,
      denseBytes: shape.denseBytes, expertBytes: shape.expertBytes, recordBytes, perExpert: shape.perExpert, bytesPerTokenByType: shape.tokenBytes,
    },
    plan: plan && {
      budget: plan.budget, ctxSize: plan.ctx.ctxSize, kvBytes: plan.kvBytes, mode: plan.decision.mode, cacheBytes: plan.decision.cacheBytes,
      cacheSlots: recordBytes > 0 ? Math.floor(plan.decision.cacheBytes / recordBytes) : 0, reason: plan.decision.reason,
    },
    fits: plan !== undefined,
    ...(whyNot ? { whyNot } : {}),
    probe,
    ...(forecast ? { forecast } : {}),
    ...(prefill ? { prefill } : {}),
  };
}
