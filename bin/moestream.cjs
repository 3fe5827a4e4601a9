#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through the prepare script).
// Expert reads go through libuv's thread pool (4 threads by default) and the disks measured here serve
// expert-sized reads best with 8-16 in flight. libuv sizes the pool at its first use, which loading an
// ES module already is, so this launcher is CommonJS and sets the size before importing anything.
process.env.UV_THREADPOOL_SIZE ??= "16";
// A command whose work still waits on something that can never come (a bug) would otherwise end with the event loop
// empty and exit 0 having printed nothing: say so and fail instead.
let finished = false;
import("../dist/cli/main.js").then(() => (finished = true));
process.on("beforeExit", () => {
  if (finished) return;
  finished = true;
  process.stderr.write("moestream: internal error: the command stopped before it finished (it waited on work that never ran); please report it with --verbose output\n");
  process.exitCode = 1;
});
