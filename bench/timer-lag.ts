// A 10 ms timer's lateness while some work runs: how long the event loop was held (bench and tests).

/** Each tick's lateness beyond 10 ms while `work` runs (and the wait since the last tick), sorted ascending. */
export async function timerLags(work: () => Promise<void>): Promise<number[]> {
  const late: number[] = [];
  let last = performance.now();
  const iv = setInterval(() => {
    const now = performance.now();
    late.push(now - last - 10);
    last = now;
  }, 10);
  try {
    await work();
  } finally {
    clearInterval(iv);
  }
  late.push(performance.now() - last - 10);
  return late.sort((a, b) => a - b);
}

/** The p-th fraction of sorted values. */
export const quantile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))];
