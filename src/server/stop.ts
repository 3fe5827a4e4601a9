// Stop sequences over streamed text: text that might begin a stop sequence is held back until the
// next piece settles it, so the stop text itself is never emitted. The cut is at the earliest place any
// stop sequence occurs in the whole text: a complete match waits while a stop that would start earlier
// is still only partly generated.

export class StopScanner {
  private pending = "";
  /** The stop sequence that ended the text, once one has. */
  matched: string | undefined;
  constructor(private readonly stops: readonly string[]) {}

  /** Add generated text; returns what is safe to emit and whether a stop sequence matched. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    this.pending += text;
    const at = this.firstMatch();
    // The earliest position whose rest is a proper prefix of some stop: undecided until more text comes.
    const open = this.firstOpen(at < 0 ? this.pending.length : at);
    if (at >= 0 && open < 0) return this.cut(at);
    const keep = open < 0 ? this.pending.length : open;
    const out = this.pending.slice(0, keep);
    this.pending = this.pending.slice(keep);
    return { text: out, stopped: false };
  }

  /** End of generation: a complete match still held back is cut; otherwise whatever was held back. */
  flush(): { text: string; stopped: boolean } {
    const at = this.firstMatch();
    if (at >= 0) return this.cut(at);
    const s = this.pending;
    this.pending = "";
    return { text: s, stopped: false };
  }

  private firstMatch(): number {
    let at = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    return at;
  }

  /** Smallest j < before with pending[j..] a proper prefix of a stop, or -1. */
  private firstOpen(before: number): number {
    for (let j = Math.max(0, this.pending.length - this.longest() + 1); j < before; j++) {
      const rest = this.pending.slice(j);
      if (this.stops.some((s) => s.length > rest.length && s.startsWith(rest))) return j;
    }
    return -1;
  }

  private longest(): number {
    return Math.max(...this.stops.map((s) => s.length));
  }

  private cut(at: number): { text: string; stopped: boolean } {
    this.matched = this.stops.find((s) => this.pending.startsWith(s, at));
    const out = this.pending.slice(0, at);
    this.pending = "";
    return { text: out, stopped: true };
  }
}
