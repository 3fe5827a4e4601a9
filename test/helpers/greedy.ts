// Greedy decoding through a Session, for tests that compare continuations step by step.
import assert from "node:assert/strict";
import type { LoadedModel } from "../../src/engine/load.js";
import { Session } from "../../src/engine/session.js";

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

/**
 * Save a session after `prompt` (its next token pending, as after a generation) to `file` and load it into a fresh
 * session: the loaded session's continuation equals the uninterrupted one's bit for bit over `n` steps, and so does
 * the saving session's own (saving changed nothing). The file is left for further checks.
 */
export async function checkSaveLoadContinues(lm: LoadedModel, prompt: number[], file: string, n: number): Promise<void> {
  const whole = new Session(lm);
  const want = await greedy(whole, await whole.eval(prompt), n + 1);
  const s = new Session(lm);
  const first = await s.eval(prompt);
  s.pending.push(argmax(first));
  await s.save(file);
  const t = new Session(lm);
  await t.load(file);
  assert.deepEqual(t.cache.layers.map((l) => [l.kind, l.length]), s.cache.layers.map((l) => [l.kind, l.length]));
  assert.deepEqual(t.context, [...prompt, argmax(first)]);
  // Feeding the pending token gives the uninterrupted session's first continuation logits, and so on.
  const l0 = await t.eval([]);
  const got = await greedy(t, l0, n);
  assert.deepEqual([argmax(first), ...got.tokens], want.tokens);
  [l0, ...got.logits].forEach((l, i) => assert.deepEqual(l, want.logits[i], `step ${i}: logits differ`));
  assert.deepEqual(await greedy(s, await s.eval([]), n), got);
  for (const x of [whole, s, t]) x.free();
}

/** Two prompts sharing a proper prefix of `common` tokens, for prefix-reuse tests. */
export function divergentPrompts(lm: LoadedModel): { p1: number[]; p2: number[]; common: number } {
  const p1 = lm.tokenizer.encode("One two three four five six");
  const p2 = lm.tokenizer.encode("One two three four seven eight nine");
  let common = 0;
  while (p1[common] === p2[common]) common++;
  assert.ok(common > 0 && common < p2.length, "the prompts share a proper prefix");
  return { p1, p2, common };
}
