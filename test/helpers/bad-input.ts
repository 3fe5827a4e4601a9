// Shared by the per-architecture load tests: broken copies of a model file (tensors or keys edited), the logits
// of a prompt through a fresh session, and a matcher for the ModelError a refusal must be.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/engine/load.js";
import type { EngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import { ModelError } from "../../src/util/errors.js";
import { rewriteGGUF, type RewriteTensor } from "./rewrite.js";

export type Edit = (t: RewriteTensor[], md: GGUFMetadata) => RewriteTensor[];

/** Edited copies of model files in a temp dir of their own (remove() when done). */
export class Rewrites {
  readonly dir = mkdtempSync(join(tmpdir(), "moestream-rewrites-"));
  private n = 0;
  async of(src: string, edit: Edit): Promise<string> {
    const dst = join(this.dir, `m${this.n++}.gguf`);
    await rewriteGGUF(src, dst, { edit });
    return dst;
  }
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** All rows' logits of a short prompt, through a fresh session of the model at `path`. */
export async function logitsOf(path: string, cfg: EngineConfig): Promise<Float32Array> {
  const lm = await loadModel(path, cfg);
  try {
    return await new Session(lm).eval(lm.tokenizer.encode("Hello there, how are you?"), "all");
  } finally {
    await lm.close();
  }
}

/** assert.rejects' check: a ModelError (of `code`, when given) whose message matches `what`. */
export const refused = (code: string | undefined, what: RegExp) => (e: unknown) => e instanceof ModelError && (code === undefined || e.code === code) && what.test(e.message);
