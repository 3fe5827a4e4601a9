// Progress bars on stderr for long work (load, gen); silent when stderr is not a terminal.
import cliProgress from "cli-progress";

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function progressBar(label: string, unit: "bytes" | "values" = "bytes"): Progress {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const scale = unit === "bytes" ? 1 / 2 ** 20 : 1 / 1e6;
  const suffix = unit === "bytes" ? "MiB" : "M";
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
