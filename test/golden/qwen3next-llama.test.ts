// qwen3next and qwen35moe against llama.cpp (node-llama-cpp 3.22.1, flash attention off): teacher-forced logits at
// every position of a 45-token prompt on the tiny hybrid models (3 gated DeltaNet layers + 1 gated full-attention
// layer, shared expert, MTP block that must not run), each run from a fresh llama.cpp context (a recurrent state
// cannot roll back). On F16 the prompt is also fed one token at a time to both engines: ours must agree with its
// own batch within what llama.cpp's batch and token-by-token runs differ by.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, renameSync } from "node:fs";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { smallVocabModel } from "../helpers/models.js";
import { llamaLogitsAll } from "../helpers/llama.js";
import { checkLogitsRow, relRmse } from "../helpers/golden.js";
import { PROMPT } from "../helpers/llama-parity.js";
import { rewriteGGUF } from "../helpers/rewrite.js";
import { toLegacySsmIn } from "../helpers/qwen3next-legacy.js";

// Relative RMSE bound per type, measured here (seed 11): F16 6.6e-4 / 4.5e-4 (qwen3next / qwen35moe), Q8_0 7.9e-3 /
// 6.8e-3, Q4_K 8.7e-3 / 8.8e-3 (llama.cpp's own batch and token-by-token runs differ by 1.2e-2 / 1.6e-2 on Q4_K).
const TOL: Record<string, number> = { F16: 0.002, Q8_0: 0.015, Q4_K: 0.02 };
const N_VOCAB = 8192; // the first 8192 Qwen3 tokens: the output head costs a twentieth of the full vocabulary's
const CASES: { arch: "qwen3next" | "qwen35moe"; type: string; backend: "scalar" | "native"; legacy?: boolean }[] = [
  ...(["qwen3next", "qwen35moe"] as const).flatMap((arch) => [
    { arch, type: "F16", backend: "scalar" as const },
    { arch, type: "Q8_0", backend: "native" as const }, // the native kernels quantise activations to Q8 as llama.cpp does
    { arch, type: "Q4_K", backend: "native" as const },
  ]),
  { arch: "qwen3next", type: "Q8_0", backend: "native", legacy: true }, // older converters' fused ssm_in
];

/** The tiny model, or its legacy-layout copy (ssm_in in place of attn_qkv + attn_gate), made once per machine. */
async function modelFile(arch: string, type: string, legacy: boolean): Promise<string> {
  const path = await smallVocabModel({ preset: `${arch}-tiny` as never, type, seed: 11, nVocab: N_VOCAB });
  if (!legacy) return path;
  const out = path.replace(/\.gguf$/, "-ssm_in.gguf");
  if (!existsSync(out)) {
    await rewriteGGUF(path, `${out}.${process.pid}`, { edit: toLegacySsmIn });
    renameSync(`${out}.${process.pid}`, out);
  }
  return out;
}

for (const { arch, type, backend, legacy } of CASES) {
  test(`${arch} tiny ${type}${legacy ? " legacy ssm_in" : ""} (${backend}): teacher-forced logits at every prompt position match llama.cpp`, async () => {
    const path = await modelFile(arch, type, legacy ?? false);
    const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 128, backend, expertIo: "resident" }));
    try {
      const info = lm.model.info;
      assert.equal(info.arch, arch);
      const tokens = lm.tokenizer.encode(PROMPT, { parseSpecial: true });
      assert.ok(tokens.length >= 32, `prompt of ${tokens.length} tokens`);
      const ref = await llamaLogitsAll(path, tokens, "batch", { flashAttention: false });
      const routed = new Set<number>();
      const all = await lm.model.forward(Int32Array.from(tokens), lm.model.makeCache(128), { logits: "all", hooks: { onRoute: (l) => void routed.add(l) } });
      assert.deepEqual([...routed].sort(), [0, 1, 2, 3], "every layer routes; the MTP block does not run");
      const V = info.nVocab;
      const row = (a: Float32Array, p: number) => a.subarray(p * V, (p + 1) * V);
      let worst = 0, compared = 0;
      for (let p = 0; p < tokens.length; p++) {
        const c = checkLogitsRow(row(all, p), ref[p], TOL[type], `position ${p}`);
        worst = Math.max(worst, c.err);
        if (c.compared) compared++;
      }
      assert.ok(compared >= tokens.length / 2, `argmax compared at only ${compared}/${tokens.length} positions`);
      let note = "";
      if (type === "F16") {
        // Token by token: ours against our batch, bounded by llama.cpp's own batch vs token-by-token difference.
        const single = await llamaLogitsAll(path, tokens, "single", { flashAttention: false });
        const oracle = Math.max(...tokens.map((_, p) => relRmse(single[p], ref[p])));
        const cache = lm.model.makeCache(128);
        let ours = 0;
        for (let p = 0; p < tokens.length; p++) {
          const l = await lm.model.forward(Int32Array.of(tokens[p]), cache, { logits: "last" });
          ours = Math.max(ours, relRmse(l, row(all, p)));
        }
        assert.ok(ours <= Math.max(oracle, 1e-6), `token by token differs from the batch by ${ours.toExponential(3)}, llama.cpp's own runs by ${oracle.toExponential(3)}`);
        note = `; token by token vs batch ${ours.toExponential(3)} (llama.cpp ${oracle.toExponential(3)})`;
      }
      console.log(`# ${arch} ${type}${legacy ? " legacy ssm_in" : ""} (${backend}): worst relative RMSE ${worst.toExponential(3)} over ${tokens.length} positions, argmax compared at ${compared}${note}`);
    } finally {
      await lm.close();
    }
  });
}
