// SentencePiece-style tokenization of GGUF "llama" vocabularies (Llama 2, Mistral / Mixtral), as
// llama.cpp's llm_tokenizer_spm_session runs it: the text (spaces already escaped to U+2581) starts as
// one symbol per character; the adjacent pair whose concatenation is a vocabulary token with the
// highest score is merged (leftmost first on ties), until no pair forms a token. A final symbol that is
// not a token (a single character missing from the vocabulary) falls back to its UTF-8 bytes as
// <0xXX> tokens.

const utf8 = new TextEncoder();

interface Bigram {
  left: number;
  right: number;
  score: number;
  /** Length (UTF-16 units) of the merged text when queued: a stale entry no longer adds up to it. */
  size: number;
}

/** Max-heap order of llama.cpp's llm_bigram_spm::comparator: higher score first, then lower left. */
function before(a: Bigram, b: Bigram): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}

export class SentencePieceEncoder {
  private readonly tokenToId: ReadonlyMap<string, number>;
  private readonly scores: ArrayLike<number>;
  private readonly byteIds: (number | undefined)[];

  constructor(tokenToId: ReadonlyMap<string, number>, scores: ArrayLike<number>) {
    this.tokenToId = tokenToId;
    this.scores = scores;
    // llama.cpp byte_to_token: "<0xXX>", else the byte as a one-character token.
    this.byteIds = Array.from({ length: 256 }, (_, b) => {
      const hex = b.toString(16).toUpperCase().padStart(2, "0");
      return tokenToId.get(`<0x${hex}>`) ?? (b < 0x80 ? tokenToId.get(String.fromCharCode(b)) : undefined);
    });
  }

  /** Append the token ids of `text` (whitespace already escaped) to `out`. */
  encode(text: string, out: number[]): void {
    const chars = Array.from(text);
    const n = chars.length;
    if (n === 0) return;
    const sym = chars; // merged text lives in the left symbol; "" marks a symbol merged away
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const heap: Bigram[] = [];

    const push = (b: Bigram): void => {
      let i = heap.length;
      heap.push(b);
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!before(b, heap[p])) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = b;
    };
    const pop = (): Bigram => {
      const top = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        let i = 0;
        for (;;) {
          let c = 2 * i + 1;
          if (c >= heap.length) break;
          if (c + 1 < heap.length && before(heap[c + 1], heap[c])) c++;
          if (!before(heap[c], last)) break;
          heap[i] = heap[c];
          i = c;
        }
        heap[i] = last;
      }
      return top;
    };
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const t = sym[left] + sym[right];
      const id = this.tokenToId.get(t);
      if (id === undefined) return;
      push({ left, right, score: this.scores[id], size: t.length });
    };

    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    while (heap.length > 0) {
      const b = pop();
      const l = sym[b.left];
      const r = sym[b.right];
      if (l === "" || r === "" || l.length + r.length !== b.size) continue;
      sym[b.left] = l + r;
      sym[b.right] = "";
      const nr = next[b.right];
      next[b.left] = nr;
      if (nr >= 0) prev[nr] = b.left;
      tryAdd(prev[b.left], b.left);
      tryAdd(b.left, next[b.left]);
    }
    for (let i = 0; i !== -1; i = next[i]) {
      const id = this.tokenToId.get(sym[i]);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const byte of utf8.encode(sym[i])) {
        const b = this.byteIds[byte];
        if (b !== undefined) out.push(b);
      }
    }
  }
}
