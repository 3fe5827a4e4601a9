// Whether a process id belongs to a running process: leftovers (temp files, temp dirs) of dead ones may go.

export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, someone else's
  }
}
