// ggml itself as the oracle for quant formats: the libggml-base.so that node-llama-cpp's linux-x64 package ships
// exports dequantize_row_<type> and quantize_row_<type>_ref. A tiny C program (compiled once per source version
// with the system cc, cached in the OS temp dir) dlopens it and runs one such row function on stdin -> stdout.
// Every call has the shape f(const void *in, void *out, int64_t n), n = values in the row.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The ggml build the tests hold moestream to (llama.cpp as node-llama-cpp ships it). */
export const GGML_BASE = join(ROOT, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64", "libggml-base.so");

const SHIM = `#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
typedef void (*row_fn)(const void *, void *, int64_t);
int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: shim LIB SYMBOL IN_BYTES OUT_BYTES N\\n"); return 2; }
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "dlopen: %s\\n", dlerror()); return 3; }
  row_fn f = (row_fn)dlsym(h, argv[2]);
  if (!f) { fprintf(stderr, "dlsym %s: %s\\n", argv[2], dlerror()); return 4; }
  size_t ib = strtoull(argv[3], 0, 10), ob = strtoull(argv[4], 0, 10);
  int64_t n = strtoll(argv[5], 0, 10);
  void *in = aligned_alloc(64, ib + 64), *out = aligned_alloc(64, ob + 64);
  if (fread(in, 1, ib, stdin) != ib) { fprintf(stderr, "short input\\n"); return 5; }
  f(in, out, n);
  if (fwrite(out, 1, ob, stdout) != ob) return 6;
  return 0;
}
`;

let shimPath: string | undefined;

/** The compiled shim; throws (never skips) when ggml's library or a C compiler is missing. */
function shim(): string {
  if (shimPath) return shimPath;
  if (!existsSync(GGML_BASE)) {
    throw new Error(`ggml reference library not found at ${GGML_BASE}: install node-llama-cpp with its @node-llama-cpp/linux-x64 package (npm ci)`);
  }
  const dir = join(tmpdir(), `moestream-ggml-shim-${createHash("sha256").update(SHIM).digest("hex").slice(0, 12)}`);
  const exe = join(dir, "shim");
  if (!existsSync(exe)) {
    mkdirSync(dir, { recursive: true });
    const src = join(dir, `shim-${process.pid}.c`);
    writeFileSync(src, SHIM);
    const tmpExe = `${exe}.${process.pid}`;
    const r = spawnSync("cc", ["-O1", "-o", tmpExe, src, "-ldl"], { encoding: "utf8" });
    if (r.error || r.status !== 0) throw new Error(`compiling the ggml shim with cc failed: ${r.error?.message ?? r.stderr}`);
    renameSync(tmpExe, exe); // atomic: concurrent test files never run a half-written binary
  }
  shimPath = exe;
  return exe;
}

/** Run ggml's row function `symbol` on `input`, returning `outBytes` bytes of its output. */
export function ggmlRow(symbol: string, input: Uint8Array, outBytes: number, n: number): Uint8Array {
  const r = spawnSync(shim(), [GGML_BASE, symbol, String(input.length), String(outBytes), String(n)], {
    input,
    maxBuffer: outBytes + (1 << 20),
  });
  if (r.error || r.status !== 0) throw new Error(`ggml ${symbol} failed (status ${r.status}): ${r.error?.message ?? r.stderr.toString()}`);
  if (r.stdout.length !== outBytes) throw new Error(`ggml ${symbol}: ${r.stdout.length} bytes out, expected ${outBytes}`);
  return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length);
}

/** ggml's dequantize_row_<name> on n values encoded in `bytes` (name as ggml spells the type, e.g. "IQ2_XXS"). */
export function ggmlDequantize(name: string, bytes: Uint8Array, n: number): Float32Array {
  const out = ggmlRow(`dequantize_row_${name.toLowerCase()}`, bytes, 4 * n, n);
  return new Float32Array(out.slice().buffer);
}

/** ggml's quantize_row_<name>_ref on x, writing `outBytes` bytes. */
export function ggmlQuantizeRef(name: string, x: Float32Array, outBytes: number): Uint8Array {
  return ggmlRow(`quantize_row_${name.toLowerCase()}_ref`, new Uint8Array(x.buffer, x.byteOffset, x.byteLength), outBytes, x.length);
}
