// npm run bench [-- name... [--only=TEXT]]: figures as ratios against llama.cpp measured in the same run.
// --only keeps the models whose file name contains TEXT (cpu bench), e.g. --only=a3b-q4_k; in the kernels bench, the
// types whose name contains it (--only=MXFP4, or several: --only=MXFP4,IQ4_NL).
// --routing=real-like|realistic|uniform: the stream bench's routing (default real-like). stream-big: the
// Qwen3.5-397B- and DeepSeek-V3-shaped rows (--only=q35 / --only=dsv3 picks one). stream: --only=STEP,... runs those
// steps (disk, moe-d2, moe-d1, moe-d3, moe-off, llama, llama-norepack, moe-iq2xxs, oss120, free-stream, ...).
// gpu: see bench/gpu.ts (--model=PATH, --json=PATH, --quick). Built (npm run build:bench), it runs with plain node:
// node dist-bench/bench/main.js gpu ...; benches load lazily, so one needs only its own packages.
import { machineLine } from "./machine.js";

const BENCHES: Record<string, (only?: string) => Promise<void>> = {
  scalar: async () => (await import("./scalar.js")).benchScalar(),
  kernels: async (only) => (await import("./cpu-kernels.js")).benchKernels(only),
  stream: async (only) => {
    const { benchStream, streamRouting } = await import("./stream.js");
    await benchStream(only?.split(","), streamRouting(process.argv));
  },
  "stream-big": async (only) => (await import("./stream-big.js")).benchStreamBig(only),
  server: async () => (await import("./server.js")).benchServer(),
  cpu: async (only) => (await import("./cpu.js")).benchCpu(only),
  doctor: async (only) => (await import("./doctor.js")).benchDoctor(only),
  "kernels-ggml": async () => (await import("./kernels-ggml.js")).benchKernelsGgml(),
  replay: async () => (await import("./replay.js")).benchReplay(),
  tier: async () => (await import("./replay-split.js")).benchReplayTier(),
  verify: async () => (await import("./verify.js")).benchVerify(),
  ops: async (only) => (await import("./op-profile.js")).benchOps(only),
  gpu: async (only) => (await import("./gpu.js")).benchGpu(only),
};

const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length);
const asked = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const names = asked.length ? asked : Object.keys(BENCHES).filter((n) => n !== "gpu"); // gpu needs an adapter: asked by name
console.log(machineLine());
for (const n of names) {
  const b = BENCHES[n];
  if (!b) {
    console.error(`unknown bench '${n}' (have: ${Object.keys(BENCHES).join(", ")})`);
    process.exit(2);
  }
  console.log(`\n== ${n}`);
  await b(only);
}
