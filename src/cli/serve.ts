// moestream serve: the OpenAI-compatible HTTP server over one loaded model.
import type { Command } from "commander";
import { ENGINE_OPTIONS, SAMPLING_OPTIONS } from "../engine/config.js";
import {
  createApiServer, DEFAULT_BODY_LIMIT, DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_QUEUE, DEFAULT_REQUEST_TIMEOUT_MS,
} from "../server/http.js";
import { OpenAIApi, REASONING_FORMATS, type ReasoningFormat } from "../server/openai.js";
import { UsageError } from "../util/errors.js";
import { addOptions, engineConfig, intOption, loadWithProgress, samplingOptions } from "./common.js";

export function registerServe(program: Command): void {
  const cmd = program
    .command("serve")
    .description("serve the model over HTTP: OpenAI's /v1/chat/completions, /v1/completions, /v1/responses, /v1/models and Anthropic's /v1/messages")
    .requiredOption("-m, --model <file>", "model GGUF file or packed directory")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on; 0 = any free port (printed)", "8080")
    .option("--alias <id>", "the model's id in /v1/models and in replies (default: the file name without .gguf); requests may name any id")
    .option("--cors <origins>", "let browser apps from these origins call the server (comma-separated, or '*' for any); default: off")
    .option("--api-key <key>", "require 'Authorization: Bearer KEY' or 'x-api-key: KEY' on every endpoint but /health (env MOESTREAM_API_KEY); default: none")
    .option("--reasoning-format <fmt>", "deepseek: a chat reply's <think> block comes back as reasoning_content; none: inline in content (a request's reasoning_format overrides)", "deepseek")
    .option("--max-queue <n>", "requests allowed to wait behind the running one; more get 429", String(DEFAULT_MAX_QUEUE))
    .option("--body-limit <bytes>", "largest request body; more gets 413", String(DEFAULT_BODY_LIMIT))
    .option("--header-timeout <ms>", "a client's request headers must arrive within this; a slower client gets 408 and is dropped", String(DEFAULT_HEADER_TIMEOUT_MS))
    .option("--request-timeout <ms>", "a client's whole request, body included, must arrive within this (at least --header-timeout); else 408 and dropped", String(DEFAULT_REQUEST_TIMEOUT_MS))
    .option("--max-connections <n>", "connections open at once; one more is answered 503 and closed", String(DEFAULT_MAX_CONNECTIONS))
    .addHelpText("after", [
      "\nSampling flags set the server's defaults; a request's temperature, top_p, seed, ... override them.",
      "\nExamples:",
      "  moestream serve -m model.gguf --port 8080",
      "  curl http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \\",
      "    -d '{\"model\": \"model\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}]}'",
    ].join("\n"));
  addOptions(cmd, SAMPLING_OPTIONS);
  addOptions(cmd, ENGINE_OPTIONS);
  cmd.action(async (opts) => {
    const port = intOption(opts.port, "--port", 0, 65535);
    const maxQueue = intOption(opts.maxQueue, "--max-queue", 0, 1_000_000);
    const bodyLimit = intOption(opts.bodyLimit, "--body-limit", 1, 2 ** 31);
    const headerTimeoutMs = intOption(opts.headerTimeout, "--header-timeout", 1, 3_600_000);
    const requestTimeoutMs = intOption(opts.requestTimeout, "--request-timeout", 1, 3_600_000);
    if (headerTimeoutMs > requestTimeoutMs) throw new UsageError("bad_option", `--header-timeout ${headerTimeoutMs} must be at most --request-timeout ${requestTimeoutMs}`);
    const maxConnections = intOption(opts.maxConnections, "--max-connections", 1, 1_000_000);
    if (!(REASONING_FORMATS as readonly string[]).includes(opts.reasoningFormat)) {
      throw new UsageError("bad_option", `--reasoning-format must be one of ${REASONING_FORMATS.join(", ")}, got '${opts.reasoningFormat}'`);
    }
    const cors = opts.cors === undefined ? [] : String(opts.cors).split(",").map((o) => o.trim()).filter(Boolean);
    for (const o of cors) {
      if (o !== "*" && !/^https?:\/\/[^/\s]+$/.test(o)) throw new UsageError("bad_option", `--cors: '${o}' is not an origin (scheme://host[:port], or '*')`);
    }
    const apiKey: string | undefined = opts.apiKey ?? (process.env.MOESTREAM_API_KEY || undefined);
    if (apiKey !== undefined && !/^[\x21-\x7e]+$/.test(apiKey)) throw new UsageError("bad_option", "--api-key must be printable ASCII without spaces");
    const defaults = samplingOptions(opts);
    const lm = await loadWithProgress(opts.model, engineConfig(opts));
    const api = new OpenAIApi(lm, { modelId: opts.alias, defaults, reasoningFormat: opts.reasoningFormat as ReasoningFormat });
    const srv = createApiServer(api, {
      maxQueue, bodyLimit, headerTimeoutMs, requestTimeoutMs, maxConnections, cors, apiKey, log: (line) => process.stderr.write(`moestream: ${line}\n`),
    });
    let addr;
    try {
      addr = await srv.listen(port, opts.host);
    } catch (e) {
      await lm.close();
      throw new UsageError("listen_failed", `cannot listen on ${opts.host}:${port}: ${(e as Error).message}`);
    }
    const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
    process.stdout.write(`listening on http://${host}:${addr.port} (model '${api.modelId}')\n`);
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        process.stderr.write(`moestream: ${sig}: cancelling in-flight requests and shutting down\n`);
        srv.close().then(resolve, resolve);
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
    await lm.close();
  });
}
