// Incremental detokenization for streamed output.
import type { DecodeOptions, Tokenizer } from "./tokenizer.js";

/**
 * Incremental detokenizer: push token ids one at a time; each call returns the text that became
 * complete, holding back a trailing partial UTF-8 sequence until its remaining bytes arrive.
 * Concatenating every push() and a final flush() equals decode() of the whole sequence.
 */
export class StreamDecoder {
  private readonly tokenizer: Tokenizer;
  private readonly special: boolean;
  private decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

  constructor(tokenizer: Tokenizer, opts: DecodeOptions = {}) {
    this.tokenizer = tokenizer;
    this.special = !(opts.skipSpecial ?? false);
  }

  /** Add one token; returns the newly completed text (possibly ""). */
  push(id: number): string {
    return this.decoder.decode(this.tokenizer.pieceBytes(id, this.special), { stream: true });
  }

  /** Add several tokens; returns the newly completed text. */
  pushMany(ids: readonly number[]): string {
    let s = "";
    for (const id of ids) s += this.push(id);
    return s;
  }

  /** End of stream: returns what is held back, an incomplete sequence becoming U+FFFD; then resets. */
  flush(): string {
    const s = this.decoder.decode();
    this.decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    return s;
  }
}
