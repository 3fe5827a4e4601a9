// gpt-oss against llama.cpp (node-llama-cpp 3.22.1, flash attention off): teacher-forced logits at every one of 32
// positions after the prompt, on the tiny gpt-oss-shaped model (sliding window 8 on even layers, sinks, q/k/v/o and
// expert biases, YaRN x32, top-k then softmax over the k, clamped SwiGLU), tokenized by the o200k pre-tokenizer; on
// the scalar reference and the native and wasm kernels.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig, type BackendName } from "../../src/engine/config.js";
import { smallVocabModel } from "../helpers/models.js";
import { llamaGreedy, type LlamaRun } from "../helpers/llama.js";
import { checkTeacherForced, marginRecorder } from "../helpers/golden.js";

const PROMPT = "The capital of France is Paris. 日本語のテキスト 🙂 def f(x):\n    return x ** 2  # done";
const N = 32;
// Relative RMSE bound per type (measured here, seed 11: F16 worst 2.3e-3 (llama.cpp rounds activations to f16 for F16
// weights, the scalar reference does not), Q8_0 worst 1.0e-2, Q8_0 with MXFP4 experts 1.5e-2 away from top-k near-ties;
// see the diagnostics each case prints).
const TOL: Record<string, number> = { F16: 0.004, Q8_0: 0.02, MXFP4: 0.03 };
// A top-k near-tie (k-th vs (k+1)-th router logit, compared as softmax scores) may go the other way in llama.cpp's
// rounding; such positions are exempt from the tolerance, counted and capped.
const NEAR_TIE = 0.004;
const MAX_EXEMPT = 4;
// The first 8192 tokens of the Qwen3 vocabulary, as the other goldens cut it (the output head a twentieth of the cost).
const N_VOCAB = 8192;
// Each case's llama.cpp run is held to every backend listed (the fast ones run sinks, windows and the clamped SwiGLU in their own kernels).
const CASES: { type: string; expertType?: string; backends: BackendName[] }[] = [
  { type: "F16", backends: ["scalar"] },
  { type: "Q8_0", backends: ["native"] }, // the native kernels quantise activations to Q8 as llama.cpp does
  { type: "Q8_0", expertType: "MXFP4", backends: ["native", "wasm"] }, // gpt-oss's own expert type (general.file_type 38)
];

for (const { type, expertType, backends } of CASES) {
  const name = `${type}${expertType ? `, ${expertType} experts` : ""}`;
  test(`gpt-oss tiny ${name} (${backends.join(", ")}): tokenization and teacher-forced logits match llama.cpp`, async () => {
    const path = await smallVocabModel({ preset: "gpt-oss-tiny", type, expertType, seed: 11, nVocab: N_VOCAB });
    const ref = await llamaGreedy(path, PROMPT, N, { flashAttention: false });
    for (const backend of backends) await checkBackend(path, ref, backend, `${name} (${backend})`, TOL[expertType ?? type]);
  });
}

async function checkBackend(path: string, ref: LlamaRun, backend: BackendName, label: string, tol: number): Promise<void> {
  const lm = await loadModel(path, defaultEngineConfig({ ctxSize: 256, backend, expertIo: "resident" }));
  try {
    const info = lm.model.info;
    const prompt = lm.tokenizer.encode(PROMPT, { parseSpecial: true });
    assert.deepEqual(prompt, ref.promptTokens, "prompt tokenization differs from llama.cpp");
    const tokens = [...prompt, ...ref.tokens.slice(0, N - 1)];
    assert.ok(tokens.length > 4 * 8, "the sequence is several windows long");
    const { margin, routed, onRoute } = marginRecorder(tokens.length, info.nExpert, () => ({ gating: "softmax", k: info.nExpertUsed }));
    const all = await lm.model.forward(Int32Array.from(tokens), lm.model.makeCache(256), { logits: "all", hooks: { onRoute } });
    assert.equal(routed.size, info.nLayer, "every layer routes");
    const { worst, compared, exempt } = checkTeacherForced(all, ref.logits, { promptLen: prompt.length, tol, margin, nearTie: NEAR_TIE, maxExempt: MAX_EXEMPT });
    console.log(`# gpt-oss ${label}: worst relative RMSE ${worst.toExponential(3)}, argmax compared at ${compared}/${N} positions, ${exempt} top-k near-tie positions exempt`);
  } finally {
    await lm.close();
  }
}
