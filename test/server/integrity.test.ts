// A corrupt expert record under `serve` (streamed, verification on by default): the request that reads it fails
// with a 500 naming only the kind (the path stays in the server's log), streamed or not; the server keeps
// serving, and once the file is repaired the same request succeeds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/engine/model.js";
import { packModel } from "../../src/engine/pack.js";
import { RECORDS_OFFSET } from "../../src/experts/pack-format.js";
import { ExpertStore } from "../../src/experts/store.js";
import { testModel } from "../helpers/models.js";
import { post, startServer } from "./server.js";

const dir = mkdtempSync(join(tmpdir(), "moestream-srv-integrity-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test("a corrupt record fails its request with a 500 (kind only), not the server; after a repair the request succeeds", async () => {
  const pack = join(dir, "a");
  await packModel(await testModel({ type: "Q8_0", seed: 3 }), pack);
  const store = await ExpertStore.open(pack);
  const R = store.recordBytes(1);
  const nExpert = store.expertCount(1);
  await store.close();
  const file = join(pack, "experts", "layer_001.bin");
  const good = readFileSync(file);
  const bad = new Uint8Array(good);
  for (let e = 0; e < nExpert; e++) bad[RECORDS_OFFSET + e * R + 1] ^= 0x04; // every expert's first block scale: any token meets one
  writeFileSync(file, bad);
  // A cache of 12 records (of 64): experts are read as tokens need them, each read checked.
  const srv = await startServer(pack, "--ctx-size", "64", "--expert-io", "stream", "--expert-cache", String(12 * R));
  try {
    const body = JSON.stringify({ model: srv.model, messages: [{ role: "user", content: "Hi" }], max_tokens: 4, temperature: 0 });
    const r = await post(`${srv.url}/v1/chat/completions`, body);
    assert.equal(r.status, 500, r.text);
    const err = JSON.parse(r.text).error;
    assert.equal(err.type, "server_error");
    assert.match(err.message, /checksum_mismatch/);
    assert.ok(!err.message.includes(dir), `no path to the client: ${err.message}`);
    // Streamed: headers are sent before the forward runs, so the error comes as an event, then [DONE].
    const s = await post(`${srv.url}/v1/chat/completions`, JSON.stringify({ ...JSON.parse(body), stream: true }));
    assert.equal(s.status, 200);
    const events = s.text.split("\n\n").filter(Boolean);
    assert.equal(events.at(-1), "data: [DONE]");
    const errEvent = JSON.parse(events.at(-2)!.slice("data: ".length));
    assert.match(errEvent.error.message, /checksum_mismatch/);
    assert.ok(!s.text.includes(dir));
    // The log keeps the detail: file, layer, expert, offset.
    assert.match(srv.stderr(), new RegExp(`${file} at byte offset \\d+: layer 1, expert \\d+: record crc32c`));

    const health = await fetch(`${srv.url}/health`);
    assert.equal(health.status, 200);
    writeFileSync(file, good);
    const ok = await post(`${srv.url}/v1/chat/completions`, body);
    assert.equal(ok.status, 200, ok.text);
    const j = JSON.parse(ok.text);
    assert.equal(j.usage.completion_tokens, 4);
    assert.equal(j.choices[0].finish_reason, "length");
    // No state of the failed requests is left behind: the reply is the intact model's.
    const m = await loadModel(pack, { ctxSize: 64 });
    try {
      let text = "";
      for await (const step of m.chat([{ role: "user", content: "Hi" }], { maxTokens: 4, sampling: { temperature: 0 } })) text += step.text;
      assert.equal(j.choices[0].message.content, text);
    } finally {
      await m.close();
    }
  } finally {
    assert.equal(await srv.stop(), 0, srv.stderr());
  }
});
