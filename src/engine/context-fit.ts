// What of a conversation goes into a context of nCtx tokens. When it no longer fits, the oldest turns
// are dropped whole (a user message and the replies that follow it), keeping the first system message
// and the latest turn: node-llama-cpp's "eraseFirstResponseAndKeepFirstSystem" history trimming, without
// its cutting of single messages. The kept window is re-evaluated, as node-llama-cpp does; llama.cpp's
// context shift instead re-rotates the kept KV rows, which needs RoPE applied in place in every layer's state.
import { UsageError } from "../util/errors.js";
import type { ChatMessage } from "./chat-template.js";

/** The typed refusal of a prompt beyond the context (nothing could be generated), naming the option that sizes it. */
export function promptTooLong(promptTokens: number, nCtx: number, what = "the prompt"): UsageError {
  return new UsageError(
    "prompt_too_long",
    `${what} (${promptTokens} tokens) exceeds the context of ${nCtx} tokens; raise --ctx-size (ctxSize) or shorten it`,
  );
}

/**
 * Room kept free for the reply when a conversation is trimmed. All of maxTokens would leave a small
 * context nothing for the history (chat's replies default to 1024 tokens); a quarter of the context keeps
 * three quarters for the conversation. A reply that runs past it stops at the context's end ("length")
 * and the next turn's trim makes room again.
 */
export function replyReserve(maxTokens: number, nCtx: number): number {
  return Math.max(1, Math.min(maxTokens, Math.floor(nCtx / 4)));
}

/**
 * Freed beyond the reply's room when turns must be dropped (node-llama-cpp's default context-shift size,
 * a tenth of the context): a trim re-evaluates everything after the system prompt, so trimming a little
 * deeper lets the next few turns reuse the KV instead of each dropping one more turn.
 */
export function shiftSlack(nCtx: number): number {
  return Math.floor(nCtx / 10);
}

export interface FitOptions {
  /** Tokens the rendered conversation takes (the template's generation prompt included). */
  count(messages: ChatMessage[]): number;
  nCtx: number;
  /** Tokens to keep free for the reply (replyReserve). */
  reserve: number;
  /** Tokens freed beyond `reserve` when turns must be dropped (shiftSlack). */
  slack?: number;
  /** Messages after the system prompt that the previous turn dropped: never bring them back (keeps the KV prefix). */
  minDropped?: number;
}

export interface ContextFit {
  /** The conversation to render: the system prompt, then the messages from `dropped` on. */
  messages: ChatMessage[];
  /** Messages after the system prompt left out (0 when everything fits). */
  dropped: number;
  /** Tokens of the given conversation's rendering that the dropped messages took (0 when none). */
  droppedTokens: number;
}

/**
 * The messages to keep so that the rendering plus `reserve` fits nCtx. When turns must go, drop the
 * fewest oldest turns that free `reserve + slack`, else `reserve`, else fit at all (a context filled
 * exactly still samples one token); when even the system prompt and the latest turn exceed it, a typed UsageError.
 */
export function fitContext(messages: ChatMessage[], o: FitOptions): ContextFit {
  const sys = messages[0]?.role === "system" ? 1 : 0;
  const rest = messages.slice(sys);
  // A turn starts at each user message; anything before the first one is a turn of its own.
  const starts = rest.map((m, i) => (i === 0 || m.role === "user" ? i : -1)).filter((i) => i >= 0);
  const last = starts.length ? starts[starts.length - 1] : 0;
  const from = Math.min(o.minDropped ?? 0, last);
  const cands = starts.filter((d) => d >= from);
  if (!cands.length || cands[0] > from) cands.unshift(from); // the previous drop need not fall on a turn start
  const windows = new Map<number, { messages: ChatMessage[]; tokens: number }>();
  const window = (d: number) => {
    let w = windows.get(d);
    if (!w) {
      const m = d === 0 ? messages : [...messages.slice(0, sys), ...rest.slice(d)];
      windows.set(d, (w = { messages: m, tokens: o.count(m) }));
    }
    return w;
  };
  const size = (d: number) => window(d).tokens;
  const done = (d: number): ContextFit => ({ messages: window(d).messages, dropped: d, droppedTokens: d ? size(0) - size(d) : 0 });

  if (size(cands[0]) + o.reserve <= o.nCtx) return done(cands[0]);
  for (const limit of [o.nCtx - o.reserve - (o.slack ?? 0), o.nCtx - o.reserve, o.nCtx]) {
    if (size(cands[cands.length - 1]) > limit) continue;
    // The rendering shrinks as turns are dropped: the fewest that fit, by bisection (log n renders).
    let lo = 0;
    let hi = cands.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (size(cands[mid]) <= limit) hi = mid;
      else lo = mid + 1;
    }
    return done(cands[lo]);
  }
  throw promptTooLong(size(cands[cands.length - 1]), o.nCtx, sys ? "the system prompt with the latest message" : "the latest message");
}
