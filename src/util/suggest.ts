// "did you mean ...?" for misspelt option names: the closest known name by edit distance.

/** Levenshtein distance, case-insensitive (a wrong case is one typo, not many). */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/** The known name nearest `name`, if it is close enough to be a typo (at most a third of its letters off). */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(1, Math.floor(Math.max(name.length, 3) / 3)) ? best : undefined;
}

/** " (did you mean X?)" or "", for an error message. */
export function didYouMean(name: string, known: readonly string[]): string {
  const c = closest(name, known);
  return c === undefined ? "" : ` (did you mean ${c}?)`;
}
