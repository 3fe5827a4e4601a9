// StopScanner: however the text is split into pieces, the output is the text before the first stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { StopScanner } from "../../src/server/stop.js";

function scan(pieces: string[], stops: string[]): { text: string; stopped: boolean } {
  const s = new StopScanner(stops);
  let text = "";
  for (const p of pieces) {
    const r = s.push(p);
    text += r.text;
    if (r.stopped) return { text, stopped: true };
  }
  const f = s.flush();
  return { text: text + f.text, stopped: f.stopped };
}

test("stop text is cut at its first occurrence across any split; no stop means everything", () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: fc.constantFrom("a", "b", "c"), maxLength: 4 }), { maxLength: 12 }), fc.array(fc.string({ unit: fc.constantFrom("a", "b", "c"), minLength: 1, maxLength: 3 }), { maxLength: 3 }), (pieces, stops) => {
      const whole = pieces.join("");
      const at = Math.min(...stops.map((s) => whole.indexOf(s)).filter((i) => i >= 0));
      const r = scan(pieces, stops);
      if (Number.isFinite(at)) assert.deepEqual(r, { text: whole.slice(0, at), stopped: true });
      else assert.deepEqual(r, { text: whole, stopped: false });
    }),
  );
  assert.deepEqual(scan(["Hel", "lo wo", "rld"], ["o w"]), { text: "Hell", stopped: true });
  assert.deepEqual(scan(["<|", "x"], ["<|end"]), { text: "<|x", stopped: false });
  // A complete "a" waits while "cac", which starts earlier, is undecided (fast-check found this one).
  assert.deepEqual(scan(["ca", "c"], ["a", "cac"]), { text: "", stopped: true });
  assert.deepEqual(scan(["ca", "b"], ["a", "cac"]), { text: "c", stopped: true });
  assert.deepEqual(scan(["ca"], ["a", "cac"]), { text: "c", stopped: true }); // generation ended: "a" it is
});
