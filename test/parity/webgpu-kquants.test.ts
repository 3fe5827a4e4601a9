// The WebGPU kernels of the k-quants and IQ4_XS beyond the first types (webgpu-kernels.test.ts), against the scalar
// reference on lavapipe: their readers in the matvec, the tiled matmul and embed, weight arenas (Q3_K repacked in
// place), and a prompt's MoE tiles for IQ4_XS (whose table the gate/up kernel's second reader copy renames). The
// kernels' other variants are the same code for every type and run in that file; compiling each of these kernels
// takes lavapipe ~15 s, so this file runs beside it and tests the fewest shapes that reach every reader path.
import { test } from "node:test";
import { IQ4_XS } from "../../src/quant/iq4_xs.js";
import { Q2_K, Q3_K, Q5_K } from "../../src/quant/index.js";
import { arenaParity, matmulParity, moePromptParity } from "../helpers/webgpu-quant-parity.js";

const TYPES = [Q5_K, Q3_K, Q2_K, IQ4_XS];

test("webgpu matmul and embed match the scalar reference for Q5_K, Q3_K, Q2_K, IQ4_XS (decode matvec over one and many chunks, tiled matmul over several tokens)", (t) => matmulParity(t, TYPES, new Set()));

test("webgpu weight arenas for Q5_K, Q3_K (repacked), Q2_K, IQ4_XS", () => arenaParity(TYPES));

test("webgpu moeFfn over a prompt for IQ4_XS equals the per-expert reference", () => moePromptParity([[IQ4_XS, 256, 256]]));
