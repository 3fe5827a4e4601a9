// llama.cpp teacher-forced parity on tiny qwen3moe models whose routed experts are Q5_K, Q3_K or Q2_K (dense
// weights Q8_0, as low-bit mixes keep them wider), on the scalar reference and the native and wasm backends. The
// vocabulary is cut to its first 8192 tokens (byte tokens included): the 151k-row output head cost most of the time.
import { test } from "node:test";
import { smallVocabModel } from "../helpers/models.js";
import { teacherForcedParity } from "../helpers/llama-parity.js";

// Relative RMSE bound per expert type (llama.cpp meets these experts with Q8_K-quantised activations; we do not).
// Measured here (seed 11, 8192-token vocabulary), scalar / native / wasm: Q5_K 1.4e-2 / 1.2e-2 / 1.2e-2,
// Q3_K 1.1e-2 / 1.2e-2 / 1.2e-2, Q2_K 6.2e-2 / 1.3e-2 / 1.3e-2.
// Q2_K's large min offsets cancel against the scaled quants, so the activations' Q8 rounding weighs more: the
// native and wasm kernels round them to Q8_K as llama.cpp does and land closer to it than the scalar reference.
const TOL: Record<string, number> = { Q5_K: 0.025, Q3_K: 0.025, Q2_K: 0.08 };

for (const expertType of ["Q5_K", "Q3_K", "Q2_K"]) {
  for (const backend of ["scalar", "native", "wasm"] as const) {
    const label = `tiny, ${expertType} experts (${backend})`;
    test(`${label}: teacher-forced logits match llama.cpp`, async () => {
      const path = await smallVocabModel({ type: "Q8_0", expertType, seed: 11, nVocab: 8192 });
      console.log(`# ${await teacherForcedParity(path, backend, TOL[expertType], label)}`);
    });
  }
}
