// ggml itself as the oracle for the quant modules: the row (de)quantisers exported by libggml-base.so from
// node-llama-cpp's prebuilt linux-x64 package, called through a tiny C program (ggml-ref.c) built here with the
// system cc on first use. A missing library or compiler fails the test, naming what is missing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
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
