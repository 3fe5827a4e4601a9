#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through the prepare script).
// Expert reads go through libuv's thread pool (4 threads by default) and the disks measured here serve
// expert-sized reads best with 8-16 in flight. libuv sizes the pool at its first use, which loading an
// ES module already is, so this launcher is CommonJS and sets the size before importing anything.
process.env.UV_THREADPOOL_SIZE ??= "16";
import("../dist/cli/main.js");
