// Bad-input cases for an architecture's loader: variants of a source model rewritten (tensors or metadata
// edited), their logits, and the typed refusal each must meet.
import { loadModel } from "../../src/engine/load.js";
import type { EngineConfig } from "../../src/engine/config.js";
import { Session } from "../../src/engine/session.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import { ModelError } from "../../src/util/errors.js";
import { join } from "node:path";
import { rewriteGGUF, type RewriteTensor } from "./rewrite.js";

export function loadCases(source: () => Promise<string>, dir: string, cfg: EngineConfig) {
  let n = 0;
  return {
    /** All-position logits of a short prompt. */
    async logitsOf(path: string): Promise<Float32Array> {
      const lm = await loadModel(path, cfg);
      try {
        return await new Session(lm).eval(lm.tokenizer.encode("Hello there, how are you?"), "all");
      } finally {
        await lm.close();
      }
    },
    /** The source rewritten by `edit` into a new file of `dir`. */
    async rewritten(edit: (t: RewriteTensor[], md: GGUFMetadata) => RewriteTensor[]): Promise<string> {
      const dst = join(dir, `m${n++}.gguf`);
      await rewriteGGUF(await source(), dst, { edit });
      return dst;
    },
  };
}

/** A predicate for assert.rejects: a ModelError of `code` (any if undefined) whose message matches `what`. */
export const refused = (code: string | undefined, what: RegExp) => (e: unknown) => e instanceof ModelError && (code === undefined || e.code === code) && what.test(e.message);
