// What the GPU driver keys its clock on, for a Vulkan (Dawn) workload: load patterns of known duty cycle, each a few
// seconds, with nvidia-smi sampling the SM clock and utilisation every 100 ms in the same process's view. Run from
// the built app's root (dist/ there) on the device: `node clock-probe.mjs [cuda-hold]`; cuda-hold repeats two
// patterns while another process holds a CUDA context on the GPU, through the native addon's holdCudaContexts (as
// --gpu-hold-clock does; s20a ran bench/gpu/cuda-hold.c, since folded into it:
// the context made by the same cuCtxCreate_v2, then popped from the thread).
// Prints one line a phase: the SM clock's median and range, utilisation, and the spin kernel's time against its
// time at the risen clock (so the clock the kernels really ran at).
import { spawn } from "node:child_process";
import { pathToFileURL } from "node:url";

const { openGpuDevice } = await import(pathToFileURL(`${process.cwd()}/dist/backends/webgpu/device.js`).href);
const g = await openGpuDevice();
if (!g.device) throw new Error(g.reason);
const dev = g.device;
const WG = /llvmpipe|lavapipe/i.test(g.adapterName) ? 2 : 132 * 8;  // a software device: a smoke run
const STORAGE = 0x80, UNIFORM = 0x40, COPY_DST = 0x08;  // GPUBufferUsage (not a global under Node)
const code = `
@group(0) @binding(0) var<storage, read_write> o: array<f32>;
struct P { iters: u32 }
@group(0) @binding(1) var<uniform> p: P;
@compute @workgroup_size(128) fn main(@builtin(global_invocation_id) id: vec3u) {
  var x = f32(id.x) * 1e-6; var y = 1.0;
  for (var i = 0u; i < p.iters; i++) { y = fma(y, 0.999999, x); x = fma(x, 1.000001, y * 1e-7); }
  o[id.x] = y + x;
}`;
const pipe = dev.createComputePipeline({ layout: "auto", compute: { module: dev.createShaderModule({ code }), entryPoint: "main" } });
const out = dev.createBuffer({ size: WG * 128 * 4, usage: STORAGE });
const groups = new Map();
function group(iters) {
  let b = groups.get(iters);
  if (!b) {
    const u = dev.createBuffer({ size: 16, usage: UNIFORM | COPY_DST });
    dev.queue.writeBuffer(u, 0, new Uint32Array([iters, 0, 0, 0]));
    b = dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }, { binding: 1, resource: { buffer: u } }] });
    groups.set(iters, b);
  }
  return b;
}
let groupsNow = WG;  // workgroups a dispatch (one: the GPU "busy" by nvidia-smi's count, one SM at work)
function submit(iters, n = 1) {
  const enc = dev.createCommandEncoder();
  const p = enc.beginComputePass();
  p.setPipeline(pipe);
  p.setBindGroup(0, group(iters));
  for (let i = 0; i < n; i++) p.dispatchWorkgroups(groupsNow);
  p.end();
  dev.queue.submit([enc.finish()]);
}
const now = () => performance.now();
const spinUntil = (t) => { while (now() < t); };
async function run(iters) {
  const t = now();
  submit(iters);
  await dev.queue.onSubmittedWorkDone();
  return now() - t;
}

// nvidia-smi in the background; each sample stamped with this process's clock.
const samples = [];
const smi = spawn("nvidia-smi", ["--query-gpu=clocks.sm,utilization.gpu,power.draw", "--format=csv,noheader,nounits", "-lms", "100"]);
let rest = "";
smi.stdout.on("data", (d) => {
  const lines = (rest + d).split("\n");
  rest = lines.pop();
  for (const l of lines) {
    const [mhz, util, w] = l.split(",").map(Number);
    if (Number.isFinite(mhz)) samples.push({ t: now(), mhz, util, w });
  }
});
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.floor(s.length / 2)] : NaN; };
let usPerIter = 0;  // the spin kernel's time an iteration at the risen clock (calibrated)
async function phase(name, seconds, body) {
  const t0 = now();
  const times = [];
  await body(t0 + seconds * 1000, times);
  const t1 = now();
  const s = samples.filter((x) => x.t > t0 + 300 && x.t <= t1);  // the first 300 ms: the clock still moving
  const line = `${name.padEnd(34)} sm ${med(s.map((x) => x.mhz))} MHz (${Math.min(...s.map((x) => x.mhz))}-${Math.max(...s.map((x) => x.mhz))}), util ${med(s.map((x) => x.util))}%, ${med(s.map((x) => x.w)).toFixed(0)} W`;
  console.log(times.length ? `${line}; kernel ${med(times).toFixed(3)} ms (${times.length})` : line);
}
const idle = (end) => new Promise((r) => setTimeout(r, end - now()));
// One kernel of `ms` (at the risen clock) every `period` ms, awaited, the rest of the period spent idle (spinning
// the JS thread, as our decode's host part does).
const pulse = (ms, period) => async (end, times) => {
  const iters = Math.max(1, Math.round((ms * 1000) / usPerIter));
  for (let t = now(); t < end; t += period) {
    times.push(await run(iters));
    spinUntil(t + period);
  }
};
// Back to back: `n` kernels of `ms` in each submission, the next submitted when it is done.
const busy = (ms, n = 1) => async (end, times) => {
  const iters = Math.max(1, Math.round((ms * 1000) / usPerIter));
  while (now() < end) {
    const t = now();
    submit(iters, n);
    await dev.queue.onSubmittedWorkDone();
    times.push((now() - t) / n);
  }
};
// Our split decode's shape: 48 layers a token, each a short chain awaited, then ~0.35 ms of host work.
const ours = async (end, times) => {
  const iters = Math.max(1, Math.round(40 / usPerIter));
  while (now() < end) {
    for (let l = 0; l < 48; l++) {
      times.push(await run(iters));
      spinUntil(now() + 0.35);
    }
  }
};

await new Promise((r) => setTimeout(r, 1500));
await phase("idle", 2, idle);
// Calibrate at a risen clock: back to back for 1.5 s, then time a long kernel.
usPerIter = 0.01;
await phase("busy 100% (calibration)", 2, busy(2));
let t = 1e9;
for (let i = 0; i < 5; i++) t = Math.min(t, await run(20000));
usPerIter = (t * 1000) / 20000;
console.log(`calibrated: ${usPerIter.toFixed(4)} µs an iteration (a 1 ms kernel = ${Math.round(1000 / usPerIter)} iterations)`);
await phase("idle after", 3, idle);
await phase("ours-like (48 x 40 us + 0.35 ms host)", 3, ours);
await phase("pulse 0.1 ms / 1 ms (10%)", 3, pulse(0.1, 1));
await phase("pulse 0.5 ms / 2 ms (25%)", 3, pulse(0.5, 2));
await phase("pulse 1 ms / 2 ms (50%)", 3, pulse(1, 2));
await phase("pulse 1.5 ms / 2 ms (75%)", 3, pulse(1.5, 2));
await phase("pulse 5 ms / 10 ms (50%)", 3, pulse(5, 10));
await phase("pulse 20 ms / 100 ms (20%)", 3, pulse(20, 100));
await phase("busy, 20 us kernels awaited each", 3, busy(0.02));
await phase("busy 100% again", 3, busy(2));
await phase("pulse 0.5 ms / 2 ms (25%) after busy", 3, pulse(0.5, 2));
groupsNow = 1;
await phase("pulse 50%, one workgroup", 3, pulse(1, 2));
await phase("busy 100%, one workgroup", 3, busy(2));
groupsNow = WG;
const hold = process.argv[2];
if (hold) {
  const addon = pathToFileURL(`${process.cwd()}/dist/backends/cpu/native-addon.js`).href;
  const holder = `import { loadNativeAddon } from ${JSON.stringify(addon)}; console.error("cuda-hold:", JSON.stringify(loadNativeAddon().holdCudaContexts())); setTimeout(() => {}, 60000);`;
  const h = spawn(process.execPath, ["--input-type=module", "-e", holder], { stdio: ["ignore", "inherit", "inherit"] });
  await phase("idle, a CUDA context held", 3, idle);
  await phase("ours-like, a CUDA context held", 3, ours);
  await phase("pulse 10%, a CUDA context held", 3, pulse(0.1, 1));
  h.kill();
  await phase("ours-like, the CUDA context gone", 3, ours);
}
smi.kill();
process.exit(0);
