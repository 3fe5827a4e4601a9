// Hyperparameters read with plausible ranges: a corrupt or hostile header is refused naming the key before
// a count sizes an allocation (block_count = 2^31 exhausted the heap) or a NaN reaches the forward pass.
import type { YarnParams } from "../backends/backend.js";
import { metaString } from "../format/gguf/accessors.js";
import { metaNumber } from "../format/gguf/read.js";
import type { GGUFMetaValue, GGUFMetadata } from "../format/gguf/types.js";
import { meta } from "../format/gguf/write.js";
import { ModelError } from "../util/errors.js";
import type { ModelInfo } from "./model.js";

export interface Range {
  /** Inclusive bounds. */
  min: number;
  max: number;
  integer: boolean;
  /** A positive real (eps, rope base): min is exclusive. */
  positive?: boolean;
}

/** A count in [min, max]. */
export const count = (min: number, max: number): Range => ({ min, max, integer: true });
/** A finite real > 0, below max. */
export const positive = (max = Number.MAX_VALUE): Range => ({ min: 0, max, integer: false, positive: true });

/** metaNumber, then the range: ModelError "bad_hparams" naming the key, the value and what was expected. */
export function metaInRange(md: GGUFMetadata, key: string, r: Range, opts?: { default: number }): number {
  const v = metaNumber(md, key, opts);
  const ok = Number.isFinite(v) && (!r.integer || Number.isInteger(v)) && (r.positive ? v > r.min : v >= r.min) && v <= r.max;
  if (!ok) {
    const want = r.integer ? `an integer in [${r.min}, ${r.max}]` : `a finite number in (${r.min}, ${r.max}]`;
    throw new ModelError("bad_hparams", `metadata '${key}' is ${v}; expected ${want}`);
  }
  return v;
}

/** The keys every MoE decoder here has (llama.cpp's generic hparams), in the order writers put them: metadata(hp)'s shared part. */
export function decoderMetadata(arch: string, hp: { nCtxTrain: number; nEmbd: number; nFf: number; nHead: number; nHeadKv: number; ropeFreqBase: number; rmsEps: number; nExpertUsed: number; nExpert: number }): [string, GGUFMetaValue][] {
  const k = (name: string) => `${arch}.${name}`;
  return [
    [k("context_length"), meta.u32(hp.nCtxTrain)],
    [k("embedding_length"), meta.u32(hp.nEmbd)],
    [k("feed_forward_length"), meta.u32(hp.nFf)],
    [k("attention.head_count"), meta.u32(hp.nHead)],
    [k("attention.head_count_kv"), meta.u32(hp.nHeadKv)],
    [k("rope.freq_base"), meta.f32(hp.ropeFreqBase)],
    [k("attention.layer_norm_rms_epsilon"), meta.f32(hp.rmsEps)],
    [k("expert_used_count"), meta.u32(hp.nExpertUsed)],
    [k("expert_count"), meta.u32(hp.nExpert)],
  ];
}

/** The ModelInfo every architecture reports: its decoder's sizes, as read into its hyperparameters. */
export function modelInfo(arch: string, hp: Omit<ModelInfo, "arch">): ModelInfo {
  return { arch, nLayer: hp.nLayer, nVocab: hp.nVocab, nEmbd: hp.nEmbd, nCtxTrain: hp.nCtxTrain, nExpert: hp.nExpert, nExpertUsed: hp.nExpertUsed };
}

/** rope.scaling.*: type, factor (0: none), original_context_length, attn_factor (DeepSeek, gpt-oss). */
export interface RopeScaling {
  ropeScaling: "none" | "linear" | "yarn";
  ropeScale: number;
  ropeOrigCtx: number;
  ropeAttnFactor: number;
}

/** The rope.scaling.* keys, llama.cpp's defaults where absent; an unsupported type is refused naming it. */
export function readRopeScaling(md: GGUFMetadata, arch: string, nCtxTrain: number): RopeScaling {
  const k = (name: string) => `${arch}.${name}`;
  const scaling = metaString(md, k("rope.scaling.type"), { default: "linear" });
  if (scaling !== "none" && scaling !== "linear" && scaling !== "yarn") throw new ModelError("bad_hparams", `${arch}: rope.scaling.type '${scaling}' is not supported (none, linear, yarn)`);
  return {
    ropeScaling: scaling,
    ropeScale: metaInRange(md, k("rope.scaling.factor"), { min: 0, max: 1e6, integer: false }, { default: 0 }),
    ropeOrigCtx: metaInRange(md, k("rope.scaling.original_context_length"), count(1, 1 << 24), { default: nCtxTrain }),
    ropeAttnFactor: metaInRange(md, k("rope.scaling.attn_factor"), positive(1e3), { default: 1 }),
  };
}

/** readRopeScaling's inverse. */
export function ropeScalingMetadata(arch: string, hp: RopeScaling): [string, GGUFMetaValue][] {
  const k = (name: string) => `${arch}.${name}`;
  return [
    [k("rope.scaling.type"), meta.str(hp.ropeScaling)],
    [k("rope.scaling.factor"), meta.f32(hp.ropeScale)],
    [k("rope.scaling.original_context_length"), meta.u32(hp.ropeOrigCtx)],
    [k("rope.scaling.attn_factor"), meta.f32(hp.ropeAttnFactor)],
  ];
}

/**
 * The rope llama.cpp runs for these keys (llama-context.cpp's yarn_attn_factor; yarnLogMul is DeepSeek's
 * yarn_log_multiplier / 0.1, 0 elsewhere): YaRN parameters (undefined for the plain rope), and freqScale and
 * attnFactor as computed. gpt-oss (×32): cos/sin gain 1 + 0.1·ln 32.
 */
export function ropeScalingParams(hp: RopeScaling, yarnLogMul = 0): { yarn?: YarnParams; freqScale: number; attnFactor: number } {
  const fs = hp.ropeScaling === "none" || hp.ropeScale === 0 ? 1 : 1 / hp.ropeScale;
  const ext = hp.ropeScaling === "yarn" ? 1 : 0;
  const gm = (s: number, m: number) => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);
  let attn = 1;
  if (ext !== 0) {
    const factor = 1 / fs, ylm = yarnLogMul;
    attn = ylm !== 0 ? gm(factor, ylm !== 1 ? ylm : 1) / gm(factor, ylm) : gm(factor, 1);
    attn /= 1 + 0.1 * Math.log(factor);
  }
  attn *= hp.ropeAttnFactor;
  const plain = fs === 1 && ext === 0 && attn === 1;
  const yarn = plain ? undefined : { freqScale: fs, extFactor: ext, attnFactor: attn, betaFast: 32, betaSlow: 1, nCtxOrig: hp.ropeOrigCtx };
  return { yarn, freqScale: fs, attnFactor: attn };
}
