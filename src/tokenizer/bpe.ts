// Byte-level BPE with merge ranks, as llama.cpp's llm_tokenizer_bpe_session runs it: a word's UTF-8
// bytes start as one symbol each (its byte-level character), then the adjacent pair with the lowest
// merge rank is merged, leftmost first on ties, until no ranked pair is left. Each final symbol is
// looked up in the vocabulary.
//
// Symbols are integers: a token id when the symbol's text is a vocabulary token, otherwise a
// synthetic id >= nTokens (merge parts or results missing from the vocabulary). A final synthetic
// symbol falls back the way llama.cpp does: each of its bytes is looked up as a one-byte token,
// which can only succeed for ASCII; the rest are dropped. Neither case arises with a well-formed
// vocabulary such as Qwen's.

import { BYTE_TO_UNICODE } from "./byte-level.js";

const RANK_SHIFT = 2 ** 32;
const CACHE_MAX_ENTRIES = 100_000;
const CACHE_MAX_PIECE_LENGTH = 256;

const utf8Encoder = new TextEncoder();

// Scratch buffers shared by all encoders (encoding is synchronous, so no two words interleave).
let symBuf = new Int32Array(256);
let prevBuf = new Int32Array(256);
let nextBuf = new Int32Array(256);
let heap = new Float64Array(512);

function ensureScratch(n: number): void {
  if (symBuf.length < n) {
    let cap = symBuf.length;
    while (cap < n) cap *= 2;
    symBuf = new Int32Array(cap);
    prevBuf = new Int32Array(cap);
    nextBuf = new Int32Array(cap);
  }
  if (heap.length < 3 * n + 8) {
    let cap = heap.length;
    while (cap < 3 * n + 8) cap *= 2;
    heap = new Float64Array(cap);
  }
}

export interface BpeStats {
  /** Merges whose parts and result are all vocabulary tokens. */
  mergesInVocab: number;
  /** Merges that involve a string missing from the vocabulary (kept, as llama.cpp keeps them). */
  mergesOutOfVocab: number;
  /** Merge lines without a separating space, or repeating an earlier pair (ignored). */
  mergesIgnored: number;
}

export class BytePairEncoder {
  /** Number of vocabulary tokens; symbol ids at or above this are synthetic. */
  readonly nTokens: number;
  readonly stats: BpeStats;
  private readonly tokenToId: ReadonlyMap<string, number>;
  /** Texts of synthetic symbols, indexed by id - nTokens. */
  private readonly extraText: string[] = [];
  private readonly extraId = new Map<string, number>();
  /** (left * symMul + right) -> merge rank. */
  private readonly rankOfPair = new Map<number, number>();
  private readonly symMul: number;
  /** rank -> merged symbol. */
  private readonly mergeResult: Int32Array;
  /** byte -> symbol of its byte-level character. */
  private readonly byteSym = new Int32Array(256);
  private readonly cache = new Map<string, readonly number[]>();

  constructor(tokenToId: ReadonlyMap<string, number>, nTokens: number, merges: readonly string[]) {
    this.tokenToId = tokenToId;
    this.nTokens = nTokens;
    for (let b = 0; b < 256; b++) this.byteSym[b] = this.symOf(BYTE_TO_UNICODE[b]);

    const nm = merges.length;
    const lefts = new Int32Array(nm);
    const rights = new Int32Array(nm);
    const results = new Int32Array(nm);
    const valid = new Uint8Array(nm);
    let inVocab = 0;
    let outOfVocab = 0;
    let ignored = 0;
    for (let i = 0; i < nm; i++) {
      const line = merges[i];
      const pos = line.indexOf(" ", 1);
      if (pos < 0) {
        ignored++;
        continue;
      }
      const a = line.slice(0, pos);
      const b = line.slice(pos + 1);
      const ab = a + b;
      let l = tokenToId.get(a);
      let r = tokenToId.get(b);
      let m = tokenToId.get(ab);
      if (l === undefined || r === undefined || m === undefined) {
        outOfVocab++;
        valid[i] = 2;
        l ??= this.symOf(a);
        r ??= this.symOf(b);
        m ??= this.symOf(ab);
      } else {
        inVocab++;
        valid[i] = 1;
      }
      lefts[i] = l;
      rights[i] = r;
      results[i] = m;
    }
    this.symMul = nTokens + this.extraText.length;
    this.mergeResult = results;
    for (let i = 0; i < nm; i++) {
      if (!valid[i]) continue;
      const key = lefts[i] * this.symMul + rights[i];
      // As llama.cpp's bpe_ranks.emplace: the first rank given to a pair wins.
      if (this.rankOfPair.has(key)) {
        ignored++;
        if (valid[i] === 1) inVocab--;
        else outOfVocab--;
        continue;
      }
      this.rankOfPair.set(key, i);
    }
    this.stats = { mergesInVocab: inVocab, mergesOutOfVocab: outOfVocab, mergesIgnored: ignored };
  }

  private symOf(text: string): number {
    const id = this.tokenToId.get(text);
    if (id !== undefined) return id;
    let x = this.extraId.get(text);
    if (x === undefined) {
      x = this.nTokens + this.extraText.length;
      this.extraText.push(text);
      this.extraId.set(text, x);
    }
    return x;
  }

  private rank(left: number, right: number): number {
    const r = this.rankOfPair.get(left * this.symMul + right);
    return r === undefined ? -1 : r;
  }

  /** Token ids of one pre-token (a piece of text, not yet byte-level encoded); appends to `out`. */
  encodePiece(piece: string, out: number[]): void {
    const cached = this.cache.get(piece);
    if (cached !== undefined) {
      for (let i = 0; i < cached.length; i++) out.push(cached[i]);
      return;
    }
    const ids = this.encodeBytes(utf8Encoder.encode(piece));
    if (piece.length <= CACHE_MAX_PIECE_LENGTH) {
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(piece, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]);
  }

  /** Token ids of a word given as raw UTF-8 bytes. */
  encodeBytes(bytes: Uint8Array): number[] {
    const n = bytes.length;
    const out: number[] = [];
    if (n === 0) return out;
    if (n === 1) {
      this.emit(this.byteSym[bytes[0]], out);
      return out;
    }
    ensureScratch(n);
    const sym = symBuf;
    const prev = prevBuf;
    const next = nextBuf;
    const h = heap;
    let hn = 0;

    const push = (key: number): void => {
      let i = hn++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (h[p] <= key) break;
        h[i] = h[p];
        i = p;
      }
      h[i] = key;
    };
    const pop = (): number => {
      const top = h[0];
      const last = h[--hn];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= hn) break;
        if (c + 1 < hn && h[c + 1] < h[c]) c++;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
      return top;
    };

    for (let i = 0; i < n; i++) {
      sym[i] = this.byteSym[bytes[i]];
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    for (let i = 0; i + 1 < n; i++) {
      const r = this.rank(sym[i], sym[i + 1]);
      if (r >= 0) push(r * RANK_SHIFT + i);
    }
    while (hn > 0) {
      const key = pop();
      const rank = Math.floor(key / RANK_SHIFT);
      const left = key - rank * RANK_SHIFT;
      if (sym[left] < 0) continue;
      const right = next[left];
      if (right < 0) continue;
      // Stale entries are those whose pair changed since they were queued; the pair's current rank
      // tells (a merge rank belongs to exactly one pair).
      if (this.rank(sym[left], sym[right]) !== rank) continue;
      sym[left] = this.mergeResult[rank];
      sym[right] = -1;
      const nr = next[right];
      next[left] = nr;
      if (nr >= 0) prev[nr] = left;
      const pl = prev[left];
      if (pl >= 0) {
        const r = this.rank(sym[pl], sym[left]);
        if (r >= 0) push(r * RANK_SHIFT + pl);
      }
      if (nr >= 0) {
        const r = this.rank(sym[left], sym[nr]);
        if (r >= 0) push(r * RANK_SHIFT + left);
      }
    }
    for (let i = 0; i !== -1; i = next[i]) this.emit(sym[i], out);
    return out;
  }

  private emit(s: number, out: number[]): void {
    if (s < this.nTokens) {
      out.push(s);
      return;
    }
    // llama.cpp: a symbol that is not a token is looked up byte by byte as one-byte strings.
    const text = this.extraText[s - this.nTokens];
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x80) {
        const id = this.tokenToId.get(text[i]);
        if (id !== undefined) out.push(id);
      }
    }
  }

  /** Drop the word cache (e.g. to bound memory in a long-running process). */
  clearCache(): void {
    this.cache.clear();
  }
}
