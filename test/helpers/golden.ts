// Comparing our logits with llama.cpp's at one position: relative RMSE within a tolerance, and the same argmax
// wherever llama.cpp's top-2 margin clearly exceeds the error measured there.
import assert from "node:assert/strict";
import { nmse } from "./numeric.js";

export function top2(a: Float32Array): { id: number; margin: number } {
  let i1 = 0, i2 = 1;
  if (a[i2] > a[i1]) [i1, i2] = [i2, i1];
  for (let i = 2; i < a.length; i++) {
    if (a[i] > a[i1]) {
      i2 = i1;
      i1 = i;
    } else if (a[i] > a[i2]) i2 = i;
  }
  return { id: i1, margin: a[i1] - a[i2] };
}

export const relRmse = (ours: Float32Array, theirs: Float32Array): number => Math.sqrt(nmse(ours, theirs));

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
