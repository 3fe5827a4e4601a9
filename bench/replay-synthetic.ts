// The generator's routing replayed next to the real traces: small models (128 experts, top-6, as the
// real Qwen3 capture; narrow layers, the statistics barely move with width) of several seeds read ~156
// tokens of CALIBRATION_PROSE one token per forward, as the captures were taken; their routing becomes decode-only
// traces with the real ones' nominal record sizes. Reported per seed: the routing statistics the
// real-like profile is calibrated to, and each pool and policy's hit rate at the budgets the real traces
// are replayed at, with how the ranking of those figures agrees with the real trace's.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultEngineConfig } from "../src/engine/config.js";
import { loadModel } from "../src/engine/load.js";
import type { Trace } from "../src/experts/trace.js";
import { generateModel } from "../src/gen/generate.js";
import { PRESETS } from "../src/gen/presets.js";
import { CALIBRATION_PROSE, layerRoutingStats, tokenTrace, type TraceRoutingStats } from "../src/gen/routing-stats.js";
import { REAL_LIKE, type RoutingProfile } from "../src/gen/weights.js";

export interface SyntheticShape {
  nLayer: number;
  nExpert: number;
  k: number;
  /** Tokens read, one per forward (the real captures hold 149-157). */
  tokens: number;
}

export const QWEN_LIKE: SyntheticShape = { nLayer: 8, nExpert: 128, k: 6, tokens: 156 };

/** A generated model's routing over PROSE as a decode-only trace (one call per token), and its statistics. */
export async function syntheticTrace(seed: number, routing: RoutingProfile = REAL_LIKE, shape: SyntheticShape = QWEN_LIKE): Promise<{ trace: Trace; stats: TraceRoutingStats }> {
  const dir = mkdtempSync(join(tmpdir(), "moestream-synth-"));
  try {
    const hp = { ...PRESETS.tiny.hp, nLayer: shape.nLayer, nExpert: shape.nExpert, nExpertUsed: shape.k, nFfExp: 64 };
    const path = join(dir, "m.gguf");
    await generateModel(path, { preset: { ...PRESETS.tiny, hp }, type: "Q8_0", seed, routing });
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256 }));
    const layers: Int32Array[][] = Array.from({ length: shape.nLayer }, () => []);
    try {
      const kv = lm.model.makeCache(256);
      const ids = lm.tokenizer.encode(CALIBRATION_PROSE).slice(0, shape.tokens);
      for (const t of ids) await lm.model.forward(Int32Array.of(t), kv, { logits: "last", hooks: { onRoute: (l, r) => layers[l].push(Int32Array.from(r.ids)) } });
      kv.free();
    } finally {
      await lm.close();
    }
    const trace = tokenTrace(layers, shape.nExpert, shape.k, `${routing.kind} seed ${seed}`, { ...routing });
    return { trace, stats: layerRoutingStats(layers, shape.nExpert, shape.k) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Spearman's rank correlation of two equally long lists (ties get their mean rank). */
export function spearman(a: readonly number[], b: readonly number[]): number {
  const rank = (xs: readonly number[]) => {
    const order = xs.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(xs.length);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
      for (let m = i; m <= j; m++) r[order[m][1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(a), rb = rank(b);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const ma = mean(ra), mb = mean(rb);
  let num = 0, da = 0, db = 0;
  for (let i = 0; i < ra.length; i++) num += (ra[i] - ma) * (rb[i] - mb), da += (ra[i] - ma) ** 2, db += (rb[i] - mb) ** 2;
  return da === 0 || db === 0 ? NaN : num / Math.sqrt(da * db);
}
