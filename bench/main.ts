// npm run bench [-- name...]: figures as ratios against llama.cpp measured in the same run.
import { machineLine } from "./machine.js";
import { benchScalar } from "./scalar.js";
import { benchKernels } from "./cpu-kernels.js";

const BENCHES: Record<string, () => Promise<void>> = {
  scalar: benchScalar,
  kernels: benchKernels,
  stream: async () => (await import("./stream.js")).benchStream(),
  server: async () => (await import("./server.js")).benchServer(),
  cpu: async () => (await import("./cpu.js")).benchCpu(),
};

const asked = process.argv.slice(2);
const names = asked.length ? asked : Object.keys(BENCHES);
console.log(machineLine());
for (const n of names) {
  const b = BENCHES[n];
  if (!b) {
    console.error(`unknown bench '${n}' (have: ${Object.keys(BENCHES).join(", ")})`);
    process.exit(2);
  }
  console.log(`\n== ${n}`);
  await b();
}
