// Bad-input cases for an architecture's loader, bound to one source model: its variants rewritten (tensors or
// metadata edited) into `dir`, and their logits (the pieces are bad-input.ts's).
import { join } from "node:path";
import type { EngineConfig } from "../../src/engine/config.js";
import { rewriteGGUF } from "./rewrite.js";
import { logitsOf, type Edit } from "./bad-input.js";

export { refused } from "./bad-input.js";

export function loadCases(source: () => Promise<string>, dir: string, cfg: EngineConfig) {
  let n = 0;
  return {
    /** All-position logits of a short prompt. */
    logitsOf: (path: string) => logitsOf(path, cfg),
    /** The source rewritten by `edit` into a new file of `dir`. */
    async rewritten(edit: Edit): Promise<string> {
      const dst = join(dir, `m${n++}.gguf`);
      await rewriteGGUF(await source(), dst, { edit });
      return dst;
    },
  };
}
