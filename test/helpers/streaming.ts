// The standing invariant, checked per architecture: logits with streamed experts are identical to the resident
// path, for a packed dir and a plain GGUF, at every cache budget from one layer's active experts up to all experts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../../src/engine/load.js";
import { defaultEngineConfig } from "../../src/engine/config.js";
import { packModel } from "../../src/engine/pack.js";
import { ExpertStore, GGUFExpertReader, type ExpertReader } from "../../src/experts/store.js";
import { StreamingExperts } from "../../src/experts/streaming-source.js";
import type { ExpertSource, ExpertWeights } from "../../src/experts/source.js";
import { buildModel, expertLayout, runLogits } from "./experts.js";

/** Records the most distinct experts one acquire() asked for. */
class Widest implements ExpertSource {
  most = 0;
  constructor(private readonly inner: ExpertSource) {}
  acquire(layer: number, ids: readonly number[]): Promise<ExpertWeights[]> {
    this.most = Math.max(this.most, new Set(ids).size);
    return this.inner.acquire(layer, ids);
  }
  release(layer: number, ids: readonly number[]): void {
    this.inner.release(layer, ids);
  }
}

/** Streamed == resident for the model at `src` (scalar backend), packing into `dir`; tokens must be in its vocabulary. */
export async function checkStreamedEqualsResident(src: string, dir: string, tokens: readonly number[]): Promise<void> {
  // buildModel runs the scalar backend: the reference must too (bit-identical is the claim).
  const lm = await loadModel(src, defaultEngineConfig({ ctxSize: 64, backend: "scalar", expertIo: "resident" }));
  const resident = { model: lm.model, hp: lm.model.info, backend: lm.backend };
  const refSteps = await runLogits(resident, tokens, "steps");
  const refBatch = await runLogits(resident, tokens, "batch");
  await lm.close();
  const { nExpert, nExpertUsed } = resident.hp;

  const packed = join(dir, "packed");
  await packModel(src, packed); // as `pack` does: the architecture's expert layout, tensors it never reads left out
  const readers: [string, string, ExpertReader][] = [
    ["packed", join(packed, "dense.gguf"), await ExpertStore.open(packed, { verify: true })],
    ["gguf", src, await GGUFExpertReader.open(src, expertLayout)],
  ];
  const moeLayers = readers[0][2].layers.length; // dense lead layers have no experts
  const all = moeLayers * nExpert; // every expert of the model
  try {
    for (const [label, densePath, reader] of readers) {
      const slot = Math.max(...reader.layers.map((l) => reader.recordBytes(l)));
      const make = (slots: number, fill = true) => {
        let source!: StreamingExperts;
        const built = buildModel(densePath, (be) => (source = new StreamingExperts(reader, be, { budgetBytes: slots * slot + slot - 1, minExperts: nExpertUsed, fill })));
        return built.then((m) => ({ m, source }));
      };

      // Decode: one token per forward, so one layer's active experts are the top-k.
      for (const slots of [nExpertUsed, 2 * nExpertUsed, all]) {
        const { m, source } = await make(slots);
        assert.deepEqual(await runLogits(m, tokens, "steps"), refSteps, `${label}, ${slots} slots`);
        assert.equal(source.nSlots, slots);
        assert.equal(source.pinned(), 0);
        assert.equal(source.stats.bytesRead, source.stats.misses * slot);
        assert.equal(source.stats.hits + source.stats.misses, tokens.length * moeLayers * nExpertUsed);
        if (slots === all) {
          // Everything fits: the background fill reads what the forward did not ask for, each expert once.
          await source.whenFilled();
          assert.equal(source.stats.evictions, 0);
          assert.equal(reader.layers.reduce((n, l) => n + source.cached(l).length, 0), all, "all experts cached after the fill");
          assert.equal(source.stats.misses + source.stats.filled, all, "each expert read once");
        } else assert.ok(source.stats.evictions > 0, `${label}, ${slots} slots: expected evictions`);
      }

      // Prefill: the whole prompt at once needs every expert any of its tokens routes to, per layer.
      const probe = new Widest(new StreamingExperts(reader, resident.backend, { budgetBytes: nExpert * slot }));
      await runLogits(await buildModel(densePath, () => probe), tokens, "batch");
      const need = probe.most;
      assert.ok(need > nExpertUsed && need <= nExpert);
      // Fewer slots than the batch routes to: the model acquires its experts in groups, still each once.
      for (const slots of [nExpertUsed, need - 1, need, all]) {
        const { m, source } = await make(slots, false); // no background fill: hits would then count its reads
        assert.deepEqual(await runLogits(m, tokens, "batch"), refBatch, `${label}, prefill, ${slots} slots`);
        assert.equal(source.pinned(), 0);
        if (slots >= need) assert.equal(source.stats.hits, 0, "one read per routed expert per layer per batch");
      }
    }
  } finally {
    for (const [, , r] of readers) await r.close();
  }
}
