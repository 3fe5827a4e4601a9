// npm run bench -- kernels-ggml: moestream's native low-bit dot kernels against ggml's own CPU vec_dot on the same
// weights and activations, in one process (bench/lowbit-vs-ggml.c, built here with the system cc), one thread,
// the two alternated each round, best of ROUNDS: a fair pairing even on a loaded machine. ggml's library is
// node-llama-cpp's prebuilt libggml-cpu variant that llama.cpp itself would load on this CPU. Expert shapes of a3b.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const TYPES: [string, number][] = [["Q2_K", 10], ["Q3_K", 11], ["Q5_K", 13], ["IQ2_XXS", 16], ["IQ3_XXS", 18], ["IQ4_XS", 23], ["Q4_K", 12], ["Q6_K", 14]];
const ROUNDS = 11;

export async function benchKernelsGgml(): Promise<void> {
  const tail = join("@node-llama-cpp", "linux-x64", "bins", "linux-x64");
  const libDir = [join("node_modules", tail), join("node_modules", "node-llama-cpp", "node_modules", tail)].find((d) => existsSync(d));
  if (!libDir) throw new Error(`node-llama-cpp's prebuilt linux-x64 libraries not found (node_modules/${tail})`);
  const src = join("native", "src");
  const files = readdirSync(src).filter((f) => f.endsWith(".c") && !/^(addon|napi_args)/.test(f)).map((f) => join(src, f));
  const dir = join(tmpdir(), `moestream-lowbit-vs-ggml-${process.getuid?.() ?? 0}`);
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, "lowbit-vs-ggml");
  execFileSync("cc", ["-O3", "-std=gnu11", "-o", exe, join("bench", "lowbit-vs-ggml.c"), ...files, "-ldl", "-lpthread", "-lm"], { stdio: ["ignore", "ignore", "inherit"] });
  console.log(`native dot kernels vs ggml's vec_dot, 1 thread, paired and alternated, best of ${ROUNDS}; GB/s of weights (8 experts' gate rows, 2048 x 768 each)`);
  console.log("4 tok: one weight row against 4 activation rows (ours: the dot4 kernel; ggml: 4 vec_dots, as its mul_mat runs these types)");
  for (const [name, id] of TYPES) {
    process.stdout.write(execFileSync(exe, [libDir, String(id), "2048", "768", "8", String(ROUNDS)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).replace(/^\d+ /gm, `${name.padEnd(7)} `));
  }
}
