// Trace writing as an engine operation: run a prompt and a decode straight through the model with the
// routing hook, one trace call per forward, and count the expert cache's own hits for replay to check.
import { basename } from "node:path";
import type { Routing } from "../models/routing.js";
import { createSampler, type SamplingOptions } from "../sampler/index.js";
import { TraceWriter, type ObservedCache, type Phase, type TraceHeader } from "../experts/trace.js";
import type { LoadedModel } from "./load.js";

export type { ObservedCache };

export interface RecordTraceOptions {
  /** Trace file to write (JSON lines). */
  output: string;
  /** Prompt token ids: one prefill call. */
  prompt: number[];
  /** Decode steps, one token per forward. */
  steps: number;
  /** Teacher-forced decode tokens (at least `steps`); without them, tokens are sampled. */
  follow?: number[];
  sampling: SamplingOptions;
  stopAtEos?: boolean;
  routing: TraceHeader["routing"];
  note: string;
}

export interface RecordedTrace {
  tokens: number[];
  /** Cache hits and misses per phase; only when experts stream. */
  observed?: ObservedCache;
  /** Forward calls written. */
  calls: number;
  /** From the prefill call to the trace's end. */
  ms: number;
}

export async function recordTrace(lm: LoadedModel, o: RecordTraceOptions): Promise<RecordedTrace> {
  const info = lm.model.info;
  const tok = lm.tokenizer;
  const writer = TraceWriter.create(o.output, {
    model: {
      architecture: lm.arch, name: basename(lm.path), nLayer: info.nLayer, nExpert: info.nExpert, k: info.nExpertUsed,
      // A layer without experts (a leading dense layer) has record size 0: trace v2's mark for "no routes".
      recordBytes: Array.from({ length: info.nLayer }, (_, l) => (lm.experts.reader.layers.includes(l) ? lm.experts.reader.recordBytes(l) : 0)),
    },
    routing: o.routing,
    note: o.note,
  });
  try {
    const kv = lm.model.makeCache(lm.config.ctxSize);
    const hooks = { onRoute: (l: number, r: Routing) => writer.route(l, r.ids, r.nTokens) };
    const history = [...o.prompt];
    const snap = () => ({ hits: lm.experts.stats.hits, misses: lm.experts.stats.misses });
    const forward = async (ids: number[], phase: Phase) => {
      const out = await lm.model.forward(Int32Array.from(ids), kv, { logits: "last", hooks });
      writer.endCall(phase);
      return out;
    };
    const s0 = snap();
    const t0 = performance.now();
    let logits = await forward(o.prompt, "prefill");
    const s1 = snap();
    const sampler = createSampler(o.sampling);
    const tokens: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const t = o.follow ? o.follow[i] : sampler.sample(logits, history);
      if (o.stopAtEos && tok.eogIds.has(t)) break;
      if (history.length >= kv.nCtx) break;
      tokens.push(t);
      history.push(t);
      logits = await forward([t], "decode");
    }
    const s2 = snap();
    kv.free();
    const diff = (a: ReturnType<typeof snap>, b: ReturnType<typeof snap>) => ({ hits: b.hits - a.hits, misses: b.misses - a.misses });
    const observed: ObservedCache | undefined = lm.expertIO.mode === "stream"
      ? { policy: lm.config.expertPolicy, slots: lm.experts.nSlots, prefill: diff(s0, s1), decode: diff(s1, s2) } : undefined;
    writer.close({ tokens, observed });
    return { tokens, observed, calls: writer.calls, ms: performance.now() - t0 };
  } finally {
    writer.close();
  }
}
