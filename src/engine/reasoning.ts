// Splits a reply's `<think>…</think>` block from its content as the text streams in: the server's
// `reasoning_content` (llama-server's reasoning_format "deepseek") and the chat's dimmed thinking. Pieces may cut a tag anywhere: a tail that
// could still become a tag is held back. Whitespace around the block (the template's "\n" after <think> and
// "\n\n" after </think>) is dropped, so the streamed pieces join to what the whole reply gives.

const OPEN = "<think>";
const CLOSE = "</think>";

export interface ReasoningPiece {
  reasoning: string;
  content: string;
}

/** Length of the longest suffix of `s` that is a proper prefix of `tag`. */
function partialTag(s: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, s.length); n > 0; n--) if (tag.startsWith(s.slice(-n))) return n;
  return 0;
}

export class ReasoningSplitter {
  /** before: the reply may still open with <think>; then in the block, then after it (content). */
  private state: "before" | "reasoning" | "content";
  private held = "";
  /** Whitespace is dropped at the start of the block and of the content after it. */
  private trimStart: boolean;

  /** `open`: the prompt already ends inside a think block (templates that put <think> in the generation prompt). */
  constructor(open = false) {
    this.state = open ? "reasoning" : "before";
    this.trimStart = open;
  }

  push(text: string): ReasoningPiece {
    const out: ReasoningPiece = { reasoning: "", content: "" };
    let s = this.held + text;
    this.held = "";
    for (;;) {
      if (this.state === "before") {
        const t = s.replace(/^\s+/, "");
        if (t.startsWith(OPEN)) {
          this.state = "reasoning";
          s = t.slice(OPEN.length).replace(/^\s+/, "");
          this.trimStart = !s;
          continue;
        }
        if (OPEN.startsWith(t)) {
          this.held = s; // could still become the tag
          return out;
        }
        this.state = "content"; // no block: the reply is content as it came
        out.content += s;
        return out;
      }
      if (this.trimStart) {
        s = s.replace(/^\s+/, "");
        if (!s) return out;
        this.trimStart = false;
      }
      if (this.state === "reasoning") {
        const at = s.indexOf(CLOSE);
        if (at >= 0) {
          out.reasoning += s.slice(0, at).replace(/\s+$/, "");
          this.state = "content";
          this.trimStart = true;
          s = s.slice(at + CLOSE.length);
          continue;
        }
        // Hold a tail that may begin the closing tag, and trailing whitespace (dropped if the tag follows).
        const tag = partialTag(s, CLOSE);
        const body = s.slice(0, s.length - tag);
        const keep = tag + body.length - body.replace(/\s+$/, "").length;
        out.reasoning += s.slice(0, s.length - keep);
        this.held = s.slice(s.length - keep);
        return out;
      }
      out.content += s;
      return out;
    }
  }

  /** The end of the reply: what was held back goes where it was heading. */
  flush(): ReasoningPiece {
    const s = this.held;
    this.held = "";
    if (this.state === "reasoning") return { reasoning: s.replace(/\s+$/, ""), content: "" };
    if (this.state === "before") this.state = "content";
    return { reasoning: "", content: s };
  }
}
