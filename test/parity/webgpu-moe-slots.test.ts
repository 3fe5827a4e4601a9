// The slot-indexed MoE op and the upload ring of the GPU expert tier (lavapipe in CI): experts written into
// fixed-size slots, in another order than their ids and over two arenas (a binding of two slots), run through
// moeFfn's slot path; it equals the same op over separately uploaded weights (gate, up and down each in a buffer
// of its own) bit for bit, and the scalar reference within TOL. A slot rewritten after an op that reads it was
// recorded (the ring's copy is ordered in the command stream, nothing submitted in between) leaves that op its old
// expert and gives later ops the new one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ScalarBackend } from "../../src/backends/cpu/scalar.js";
import type { Backend, ExpertRows, HostWeight } from "../../src/backends/backend.js";
import { tensorBytes } from "../../src/backends/backend.js";
import { GpuExpertSlots } from "../../src/backends/webgpu/expert-tier.js";
import { MATMUL_FORMATS, randomValues, bufOf, randomWeight, perExpertMoe } from "../helpers/parity.js";
import { nmse, sameBits } from "../helpers/numeric.js";
import { gpuBackend } from "../helpers/webgpu.js";

const TOL = 1e-10;
const T = 5;

test("webgpu slot-indexed moeFfn: experts in slots over two arenas equal the op over separately uploaded weights bit for bit and the scalar reference; a slot rewritten after a recorded read keeps that read's expert", async () => {
  const scalar = new ScalarBackend();
  // Q8_0: repacked on the device at each bind (lavapipe compiles k-quant kernels slowly; the model tests run Q4_K's slot path).
  for (const name of ["Q8_0"]) {
    const fmt = MATMUL_FORMATS.find((f) => f.name === name)!;
    const [D, F] = fmt.blockSize === 256 ? [256, 256] : [64, 96];
    const parts = (e: number): HostWeight[] => [randomWeight(fmt, D, F, `sg${e}${name}`), randomWeight(fmt, D, F, `su${e}${name}`), randomWeight(fmt, F, D, `sd${e}${name}`)];
    const experts = [0, 1, 2, 3].map(parts);
    const sizes = experts[0].map((w) => tensorBytes(w));
    const slotBytes = sizes.reduce((a, b) => a + b, 0);
    // Two slots per binding: three slots make two arenas, so one MoE call spans two buffers.
    const be = await gpuBackend({ maxBinding: 2 * slotBytes });
    // Which kernels run: shader modules are labelled with their pipeline key.
    const kernels: string[] = [];
    const createShaderModule = be.device.createShaderModule.bind(be.device);
    be.device.createShaderModule = (d) => (kernels.push(d.label ?? ""), createShaderModule(d));
    const slots = await GpuExpertSlots.allocate(be, slotBytes, 3, { min: 3, halve: false, ringSlots: 1, what: "test" });
    assert.equal(slots.slotsPerArena, 2);
    const put = (e: number, slot: number) => {
      const rec = new Uint8Array(slotBytes);
      let at = 0;
      experts[e].forEach((w, i) => (rec.set(w.bytes.subarray(0, sizes[i]), at), (at += sizes[i])));
      slots.write(slot, rec);
      let off = 0;
      const [gate, up, down] = experts[e].map((w, i) => slots.view(slot, { name: w.name, type: w.type, shape: w.shape }, (off += i ? sizes[i - 1] : 0)));
      return { gate, up, down };
    };
    const routing = [
      { rows: [0, 2, 4], scales: [0.5, 0.25, 1] },
      { rows: [1, 2], scales: [0.75, 0.125] },
      { rows: [3, 4, 0], scales: [0.3, -0.6, 0.2] },
    ];
    const rowsOf = (ws: { gate: unknown; up: unknown; down: unknown }[], ids: number[]): ExpertRows[] =>
      ids.map((_, j) => ({ ...(ws[j] as Pick<ExpertRows, "gate" | "up" | "down">), rows: Int32Array.from(routing[j].rows), scales: Float32Array.from(routing[j].scales) }));
    const reference = async (b: Backend, ids: number[]) => {
      const out = bufOf(b, new Float32Array(T * D));
      // Each weight in a buffer of its own: the same MoE op on this device, or the per-expert path on the scalar reference.
      const set = rowsOf(ids.map((e) => { const [g, u, d] = experts[e].map((w) => b.upload(w)); return { gate: g, up: u, down: d }; }), ids);
      if (b === be) {
        b.zero(out);
        b.moeFfn!(out, bufOf(b, h), set);
      } else perExpertMoe(b, out, bufOf(b, h), set, D, F, false);
      return b.read(out);
    };
    const h = randomValues(T * D, `slot-h-${name}`, 2);
    // Experts 0, 1, 2 in slots 2, 0, 1 (slot 2 is the second arena); expert 3 then replaces expert 0 in slot 2.
    const first = [put(0, 2), put(1, 0), put(2, 1)];
    const hb = bufOf(be, h), out1 = be.alloc(T * D), out2 = be.alloc(T * D);
    be.zero(out1);
    be.moeFfn(out1, hb, rowsOf(first, [0, 1, 2]));
    const second = [put(3, 2), first[1], first[2]];
    be.zero(out2);
    be.moeFfn(out2, hb, rowsOf(second, [3, 1, 2]));
    const [got1, got2] = await be.readMany([out1, out2]);
    assert.ok(kernels.some((k) => k.startsWith("moe_gate_up/")) && !kernels.some((k) => k.startsWith("matmul/") || k.startsWith("matvec/")), `the slot path ran: ${kernels.join(", ")}`);
    // The MoE op on this device with each weight in a buffer of its own, and the scalar reference.
    const each1 = await reference(be, [0, 1, 2]), each2 = await reference(be, [3, 1, 2]);
    assert.ok(sameBits(got1, each1), `${name}: slot path differs from the same op over weights in buffers of their own`);
    assert.ok(sameBits(got2, each2), `${name}: after the slot was rewritten, the slot path differs from the same op over weights in buffers of their own`);
    const ref1 = await reference(scalar, [0, 1, 2]), ref2 = await reference(scalar, [3, 1, 2]);
    for (const [g, r] of [[got1, ref1], [got2, ref2]]) assert.ok(nmse(g, r) < TOL, `${name}: nmse ${nmse(g, r).toExponential(2)}`);
    assert.ok(!sameBits(got1, got2), "expert 3 is not expert 0");
    assert.deepEqual({ ...slots.uploadStats, ms: 0 }, { uploads: 4, bytes: 4 * slotBytes, ms: 0 });
    slots.free();
    be.device.createShaderModule = createShaderModule;
  }
});
