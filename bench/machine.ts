// One line describing the machine a benchmark ran on.
import { cpus, totalmem } from "node:os";

export function machineLine(): string {
  const c = cpus();
  return `machine: ${c[0]?.model ?? "unknown cpu"} x${c.length} threads, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, node ${process.version}, ${process.platform}-${process.arch}`;
}
