// The quant types the WebGPU backend runs, by ggml type id (one file each, named after src/quant/*).
import type { GpuQuant } from "./types.js";
import { F32_GPU } from "./f32.js";
import { BF16_GPU, F16_GPU } from "./f16.js";
import { Q8_0_GPU } from "./q8_0.js";
import { Q4_K_GPU } from "./q4_k.js";
import { Q6_K_GPU } from "./q6_k.js";
import { MXFP4_GPU } from "./mxfp4.js";
import { Q5_K_GPU } from "./q5_k.js";
import { Q3_K_GPU } from "./q3_k.js";
import { Q2_K_GPU } from "./q2_k.js";
import { IQ4_XS_GPU } from "./iq4_xs.js";
import { IQ4_NL_GPU } from "./iq4_nl.js";
import { IQ2_XXS_GPU } from "./iq2_xxs.js";
import { IQ3_XXS_GPU } from "./iq3_xxs.js";
import { IQ2_XS_GPU } from "./iq2_xs.js";
import { IQ2_S_GPU } from "./iq2_s.js";
import { IQ3_S_GPU } from "./iq3_s.js";
import { IQ1_M_GPU, IQ1_S_GPU } from "./iq1_s.js";
import { Q4_0_GPU, Q4_1_GPU, Q5_0_GPU, Q5_1_GPU } from "./legacy.js";

export const GPU_QUANTS: ReadonlyMap<number, GpuQuant> = new Map(
  [
    F32_GPU,
    F16_GPU,
    BF16_GPU,
    Q8_0_GPU,
    Q4_K_GPU,
    Q6_K_GPU,
    MXFP4_GPU,
    Q5_K_GPU,
    Q3_K_GPU,
    Q2_K_GPU,
    IQ4_XS_GPU,
    IQ4_NL_GPU,
    IQ2_XXS_GPU,
    IQ3_XXS_GPU,
    IQ2_XS_GPU,
    IQ2_S_GPU,
    IQ3_S_GPU,
    IQ1_S_GPU,
    IQ1_M_GPU,
    Q4_0_GPU,
    Q4_1_GPU,
    Q5_0_GPU,
    Q5_1_GPU,
  ].map((q) => [q.type, q]),
);
export type { GpuQuant } from "./types.js";
