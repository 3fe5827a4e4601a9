// Greedy decoding through a Session, for tests that compare continuations step by step.
import type { Session } from "../../src/engine/session.js";

export function argmax(l: Float32Array): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
  return best;
}

/** Greedy steps from the logits in hand: each chosen token is fed back; returns the tokens and each step's logits. */
export async function greedy(s: Session, logits: Float32Array, n: number): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  const tokens: number[] = [], seen: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const t = argmax(logits);
    tokens.push(t);
    logits = await s.eval([t]);
    seen.push(logits);
  }
  return { tokens, logits: seen };
}
