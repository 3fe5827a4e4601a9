// Tokenizer for GGUF vocabularies with tokenizer.ggml.model = "gpt2" (byte-level BPE) or "llama"
// (SentencePiece: Llama 2, Mistral, Mixtral; spm.ts), built and run the way llama.cpp's
// llama-vocab.cpp does it:
// - token types become attributes; control-looking tokens found by text (EOT, FIM, EOG) are
//   forced to CONTROL, control tokens whose text contains "unused" are marked UNUSED;
// - special-token partition: every CONTROL / USER_DEFINED / UNKNOWN token, longest (in UTF-8 bytes)
//   first, splits the remaining raw-text fragments at each of its occurrences; CONTROL and UNKNOWN
//   tokens take part only when parseSpecial is set, USER_DEFINED ones (<think>, <tool_call>) always;
// - BPE: raw-text fragments are pre-tokenized by the regexes tokenizer.ggml.pre selects
//   (pretokenize.ts) and each piece is byte-level BPE'd;
// - SentencePiece: a raw-text fragment at the start or after a special token gets a leading space
//   (tokenizer.ggml.add_space_prefix, default true), spaces become U+2581, and the fragment is merged
//   by token score; BOS is added unless tokenizer.ggml.add_bos_token says otherwise;
// - pieces: NORMAL tokens are byte-level decoded (SentencePiece: U+2581 back to a space), BYTE tokens
//   are their byte, CONTROL / UNKNOWN / USER_DEFINED tokens are their text as is, UNUSED / UNDEFINED
//   tokens are empty;
// - the end-of-generation set is derived from token texts plus eos / eot / eom.
// Two deliberate departures from llama.cpp, both toward the model's own tokenizer: for the families
// whose tokenizer.json declares an NFC normalizer (Qwen2/3; not Qwen3.5), each raw-text fragment is
// NFC-normalized before pre-tokenization, as HF does; and gpt-4o / kimi-k2 split with the model's own
// tiktoken pattern, which llama.cpp approximates. Pass { llamaCpp: true } to Tokenizer.fromMetadata
// to get llama.cpp's behaviour exactly.

import type { GGUFMetadata } from "../format/gguf/types.js";
import { ModelError, UsageError } from "../util/errors.js";
import { unicodeToBytes } from "./byte-level.js";
import { BytePairEncoder } from "./bpe.js";
import { PRE_TOKENIZER_NAMES, preTokenizer, type PreTokenizer } from "./pretokenize.js";
import { TokenizerKeys, getBool, getFloatArray, getIntArray, getString, getStringArray, getUint, missing } from "./metadata.js";
import { SentencePieceEncoder } from "./spm.js";
import { StreamDecoder } from "./stream-decoder.js";
import { TokenAttr, attrOfType } from "./token-types.js";

export interface TokenizerOptions {
  /** Tokenize exactly as llama.cpp does: no NFC, llama.cpp's splitters for gpt-4o and kimi-k2 (default false). */
  llamaCpp?: boolean;
  /**
   * NFC-normalize raw text before pre-tokenization, as HF does for the families whose tokenizer.json says
   * so (default: true for those unless llamaCpp, false otherwise); llama.cpp never does.
   */
  nfc?: boolean;
}

export interface EncodeOptions {
  /** Match CONTROL (and UNKNOWN) tokens written in the text (default true). USER_DEFINED tokens always match. */
  parseSpecial?: boolean;
  /** Prepend BOS (default: tokenizer.ggml.add_bos_token, false when absent). */
  addBos?: boolean;
  /** Append EOS (default: tokenizer.ggml.add_eos_token, false when absent). */
  addEos?: boolean;
}

export interface DecodeOptions {
  /** Leave out CONTROL and UNKNOWN tokens (e.g. <|im_end|>); default false renders their text. */
  skipSpecial?: boolean;
}

// ---------------------------------------------------------------------------------------------
// metadata helpers

const EOT_TEXTS = [
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
  "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
];
const EOM_TEXTS = ["<|eom_id|>"];
const FIM_PRE_TEXTS = [
  "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>",
];
const FIM_SUF_TEXTS = [
  "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
];
const FIM_MID_TEXTS = [
  "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>",
];
const FIM_PAD_TEXTS = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP_TEXTS = ["<|file_sep|>"];
const EOG_TEXTS = new Set([
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
  "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
  "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
]);
const ALWAYS_RENDER_TEXTS = new Set(["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]);

const utf8Encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

type Fragment = string | number;

export class Tokenizer {
  /** Number of tokens in the vocabulary (tokenizer.ggml.tokens length). */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  readonly sepId: number | null;
  readonly maskId: number | null;
  readonly eotId: number | null;
  readonly eomId: number | null;
  readonly fimPreId: number | null;
  readonly fimSufId: number | null;
  readonly fimMidId: number | null;
  readonly fimPadId: number | null;
  readonly fimRepId: number | null;
  readonly fimSepId: number | null;
  /** Tokens that end generation, as llama.cpp determines them. */
  readonly eogIds: ReadonlySet<number>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly chatTemplate: string | null;
  /** tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece). */
  readonly model: "gpt2" | "llama";
  /** tokenizer.ggml.pre ("default" when a SentencePiece file has none). */
  readonly pre: string;
  readonly nfc: boolean;
  /** SentencePiece: a space is put before raw text at the start and after special tokens. */
  readonly addSpacePrefix: boolean;
  private readonly preTokenizer: PreTokenizer | null;

  private readonly tokens: readonly string[];
  private readonly tokenToIdMap: Map<string, number>;
  private readonly attrs: Uint16Array;
  private readonly bpe: BytePairEncoder | null;
  private readonly spm: SentencePieceEncoder | null;
  /** CONTROL / USER_DEFINED / UNKNOWN tokens, longest UTF-8 text first. */
  private readonly specialCache: readonly number[];
  private readonly pieces: (Uint8Array | undefined)[];

  private constructor(md: GGUFMetadata, opts: TokenizerOptions) {
    const model = getString(md, TokenizerKeys.model, true);
    if (model !== "gpt2" && model !== "llama") {
      throw new ModelError(
        "TOKENIZER_UNSUPPORTED",
        `${TokenizerKeys.model} = "${model}" is not supported (supported: "gpt2" byte-level BPE, "llama" SentencePiece)`,
      );
    }
    this.model = model;
    const spm = model === "llama";
    if (spm) {
      // llama.cpp gives SentencePiece vocabularies no pre-tokenizer, whatever the key says.
      this.pre = getString(md, TokenizerKeys.pre, false) ?? "default";
      this.preTokenizer = null;
      this.nfc = opts.nfc ?? false;
    } else {
      const pre = getString(md, TokenizerKeys.pre, false);
      if (pre === undefined) throw missing(TokenizerKeys.pre);
      const preTok = preTokenizer(pre, { llamaCpp: opts.llamaCpp });
      if (preTok === undefined) {
        throw new ModelError(
          "TOKENIZER_UNSUPPORTED",
          `${TokenizerKeys.pre} = "${pre}" is not supported (supported: ${Object.keys(PRE_TOKENIZER_NAMES).join(", ")})`,
        );
      }
      this.pre = pre;
      this.preTokenizer = preTok;
      this.nfc = opts.nfc ?? (preTok.nfc && !opts.llamaCpp);
    }
    this.addSpacePrefix = spm && (getBool(md, TokenizerKeys.addSpacePrefix) ?? true);

    const rawTokens = getStringArray(md, TokenizerKeys.tokens);
    const n = rawTokens.length;
    if (n === 0) throw new ModelError("TOKENIZER_BAD_METADATA", `metadata key ${TokenizerKeys.tokens} is empty`);
    const types = getIntArray(md, TokenizerKeys.tokenType);
    if (types !== undefined && types.length < n) {
      throw new ModelError(
        "TOKENIZER_BAD_METADATA",
        `metadata key ${TokenizerKeys.tokenType} has ${types.length} entries, fewer than the ${n} tokens`,
      );
    }
    const merges = spm ? null : getStringArray(md, TokenizerKeys.merges);
    const scores = spm ? getFloatArray(md, TokenizerKeys.scores) : null;
    if (scores !== null && scores.length < n) {
      throw new ModelError(
        "TOKENIZER_BAD_METADATA",
        `metadata key ${TokenizerKeys.scores} has ${scores.length} entries, fewer than the ${n} tokens`,
      );
    }

    const tokens: string[] = new Array(n);
    const tokenToId = new Map<string, number>();
    const attrs = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      let t = rawTokens[i];
      if (t.length === 0) t = `[EMPTY_${i}]`;
      const prev = tokenToId.get(t);
      if (prev !== undefined) {
        throw new ModelError(
          "TOKENIZER_BAD_METADATA",
          `${TokenizerKeys.tokens}: duplicate token ${JSON.stringify(t)} at ids ${prev} and ${i}`,
        );
      }
      tokenToId.set(t, i);
      tokens[i] = t;
      attrs[i] = types === undefined ? TokenAttr.NORMAL : attrOfType(types[i]);
    }
    this.tokens = tokens;
    this.tokenToIdMap = tokenToId;
    this.attrs = attrs;
    this.vocabSize = n;

    const id = (key: string): number | null => {
      const v = getUint(md, key);
      if (v === undefined) return null;
      if (v >= n) {
        throw new ModelError("TOKENIZER_BAD_METADATA", `metadata key ${key} = ${v} is out of range (vocabulary has ${n} tokens)`);
      }
      return v;
    };
    // llama.cpp's defaults for SentencePiece vocabularies: <unk> 0, <s> 1, </s> 2.
    const spmDefault = (d: number): number | null => (spm && d < n ? d : null);
    this.bosId = id(TokenizerKeys.bosId) ?? spmDefault(1);
    this.eosId = id(TokenizerKeys.eosId) ?? spmDefault(2);
    this.unkId = id(TokenizerKeys.unkId) ?? spmDefault(0);
    this.sepId = id(TokenizerKeys.sepId);
    this.padId = id(TokenizerKeys.padId);
    this.maskId = id(TokenizerKeys.maskId);
    let eot = id(TokenizerKeys.eotId);
    let eom = id(TokenizerKeys.eomId);
    let fimPre = id(TokenizerKeys.fimPreId);
    let fimSuf = id(TokenizerKeys.fimSufId);
    let fimMid = id(TokenizerKeys.fimMidId);
    let fimPad = id(TokenizerKeys.fimPadId);
    let fimRep = id(TokenizerKeys.fimRepId);
    let fimSep = id(TokenizerKeys.fimSepId);

    this.addBos = getBool(md, TokenizerKeys.addBos) ?? spm;
    this.addEos = getBool(md, TokenizerKeys.addEos) ?? false;
    if (this.addBos && this.bosId === null) {
      throw new ModelError("TOKENIZER_BAD_METADATA", `${TokenizerKeys.addBos} is true, but ${TokenizerKeys.bosId} is not set`);
    }
    if (this.addEos && this.eosId === null) {
      throw new ModelError("TOKENIZER_BAD_METADATA", `${TokenizerKeys.addEos} is true, but ${TokenizerKeys.eosId} is not set`);
    }
    this.chatTemplate = getString(md, TokenizerKeys.chatTemplate, false) ?? null;

    // Text-based detection of special tokens not given by key. llama.cpp walks an unordered map and
    // takes whichever candidate it meets first; we take the first candidate in its list order.
    const detect = (given: number | null, texts: readonly string[]): number | null => {
      if (given !== null) return given;
      for (const text of texts) {
        const i = tokenToId.get(text);
        if (i !== undefined) {
          attrs[i] |= TokenAttr.CONTROL;
          return i;
        }
      }
      return null;
    };
    eot = detect(eot, EOT_TEXTS);
    eom = detect(eom, EOM_TEXTS);
    fimPre = detect(fimPre, FIM_PRE_TEXTS);
    fimSuf = detect(fimSuf, FIM_SUF_TEXTS);
    fimMid = detect(fimMid, FIM_MID_TEXTS);
    fimPad = detect(fimPad, FIM_PAD_TEXTS);
    fimRep = detect(fimRep, FIM_REP_TEXTS);
    fimSep = detect(fimSep, FIM_SEP_TEXTS);
    // Control tokens named "unused" are unused.
    for (let i = 0; i < n; i++) {
      if (attrs[i] & TokenAttr.CONTROL && tokens[i].includes("unused")) attrs[i] |= TokenAttr.UNUSED;
    }
    const eog = new Set<number>();
    if (fimPad !== null) eog.add(fimPad);
    if (fimRep !== null) eog.add(fimRep);
    if (fimSep !== null) eog.add(fimSep);
    for (const text of EOG_TEXTS) {
      const i = tokenToId.get(text);
      if (i !== undefined) {
        eog.add(i);
        attrs[i] |= TokenAttr.CONTROL;
      }
    }
    for (const text of ALWAYS_RENDER_TEXTS) {
      const i = tokenToId.get(text);
      if (i !== undefined) attrs[i] = TokenAttr.USER_DEFINED;
    }
    if (this.eosId !== null) eog.add(this.eosId);
    if (eot !== null) eog.add(eot);
    if (eom !== null) eog.add(eom);
    // o200k_harmony / solar-open: "<|end|>" is not end-of-generation when <|return|>+<|call|> or
    // <|calls|>+<|flush|> exist.
    {
      let hasReturn = false, hasCall = false, hasFlush = false, endId = -1;
      for (const e of eog) {
        const t = tokens[e];
        if (t === "<|return|>") hasReturn = true;
        else if (t === "<|call|>" || t === "<|calls|>") hasCall = true;
        else if (t === "<|flush|>") hasFlush = true;
        else if (t === "<|end|>") endId = e;
      }
      if (endId >= 0 && ((hasReturn && hasCall) || (hasCall && hasFlush))) {
        eog.delete(endId);
        attrs[endId] = TokenAttr.USER_DEFINED;
      }
    }
    // gemma4 / paddleocr: with "<|tool_response>" present, "</s>" is not end-of-generation.
    {
      let hasToolResponse = false, sId = -1;
      for (const e of eog) {
        if (tokens[e] === "<|tool_response>") hasToolResponse = true;
        else if (tokens[e] === "</s>") sId = e;
      }
      if (hasToolResponse && sId >= 0) {
        eog.delete(sId);
        attrs[sId] = TokenAttr.NORMAL;
      }
    }
    this.eotId = eot;
    this.eomId = eom;
    this.fimPreId = fimPre;
    this.fimSufId = fimSuf;
    this.fimMidId = fimMid;
    this.fimPadId = fimPad;
    this.fimRepId = fimRep;
    this.fimSepId = fimSep;
    this.eogIds = eog;

    const specials: { id: number; len: number }[] = [];
    for (let i = 0; i < n; i++) {
      if (attrs[i] & (TokenAttr.CONTROL | TokenAttr.USER_DEFINED | TokenAttr.UNKNOWN)) {
        specials.push({ id: i, len: utf8Encoder.encode(tokens[i]).length });
      }
    }
    specials.sort((a, b) => b.len - a.len || a.id - b.id);
    this.specialCache = specials.map((s) => s.id);

    this.bpe = merges === null ? null : new BytePairEncoder(tokenToId, n, merges);
    this.spm = scores === null ? null : new SentencePieceEncoder(tokenToId, scores);
    this.pieces = new Array(n);
  }

  /** Build from GGUF metadata (tokenizer.ggml.* keys); throws ModelError naming a missing or ill-typed key. */
  static fromMetadata(md: GGUFMetadata, opts: TokenizerOptions = {}): Tokenizer {
    return new Tokenizer(md, opts);
  }

  // -------------------------------------------------------------------------------------------
  // encoding

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const parseSpecial = opts.parseSpecial ?? true;
    const addBos = opts.addBos ?? this.addBos;
    const addEos = opts.addEos ?? this.addEos;
    const out: number[] = [];
    if (addBos) {
      if (this.bosId === null) throw new UsageError("TOKENIZER_NO_BOS", "addBos requested, but the vocabulary has no BOS token");
      out.push(this.bosId);
    }
    if (text.length > 0) {
      // SentencePiece: llama.cpp puts a space before raw text at the start and after a special token.
      let afterSpecial = true;
      for (const frag of this.partition(text, parseSpecial)) {
        if (typeof frag === "number") {
          out.push(frag);
          afterSpecial = true;
          continue;
        }
        const s = this.nfc ? frag.normalize("NFC") : frag;
        if (this.spm !== null) {
          this.spm.encode(((this.addSpacePrefix && afterSpecial ? " " : "") + s).replaceAll(" ", "\u2581"), out);
          afterSpecial = false;
          continue;
        }
        for (const piece of this.preTokenizer!.split(s)) this.bpe!.encodePiece(piece, out);
      }
    }
    if (addEos) {
      if (this.eosId === null) throw new UsageError("TOKENIZER_NO_EOS", "addEos requested, but the vocabulary has no EOS token");
      out.push(this.eosId);
    }
    return out;
  }

  /** llama.cpp's tokenizer_st_partition: split raw text at special tokens, longest token first. */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    let frags: Fragment[] = [text];
    for (const id of this.specialCache) {
      if (!parseSpecial && this.attrs[id] & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) continue;
      const t = this.tokens[id];
      let next: Fragment[] | null = null;
      for (let fi = 0; fi < frags.length; fi++) {
        const f = frags[fi];
        const first = typeof f === "string" ? f.indexOf(t) : -1;
        if (first < 0) {
          if (next !== null) next.push(f);
          continue;
        }
        if (next === null) next = frags.slice(0, fi);
        const s = f as string;
        let pos = 0;
        for (let m = first; m >= 0; m = s.indexOf(t, pos)) {
          if (m > pos) next.push(s.slice(pos, m));
          next.push(id);
          pos = m + t.length;
        }
        if (pos < s.length) next.push(s.slice(pos));
      }
      if (next !== null) frags = next;
    }
    return frags;
  }

  // -------------------------------------------------------------------------------------------
  // decoding

  /** The bytes a token stands for (CONTROL / UNKNOWN tokens give their text only when `special`, default true). */
  tokenToPiece(id: number, opts: { special?: boolean } = {}): Uint8Array {
    return this.piece(id, opts.special ?? true).slice();
  }

  /** Internal: the cached piece, not to be modified. */
  pieceBytes(id: number, special: boolean): Uint8Array {
    return this.piece(id, special);
  }

  private piece(id: number, special: boolean): Uint8Array {
    this.checkId(id);
    const attr = this.attrs[id];
    if (!special && attr & (TokenAttr.UNKNOWN | TokenAttr.CONTROL)) return EMPTY;
    let p = this.pieces[id];
    if (p === undefined) {
      p = this.computePiece(id);
      this.pieces[id] = p;
    }
    return p;
  }

  private computePiece(id: number): Uint8Array {
    const attr = this.attrs[id];
    const text = this.tokens[id];
    if (attr & (TokenAttr.UNKNOWN | TokenAttr.CONTROL | TokenAttr.USER_DEFINED)) return utf8Encoder.encode(text);
    if (attr & TokenAttr.NORMAL) return this.spm !== null ? utf8Encoder.encode(text.replaceAll("\u2581", " ")) : unicodeToBytes(text);
    if (attr & TokenAttr.BYTE) {
      const b = parseInt(text.slice(3, 5), 16);
      return Number.isNaN(b) ? EMPTY : Uint8Array.of(b);
    }
    return EMPTY; // UNUSED, UNDEFINED
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new UsageError("TOKENIZER_BAD_TOKEN", `token id ${id} is out of range (vocabulary has ${this.vocabSize} tokens)`);
    }
  }

  /** Text of a token sequence; invalid UTF-8 becomes U+FFFD. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const special = !(opts.skipSpecial ?? false);
    const parts: Uint8Array[] = [];
    let total = 0;
    for (const id of ids) {
      const p = this.piece(id, special);
      parts.push(p);
      total += p.length;
    }
    const buf = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      buf.set(p, off);
      off += p.length;
    }
    return new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(buf);
  }

  /** A decoder that takes tokens one at a time and returns only complete UTF-8 text. */
  createStreamDecoder(opts: DecodeOptions = {}): StreamDecoder {
    return new StreamDecoder(this, opts);
  }

  // -------------------------------------------------------------------------------------------
  // vocabulary queries

  /** CONTROL or UNKNOWN (rendered only when asked for, never produced from plain text). */
  isSpecial(id: number): boolean {
    this.checkId(id);
    return (this.attrs[id] & (TokenAttr.CONTROL | TokenAttr.UNKNOWN)) !== 0;
  }

  isControl(id: number): boolean {
    this.checkId(id);
    return (this.attrs[id] & TokenAttr.CONTROL) !== 0;
  }

  isEog(id: number): boolean {
    return this.eogIds.has(id);
  }

  /** llama.cpp token attribute bits (TokenAttr). */
  tokenAttr(id: number): number {
    this.checkId(id);
    return this.attrs[id];
  }

  /** The token's vocabulary string (byte-level form for NORMAL tokens). */
  tokenText(id: number): string {
    this.checkId(id);
    return this.tokens[id];
  }

  /** Id of a vocabulary string, if present. */
  tokenId(text: string): number | undefined {
    return this.tokenToIdMap.get(text);
  }

  /** Statistics of the merge table (merges involving strings outside the vocabulary, ignored lines). */
  get mergeStats(): BytePairEncoder["stats"] {
    return this.bpe?.stats ?? { mergesInVocab: 0, mergesOutOfVocab: 0, mergesIgnored: 0 };
  }
}
