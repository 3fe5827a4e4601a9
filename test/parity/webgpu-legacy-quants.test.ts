// The WebGPU kernels of ggml's legacy 32-value blocks (Q4_0, Q4_1, Q5_0, Q5_1: many Mixtral and older GGUFs) and
// IQ4_NL against the scalar reference on lavapipe: their readers in the matvec, embed (bit for bit), weight arenas
// (Q4_0, Q5_0 and IQ4_NL repacked in place), and a prompt's MoE (per-token gate/up with two reader copies, and
// tiles) for a table type and a type with a min and 5th bits. Beside the other parity files: each type's kernels
// are compiles of seconds each on lavapipe.
import { test } from "node:test";
import { IQ4_NL, Q4_0, Q4_1, Q5_0, Q5_1 } from "../../src/quant/index.js";
import { arenaParity, matmulParity, moePromptParity } from "../helpers/webgpu-quant-parity.js";

const TYPES = [Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL];

test("webgpu matmul and embed match the scalar reference for Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL (decode matvec over one and many chunks, a prompt's matmul)", (t) => matmulParity(t, TYPES, new Set()));

test("webgpu weight arenas for Q4_0, Q5_0, IQ4_NL (repacked), Q4_1, Q5_1", () => arenaParity(TYPES));

test("webgpu moeFfn over a prompt for IQ4_NL and Q5_1 equals the per-expert reference", () => moePromptParity([[IQ4_NL, 256, 256], [Q5_1, 256, 256]]));
