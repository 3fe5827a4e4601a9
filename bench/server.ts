// Server bench: N concurrent streaming clients against `moestream serve` on loopback for a fixed time
// (MOESTREAM_BENCH_SECONDS, default 60; MOESTREAM_BENCH_CLIENTS, default 8). Every stream is checked
// for OpenAI's shape and the closing `data: [DONE]`; prints failures, TTFT p50/p99 and tokens/s.
// Run: `npm run bench -- server`.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { benchModel } from "./models.js";

const BIN = join(import.meta.dirname, "..", "bin", "moestream.cjs");

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN;
}

/** One streaming request; throws unless the stream is well formed. */
async function oneStream(url: string, model: string, maxTokens: number): Promise<{ ttftMs: number; tokens: number }> {
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "Tell me a story." }], max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } }),
  });
  if (r.status !== 200) throw new Error(`status ${r.status}: ${await r.text()}`);
  const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  let ttft = NaN;
  let done = false;
  let finish: string | null = null;
  let usage: { completion_tokens: number } | undefined;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!ev.startsWith("data: ")) throw new Error(`bad event: ${ev}`);
      if (done) throw new Error("event after [DONE]");
      if (ev === "data: [DONE]") {
        done = true;
        continue;
      }
      const j = JSON.parse(ev.slice(6));
      if (j.object !== "chat.completion.chunk") throw new Error(`bad chunk: ${ev}`);
      if (j.usage) usage = j.usage;
      const c = j.choices[0];
      if (c?.delta?.content && Number.isNaN(ttft)) ttft = performance.now() - t0;
      if (c?.finish_reason) finish = c.finish_reason;
    }
  }
  if (!done || buf.trim() || !finish || !usage) throw new Error(`incomplete stream (done ${done}, finish ${finish}, usage ${!!usage})`);
  return { ttftMs: Number.isNaN(ttft) ? performance.now() - t0 : ttft, tokens: usage.completion_tokens };
}

export async function benchServer(): Promise<void> {
  const seconds = Number(process.env.MOESTREAM_BENCH_SECONDS ?? 60);
  const clients = Number(process.env.MOESTREAM_BENCH_CLIENTS ?? 8);
  const model = await benchModel({ preset: "tiny", type: "Q8_0", seed: 3 }, "server-tiny-q8.gguf");
  const proc = spawn(process.execPath, [BIN, "serve", "-m", model, "--port", "0", "--ctx-size", "512"], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.on("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  const id = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data[0].id;
  const ttfts: number[] = [];
  let tokens = 0;
  let failed = 0;
  const errors = new Set<string>();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) {
      try {
        const r = await oneStream(url, id, 32);
        ttfts.push(r.ttftMs);
        tokens += r.tokens;
      } catch (e) {
        failed++;
        errors.add(String(e));
      }
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  proc.kill("SIGTERM");
  ttfts.sort((a, b) => a - b);
  console.log(`${clients} streaming clients, ${wall.toFixed(1)} s: ${ttfts.length} requests ok, ${failed} failed`);
  console.log(`time to first token: p50 ${pct(ttfts, 0.5).toFixed(0)} ms, p99 ${pct(ttfts, 0.99).toFixed(0)} ms (queued behind the others: one generation at a time)`);
  console.log(`aggregate: ${(tokens / wall).toFixed(1)} tokens/s`);
  for (const e of errors) console.log(`  error: ${e}`);
  if (failed) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await benchServer();
