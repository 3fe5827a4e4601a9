// The WebGPU kernels of the grid i-quants IQ2_XXS and IQ3_XXS (the experts of unsloth's UD-IQ2_XXS / UD-IQ3_XXS files of
// the largest MoE models) against the scalar reference on lavapipe: their readers in the matvec (a grid as a WGSL
// constant), embed bit for bit, weight arenas (both repacked in place), and a prompt's MoE (per-token gate/up with
// two reader copies, each its own copy of the grid, and tiles). Beside the other parity files: compiles of seconds.
import { test } from "node:test";
import { IQ2_XXS, IQ3_XXS } from "../../src/quant/index.js";
import { arenaParity, matmulParity, moePromptParity } from "../helpers/webgpu-quant-parity.js";

const TYPES = [IQ2_XXS, IQ3_XXS];

test("webgpu matmul and embed match the scalar reference for IQ2_XXS and IQ3_XXS (decode matvec over one and many blocks, a prompt's matmul)", (t) => matmulParity(t, TYPES, new Set()));

test("webgpu weight arenas for IQ2_XXS and IQ3_XXS (repacked)", () => arenaParity(TYPES));

test("webgpu moeFfn over a prompt for IQ2_XXS and IQ3_XXS equals the per-expert reference", () => moePromptParity([[IQ2_XXS, 256, 256], [IQ3_XXS, 256, 256]]));
