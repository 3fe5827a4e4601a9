// Kernel timing for a shared, noisy machine: best of several short windows, the quietest one being the one to compare.
const WINDOWS = 8;
const WINDOW_MS = 60;

/** Seconds per call of fn in the fastest window, after `warm` warm-up calls; i keeps counting across windows. */
export function timeIt(fn: (i: number) => void, warm: number): number {
  let i = 0;
  for (; i < warm; i++) fn(i);
  let best = Infinity;
  for (let w = 0; w < WINDOWS; w++) {
    let calls = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < WINDOW_MS) {
      fn(i++);
      calls++;
      t = performance.now();
    }
    best = Math.min(best, (t - t0) / 1000 / calls);
  }
  return best;
}
