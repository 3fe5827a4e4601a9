// The WebGPU kernels of the grid i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S: the experts of
// unsloth's UD-IQ1/IQ2/IQ3 files of the largest MoE models) against the scalar reference on lavapipe: their readers
// in the matvec (grids as WGSL constants), embed bit for bit, weight arenas (all but IQ1_M repacked in place), and a
// prompt's MoE (per-token gate/up with two reader copies, each its own copy of the grid, and tiles) for a sign-code
// type and a shifted one. Beside the other parity files: each type's kernels are compiles of seconds on lavapipe.
import { test } from "node:test";
import { IQ1_M, IQ1_S, IQ2_S, IQ2_XS, IQ2_XXS, IQ3_S, IQ3_XXS } from "../../src/quant/index.js";
import { arenaParity, matmulParity, moePromptParity } from "../helpers/webgpu-quant-parity.js";

const TYPES = [IQ2_XXS, IQ3_XXS, IQ2_XS, IQ2_S, IQ3_S, IQ1_S, IQ1_M];

test("webgpu matmul and embed match the scalar reference for IQ2_XXS, IQ3_XXS, IQ2_XS, IQ2_S, IQ3_S, IQ1_S, IQ1_M (decode matvec over one and many blocks, a prompt's matmul)", (t) => matmulParity(t, TYPES, new Set()));

test("webgpu weight arenas for the grid i-quants (IQ1_M as stored, the others repacked)", () => arenaParity(TYPES));

test("webgpu moeFfn over a prompt for IQ2_XXS and IQ1_M equals the per-expert reference", () => moePromptParity([[IQ2_XXS, 256, 256], [IQ1_M, 256, 256]]));
