// ggml itself as the oracle for the quant modules: the row (de)quantisers exported by libggml-base.so from
// node-llama-cpp's prebuilt linux-x64 package, called through a tiny C program (ggml-ref.c) built here with the
// system cc on first use. A missing library or compiler fails the test, naming what is missing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { QuantFormat } from "../../src/quant/types.js";

const here = dirname(fileURLToPath(import.meta.url));

/** Path of node-llama-cpp's prebuilt linux-x64 libggml-base.so; fails the test if it is not installed. */
export function ggmlBaseLib(): string {
  const root = join(here, "..", "..", "node_modules");
  const tail = join("@node-llama-cpp", "linux-x64", "bins", "linux-x64", "libggml-base.so");
  const tried = [join(root, tail), join(root, "node-llama-cpp", "node_modules", tail)];
  const lib = tried.find((p) => existsSync(p));
  assert.ok(lib, `ggml's libggml-base.so is required (node-llama-cpp's prebuilt @node-llama-cpp/linux-x64 package); tried ${tried.join(", ")}`);
  return lib;
}

/** Path of node-llama-cpp's prebuilt libggml-cpu beside libggml-base.so: the AVX2 ("haswell") build where this CPU
 *  runs it (the kernels llama.cpp would pick on an AVX2 machine), else the baseline x64 build. */
export function ggmlCpuLib(): string {
  const flags = /^flags\s*:(.*)$/m.exec(existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "")?.[1].split(/\s+/) ?? [];
  const avx2 = ["avx2", "fma", "f16c"].every((f) => flags.includes(f));
  const lib = join(dirname(ggmlBaseLib()), avx2 ? "libggml-cpu-haswell.so" : "libggml-cpu-x64.so");
  assert.ok(existsSync(lib), `ggml's CPU library is required (node-llama-cpp's prebuilt @node-llama-cpp/linux-x64 package): ${lib}`);
  return lib;
}

let shim: string | undefined;
function shimPath(): string {
  if (shim) return shim;
  const src = join(here, "ggml-ref.c");
  const dir = join(tmpdir(), `moestream-ggml-ref-${process.getuid?.() ?? 0}`);
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, `ggml-ref-${statSync(src).mtimeMs.toFixed(0)}`);
  if (!existsSync(exe)) {
    try {
      execFileSync("cc", ["-O1", "-o", `${exe}.tmp${process.pid}`, src, "-ldl"], { stdio: ["ignore", "ignore", "pipe"] });
      execFileSync("mv", [`${exe}.tmp${process.pid}`, exe]);
    } catch (e) {
      assert.fail(`building the ggml reference shim with the system cc failed (a C compiler is required): ${(e as Error).message}`);
    }
  }
  return (shim = exe);
}

function call(mode: "deq" | "quant", fn: string, n: number, input: Uint8Array, outBytes: number): Buffer {
  return execFileSync(shimPath(), [ggmlBaseLib(), mode, fn, String(n), String(outBytes)], { input, maxBuffer: outBytes + 1024 });
}

/** ggml's dequantize_row_<type>(blocks, y, n). */
export function ggmlDequantize(f: QuantFormat, blocks: Uint8Array, n: number): Float32Array {
  const out = call("deq", f.name.toLowerCase().replace(/_k$/, "_K"), n, blocks, n * 4);
  return new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
}

/** ggml's quantize_row_<type>_ref(x, blocks, n). */
export function ggmlQuantize(f: QuantFormat, x: Float32Array, n: number): Uint8Array {
  const input = new Uint8Array(x.buffer, x.byteOffset, n * 4);
  return new Uint8Array(call("quant", f.name.toLowerCase().replace(/_k$/, "_K"), n, input, (n / f.blockSize) * f.bytesPerBlock));
}

/** ggml's CPU matmul of n rows of k values of type f against t rows of x (out[t * n + r]): each x row quantised
 *  by the type's vec_dot_type from_float, then ggml's vec_dot, exactly as llama.cpp's CPU backend pairs them. */
export function ggmlMatmul(f: QuantFormat, bytes: Uint8Array, x: Float32Array, k: number, n: number, t: number): Float32Array {
  const input = new Uint8Array(bytes.length + t * k * 4);
  input.set(bytes);
  input.set(new Uint8Array(x.buffer, x.byteOffset, t * k * 4), bytes.length);
  const out = execFileSync(shimPath(), [ggmlCpuLib(), "mm", String(f.type), String(k), String(n), String(t)], { input, maxBuffer: t * n * 4 + 1024 });
  return new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
}
