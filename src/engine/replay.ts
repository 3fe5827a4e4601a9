// Trace replay as an engine operation: hit rates of eviction policies, and Belady's bound, over a trace
// that recordTrace wrote.
import { parsePolicySpec, policyByName } from "../experts/policies.js";
import { accessSequence, belady, policyContext, replay, type BeladyResult, type Pinning, type ReplayResult } from "../experts/replay.js";
import type { ObservedCache, Trace } from "../experts/trace.js";

export { POLICY_NAMES, parsePolicySpec } from "../experts/policies.js";
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
