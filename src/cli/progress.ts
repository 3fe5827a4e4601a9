// Progress bars on stderr for long work (load, gen); silent when stderr is not a terminal.
import cliProgress from "cli-progress";

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function progressBar(label: string, unit: "bytes" | "values" | "tokens" = "bytes"): Progress {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const scale = unit === "bytes" ? 1 / 2 ** 20 : unit === "values" ? 1 / 1e6 : 1;
  const suffix = unit === "bytes" ? "MiB" : unit === "values" ? "M" : "tokens";
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {percentage}% {value}/{total} ${suffix} {eta_formatted}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(Math.ceil(total * scale), 0);
        started = true;
      }
      bar.update(Math.floor(done * scale));
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** A bar for a prompt long enough to take more than one prefill batch (undefined for short ones). */
export function prefillBar(promptTokens: number, batch: number): { onPrefill?: (done: number, total: number) => void; stop(): void } {
  if (promptTokens <= batch) return { stop() {} };
  const bar = progressBar("prompt", "tokens");
  let open = true;
  return { onPrefill: (d, t) => bar.update(d, t), stop: () => open && ((open = false), bar.stop()) };
}
