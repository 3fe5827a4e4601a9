// llama.cpp teacher-forced parity on a tiny qwen3moe whose routed experts are MXFP4 (gpt-oss's expert type; dense
// weights Q8_0), on the scalar reference and the native and wasm backends: the E8M0/E2M1 decoding and the MXFP4 x Q8_0
// kernels inside a whole model, against ggml's own. The vocabulary is cut to its first 8192 tokens, as the K-quant
// parity tests do.
import { test } from "node:test";
import { smallVocabModel } from "../helpers/models.js";
import { teacherForcedParity } from "../helpers/llama-parity.js";

// Relative RMSE bound (llama.cpp meets MXFP4 with Q8_0-quantised activations, as the native and wasm kernels do;
// the scalar reference keeps them f32). Measured here (seed 11, 8192-token vocabulary), scalar / native / wasm:
// 8.4e-3 / 9.8e-3 / 9.9e-3, argmax equal at every compared position.
const TOL = 0.025;

for (const backend of ["scalar", "native", "wasm"] as const) {
  const label = `tiny, MXFP4 experts (${backend})`;
  test(`${label}: teacher-forced logits match llama.cpp`, async () => {
    const path = await smallVocabModel({ type: "Q8_0", expertType: "MXFP4", seed: 11, nVocab: 8192 });
    console.log(`# ${await teacherForcedParity(path, backend, TOL, label)}`);
  });
}
