// Each architecture's metadata(hp) is the inverse of its readHParams: the generator writes what the loader reads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { architecture } from "../../src/models/registry.js";
import { PRESETS } from "../../src/gen/presets.js";
import { metadata, readHParams } from "../../src/models/qwen3moe.js";
import * as qwen3next from "../../src/models/qwen3next.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";

for (const [name, p] of Object.entries(PRESETS)) {
  test(`${p.arch} readHParams(metadata(hp)) round-trips preset ${name}`, () => {
    const arch = architecture(p.arch);
    assert.ok(arch.metadata, `${p.arch} has metadata(hp)`);
    assert.deepEqual(arch.readHParams(arch.metadata(p.hp), p.hp.nVocab), p.hp);
  });
}

/** Every key `read` looks up in md. */
function keysRead(md: GGUFMetadata, read: (md: GGUFMetadata) => unknown): Set<string> {
  const keys = new Set<string>();
  const spy = new Proxy(md, {
    get(target, prop, recv) {
      if (prop === "get" || prop === "has") return (k: string) => (keys.add(k), target[prop](k));
      const v = Reflect.get(target, prop, recv);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  read(spy);
  return keys;
}

test("qwen3moe metadata(hp) writes exactly the keys readHParams reads", () => {
  const hp = PRESETS.tiny.hp;
  const md = metadata(hp);
  assert.deepEqual([...md.keys()].sort(), [...keysRead(md, (m) => readHParams(m, hp.nVocab))].sort());
  assert.ok([...md.keys()].every((k) => k.startsWith("qwen3moe.")));
});

for (const name of ["qwen3next-tiny", "qwen35moe-tiny"] as const) {
  test(`${name}: metadata(hp) writes exactly the keys readHParams reads`, () => {
    const hp = PRESETS[name].hp;
    const md = qwen3next.metadata(hp);
    assert.deepEqual([...md.keys()].sort(), [...keysRead(md, (m) => qwen3next.readHParams(hp.arch, m, hp.nVocab))].sort());
    assert.ok([...md.keys()].every((k) => k.startsWith(`${hp.arch}.`)));
  });
}
