// Preloaded (node --require) into a CLI process by the cgroup test: reports the process's peak resident
// set (getrusage maxrss, as /proc/PID/status VmHWM) on stderr as it exits, so the parent can compare it
// with the cgroup's limit after the process is gone.
process.on("exit", () => process.stderr.write(`peak-rss-bytes ${process.resourceUsage().maxRSS * 1024}\n`));
