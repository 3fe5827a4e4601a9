// Stop sequences over streamed text: text that might begin a stop sequence is held back until the
// next piece settles it, so the stop text itself is never emitted.

export class StopScanner {
  private pending = "";
  constructor(private readonly stops: readonly string[]) {}

  /** Add generated text; returns what is safe to emit and whether a stop sequence matched. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    this.pending += text;
    let at = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      const out = this.pending.slice(0, at);
      this.pending = "";
      return { text: out, stopped: true };
    }
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.pending.length); k > hold; k--) {
        if (this.pending.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    const out = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { text: out, stopped: false };
  }

  /** End of generation without a match: whatever was held back. */
  flush(): string {
    const s = this.pending;
    this.pending = "";
    return s;
  }
}
