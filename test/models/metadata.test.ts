// Each architecture's metadata(hp) is the inverse of its readHParams: the generator writes what the loader reads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { architecture } from "../../src/models/registry.js";
import { PRESETS } from "../../src/gen/presets.js";
import { metadata, readHParams } from "../../src/models/qwen3moe.js";

for (const [name, p] of Object.entries(PRESETS)) {
  test(`${p.arch} readHParams(metadata(hp)) round-trips preset ${name}`, () => {
    const arch = architecture(p.arch);
    assert.ok(arch.metadata, `${p.arch} has metadata(hp)`);
    assert.deepEqual(arch.readHParams(arch.metadata(p.hp), p.hp.nVocab), p.hp);
  });
}

test("qwen3moe metadata(hp) writes exactly the keys readHParams reads", () => {
  const hp = PRESETS.tiny.hp;
  const md = metadata(hp);
  const read = new Set<string>();
  // Record every key readHParams looks up.
  const spy = new Proxy(md, {
    get(target, prop, recv) {
      if (prop === "get" || prop === "has") return (k: string) => (read.add(k), target[prop](k));
      const v = Reflect.get(target, prop, recv);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  readHParams(spy, hp.nVocab);
  assert.deepEqual([...md.keys()].sort(), [...read].sort());
  assert.ok([...md.keys()].every((k) => k.startsWith("qwen3moe.")));
});
