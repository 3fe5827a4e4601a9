// Starts the real server (bin/moestream.cjs over dist/) on a free port and stops it after the file.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import OpenAI from "openai";

export const BIN = join(import.meta.dirname, "..", "..", "bin", "moestream.cjs");

export interface RunningServer {
  proc: ChildProcess;
  url: string;
  model: string;
  client: OpenAI;
  stderr: () => string;
  stop(): Promise<number | null>;
}

export async function startServer(model: string, ...args: string[]): Promise<RunningServer> {
  const proc = spawn(process.execPath, [BIN, "serve", "-m", model, "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, MOESTREAM_TEMP: undefined } });
  let out = "";
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 60_000);
    proc.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
  const id = /\(model '([^']+)'\)/.exec(out)![1];
  return {
    proc, url, model: id,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 }),
    stderr: () => err,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve(proc.exitCode);
        proc.once("exit", (code) => resolve(code));
        proc.kill("SIGTERM");
      }),
  };
}

/** POST raw bytes; returns status, headers and text. */
export async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = { "content-type": "application/json" }) {
  const r = await fetch(url, { method: "POST", body, headers });
  return { status: r.status, headers: r.headers, text: await r.text() };
}
