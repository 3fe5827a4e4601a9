// yieldToEventLoop (src/util/yield.ts), which a forward pass awaits between layers on backends that only record
// work: what was queued on the event loop before the call (an immediate, I/O) runs before it resolves; a
// microtask-only await would not let it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { yieldToEventLoop } from "../../src/util/yield.js";

test("yieldToEventLoop lets the event loop turn: an immediate queued before it runs first, a microtask await does not", async () => {
  let ran = false;
  setImmediate(() => (ran = true));
  await Promise.resolve();
  assert.equal(ran, false, "a microtask does not reach the event loop");
  await yieldToEventLoop();
  assert.equal(ran, true);
});
