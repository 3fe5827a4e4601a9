// The engine host: a worker thread that loads one model and runs its sessions, so the forward pass never
// holds the caller's event loop. Everything arrives as a message (host-protocol.ts); abort flags and the
// expert counters are shared memory, read and written without waiting for this thread's loop.
import { parentPort, workerData } from "node:worker_threads";
import { loadModel, type LoadedModel } from "./load.js";
import { Session } from "./session.js";
import { EXPERT_COUNTERS, toWire, type ContextState, type FromHost, type HostStart, type SessionCall, type ToHost, type WireGenerateOptions } from "./host-protocol.js";
import type { GenerateOptions, GenerateStep, GenerationStats } from "./session.js";

const port = parentPort!;
const start = workerData as HostStart;
const post = (m: FromHost, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
const counters = new Float64Array(start.stats);

interface Hosted {
  session: Session;
  abort: Int32Array;
}
const sessions = new Map<number, Hosted>();
/** Generations waiting for the caller to pull their next step. */
const pulls = new Map<number, (more: boolean) => void>();
let lm: LoadedModel;

function publishCounters(): void {
  const s = lm.experts.stats as unknown as Record<string, number>;
  EXPERT_COUNTERS.forEach((k, i) => (counters[i] = s[k]));
}

function state(s: Session): ContextState {
  return { context: s.context, evaluated: s.tokens.length };
}

function hosted(sid: number): Hosted {
  const h = sessions.get(sid);
  if (!h) throw new RangeError(`session ${sid} is closed`);
  return h;
}

async function call(sid: number, c: SessionCall): Promise<{ value?: unknown; transfer?: ArrayBuffer[] }> {
  if (c.op === "create") {
    sessions.set(sid, { session: new Session(lm, c.nCtx), abort: new Int32Array(c.abort) });
    return {};
  }
  const h = hosted(sid);
  const { session } = h;
  switch (c.op) {
    case "truncate":
      session.truncate(c.length);
      return {};
    case "reset":
      session.reset();
      return {};
    case "eval": {
      const logits = await session.eval(c.tokens, c.logits, undefined, aborted(h));
      publishCounters();
      const copy = logits.slice(); // the model's buffer is reused by the next forward
      return { value: copy, transfer: [copy.buffer] };
    }
    case "save":
      session.meta = c.meta;
      await session.save(c.path);
      return {};
    case "load":
      await session.load(c.path);
      return { value: session.meta };
    case "free":
      session.free();
      sessions.delete(sid);
      return {};
  }
}

const aborted = (h: Hosted) => ({
  get aborted() {
    return Atomics.load(h.abort, 0) !== 0;
  },
});

function options(id: number, h: Hosted, o: WireGenerateOptions): GenerateOptions & { template?: WireGenerateOptions["template"] } {
  const { prefill, ...rest } = o;
  return {
    ...rest,
    signal: aborted(h) as AbortSignal, // generate() reads only `aborted`
    onPrefill: prefill ? (done, total) => (publishCounters(), post({ t: "prefill", id, done, total })) : undefined,
  };
}

/** Run a generation as a pull stream: each step waits for the caller's `next` before the next forward. */
async function stream(id: number, h: Hosted, gen: AsyncGenerator<GenerateStep, GenerationStats>): Promise<void> {
  try {
    for (;;) {
      const r = await gen.next();
      publishCounters();
      if (r.done) {
        post({ t: "done", id, stats: r.value, state: state(h.session) });
        return;
      }
      post({ t: "step", id, step: r.value });
      const more = await new Promise<boolean>((resolve) => pulls.set(id, resolve));
      if (!more) {
        await gen.return(undefined as never); // the caller stopped: end it as the in-process iterator would
        post({ t: "done", id, stats: undefined, state: state(h.session) });
        return;
      }
    }
  } catch (e) {
    post({ t: "error", id, error: toWire(e), state: state(h.session) });
  } finally {
    pulls.delete(id);
  }
}

port.on("message", (m: ToHost) => {
  switch (m.t) {
    case "call": {
      call(m.sid, m.call).then(
        ({ value, transfer }) => post({ t: "result", id: m.id, value, state: sessions.has(m.sid) ? state(hosted(m.sid).session) : undefined }, transfer),
        (e) => post({ t: "error", id: m.id, error: toWire(e), state: sessions.has(m.sid) ? state(hosted(m.sid).session) : undefined }),
      );
      return;
    }
    case "generate":
    case "chat": {
      let h: Hosted;
      try {
        h = hosted(m.sid);
      } catch (e) {
        post({ t: "error", id: m.id, error: toWire(e) });
        return;
      }
      let gen: AsyncGenerator<GenerateStep, GenerationStats>;
      try {
        gen =
          m.t === "generate"
            ? h.session.generate(m.prompt, options(m.id, h, m.opts))
            : h.session.chat(m.messages, { ...options(m.id, h, m.opts), template: m.opts.template });
      } catch (e) {
        post({ t: "error", id: m.id, error: toWire(e), state: state(h.session) }); // a throw here would end the thread
        return;
      }
      void stream(m.id, h, gen);
      return;
    }
    case "next":
    case "return":
      pulls.get(m.id)?.(m.t === "next");
      return;
    case "close":
      void (async () => {
        for (const { session } of sessions.values()) session.free();
        sessions.clear();
        try {
          await lm.close();
          post({ t: "result", id: m.id });
        } catch (e) {
          post({ t: "error", id: m.id, error: toWire(e) });
        }
        port.close();
      })();
      return;
  }
});

try {
  lm = await loadModel(start.path, start.config, (done, total) => post({ t: "progress", done, total }));
  publishCounters();
  post({
    t: "ready",
    ready: {
      path: lm.path, arch: lm.arch, info: lm.model.info, config: lm.config, contextReason: lm.contextReason, expertIO: lm.expertIO,
      warnings: lm.warnings, backend: lm.backend.name, expertSlots: lm.gpuExperts?.capacity ?? lm.experts.nSlots, // the model acquires from the GPU tier where there is one
    },
  });
} catch (e) {
  post({ t: "failed", error: toWire(e) });
  port.close();
}
