// Trace replay as an engine operation: hit rates of eviction policies, and Belady's bound, over a trace
// that recordTrace wrote; and a trace checked against the model it claims to be of.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { DENSE_FILE } from "../experts/pack-format.js";
import { parsePolicySpec, policyByName } from "../experts/policies.js";
import { accessSequence, belady, policyContext, replay, type BeladyResult, type Pinning, type ReplayResult } from "../experts/replay.js";
import { expertLayers, TraceFormatError, type ObservedCache, type Trace } from "../experts/trace.js";
import { openGGUF } from "../format/gguf/read.js";
import { UsageError } from "../util/errors.js";
import { readArchitecture } from "./model-check.js";

export { POLICY_NAMES, RECOMMENDED_POLICY, parsePolicySpec } from "../experts/policies.js";
export { hitRate, slotsForMultiple, type Pinning, type PhaseStats, type ReplayResult } from "../experts/replay.js";
export { readTrace, type Trace } from "../experts/trace.js";

/** A policy as parsePolicySpec reads it, labelled as the user wrote it. */
export interface PolicySpec {
  label: string;
  name: string;
  params: Record<string, number>;
}

/** Each policy, and Belady's bound, at one cache size in expert slots. */
export function replayAt(trace: Trace, slots: number, specs: PolicySpec[], pinning: Pinning): { policies: (ReplayResult & { policy: string })[]; belady: BeladyResult } {
  const seq = accessSequence(trace, slots);
  const policies = specs.map((s) => ({ policy: s.label, ...replay(trace, { slots, policy: policyByName(s.name, s.params, policyContext(trace)), pinning }, seq) }));
  return { policies, belady: belady(trace, slots, seq) };
}

/** The traced run's own policy at its own cache size; throws when that policy cannot run here. */
export function replayObserved(trace: Trace, o: ObservedCache): ReplayResult {
  const spec = parsePolicySpec(o.policy);
  return replay(trace, { slots: o.slots, policy: policyByName(spec.name, spec.params, policyContext(trace)) });
}

/** What routing a model can make: its layers, the layers with experts, experts per layer and per token. */
export interface RoutingShape {
  nLayer: number;
  nExpert: number;
  k: number;
  expertLayers: number[];
}

/** A model's routing shape from its GGUF or pack header (no weights read). */
export async function modelRoutingShape(path: string): Promise<RoutingShape> {
  if (!existsSync(path)) throw new UsageError("model_not_found", `model file not found: ${path}`);
  const file = await openGGUF(statSync(path).isDirectory() ? join(path, DENSE_FILE) : path);
  try {
    const { arch, hp } = readArchitecture(file);
    const info = arch.info(hp);
    const experts = arch.tensors(hp).experts; // which layers have experts: the same whichever layout they are stored in
    return { nLayer: info.nLayer, nExpert: info.nExpert, k: info.nExpertUsed, expertLayers: experts.flatMap((e, l) => (e ? [l] : [])) };
  } finally {
    await file.source.close();
  }
}

/**
 * The trace is of this model: every expert id within the model's experts (naming the line, the id and
 * the limit), then the header's shape equal to the model's (a header edited to fit larger ids, or a trace
 * of another model, would replay figures for accesses this model cannot make).
 */
export function checkTraceModel(trace: Trace, tracePath: string, model: RoutingShape, modelPath: string): void {
  const m = trace.header.model;
  for (const [i, call] of trace.calls.entries()) {
    call.routes.forEach((ids, l) => {
      for (const e of ids ?? []) {
        if (e < model.nExpert) continue;
        const detail = `call ${i}, layer ${l}: expert id ${e} not in [0, ${model.nExpert}) (${modelPath} has ${model.nExpert} experts per layer)`;
        throw call.line ? new TraceFormatError(tracePath, call.line, undefined, detail) : new UsageError("bad_trace", `${tracePath}: ${detail}`);
      }
    });
  }
  const differs = [
    m.nLayer !== model.nLayer ? `nLayer ${m.nLayer}, the model ${model.nLayer}` : "",
    m.nExpert !== model.nExpert ? `nExpert ${m.nExpert}, the model ${model.nExpert}` : "",
    m.k !== model.k ? `k ${m.k}, the model ${model.k}` : "",
    expertLayers(m).join() !== model.expertLayers.join() ? `layers with experts ${expertLayers(m).join(",")}, the model ${model.expertLayers.join(",")}` : "",
  ].filter((d) => d !== "");
  if (differs.length) throw new TraceFormatError(tracePath, 1, 0, `header: not a trace of ${modelPath}: ${differs.join("; ")}`);
}
