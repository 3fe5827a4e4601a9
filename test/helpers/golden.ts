// Comparing our logits with llama.cpp's at one position: relative RMSE within a tolerance, and the same argmax
// wherever llama.cpp's top-2 margin clearly exceeds the error measured there.
import assert from "node:assert/strict";
import { relRmse, top2 } from "./llama-parity.js";

export { relRmse, top2 };

/** Asserts err <= tol and, where llama.cpp's margin exceeds 4x the absolute error, the same argmax; returns err and whether argmax was compared. */
export function checkLogitsRow(ours: Float32Array, theirs: Float32Array, tol: number, where: string): { err: number; compared: boolean } {
  const err = relRmse(ours, theirs);
  assert.ok(err <= tol, `${where}: relative RMSE ${err.toExponential(3)} > ${tol}`);
  const t = top2(theirs);
  const absErr = err * Math.sqrt(theirs.reduce((a, x) => a + x * x, 0) / theirs.length);
  const compared = t.margin > 4 * absErr;
  if (compared) assert.equal(top2(ours).id, t.id, `${where}: argmax differs with llama.cpp margin ${t.margin.toFixed(4)}`);
  return { err, compared };
}
